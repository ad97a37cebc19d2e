"""Every route of the registry, in one table: method, path, handler, what the caller needs, and
the spec's endpoint.

Spec: OCI distribution-spec v1.1.1, "Endpoints" (end-1 … end-13), Docker's `_catalog`, and our
own direct-upload extension under `/dockless/v1/`. How a route runs (registration per name depth,
the one dispatch every request goes through) is routes/dispatch.py; what its action means and how
it is checked, access/decision.py.
"""
from __future__ import annotations
from typing import Callable, NamedTuple, Optional

from chalicelib import console
from chalicelib.access.decision import ADMIN, API, AUTHENTICATED, CATALOG, CONSOLE, OPEN
from chalicelib.oci import validate
from chalicelib.oci.spec import DELETE, PULL, PUSH
from chalicelib.routes import (admin, base, blobs, direct, history, listings, manifests, scans, signatures, token,
                               uploads)


class Route(NamedTuple):
    method: str
    path: str
    handler: Callable
    action: str  # what the caller needs: an action on the repository, or OPEN/AUTHENTICATED/CATALOG/ADMIN
    # A query parameter naming another repository the request may need pull on (a mount's `from`):
    # its challenge asks for both scopes, and the handler asks Access.allows(PULL, it).
    also_pull: Optional[str] = None
    door: str = API  # API, or CONSOLE: the session cookie, refusals as pages (access/decision.py)
    # A console route's field naming the repository its action applies to (its path has no {name}).
    name_field: Optional[str] = None


def Page(method: str, path: str, handler: Callable, action: str) -> Route:
    """A console page: its action on the repository its `name` field names, or on the registry."""
    return Route(method, path, handler, action, door=CONSOLE,
                 name_field="name" if action in (PULL, PUSH) else None)


ROUTES = (
    Route("GET", "/v2/", base.ping, AUTHENTICATED),                                 # end-1
    Route("GET", "/v2/_catalog", base.catalog, CATALOG),                            # Docker extension
    Route("GET", "/token", token.get_token, OPEN),                                  # Docker token auth
    Route("POST", "/token", token.post_token, OPEN),                                # OAuth2 form
    Route("POST", "/token/device", token.device_authorization, OPEN),               # RFC 8628 (sso)
    Route("HEAD", "/v2/{name}/blobs/{digest}", blobs.head, PULL),                   # end-2
    Route("GET", "/v2/{name}/blobs/{digest}", blobs.get, PULL),                     # end-2
    Route("DELETE", "/v2/{name}/blobs/{digest}", blobs.delete, DELETE),             # end-10
    Route("POST", "/v2/{name}/blobs/uploads/", uploads.start, PUSH, "from"),        # end-4a/4b/11
    Route("GET", "/v2/{name}/blobs/uploads/{upload_id}", uploads.status, PUSH),     # end-13
    Route("PATCH", "/v2/{name}/blobs/uploads/{upload_id}", uploads.patch, PUSH),    # end-5
    Route("PUT", "/v2/{name}/blobs/uploads/{upload_id}", uploads.put, PUSH),        # end-6
    Route("DELETE", "/v2/{name}/blobs/uploads/{upload_id}", uploads.cancel, PUSH),  # cancel upload
    Route("HEAD", "/v2/{name}/manifests/{reference}", manifests.head, PULL),        # end-3
    Route("GET", "/v2/{name}/manifests/{reference}", manifests.get, PULL),          # end-3
    Route("PUT", "/v2/{name}/manifests/{reference}", manifests.put, PUSH),          # end-7
    Route("DELETE", "/v2/{name}/manifests/{reference}", manifests.delete, DELETE),  # end-9
    Route("GET", "/v2/{name}/tags/list", listings.tags, PULL),                      # end-8a/8b
    Route("GET", "/v2/{name}/referrers/{digest}", listings.referrers, PULL),        # end-12a/12b
    # The direct-upload extension (routes/direct.py): presigned S3 URLs for an open session.
    Route("POST", "/dockless/v1/{name}/uploads/{upload_id}/direct", direct.open_upload, PUSH),
    Route("POST", "/dockless/v1/{name}/uploads/{upload_id}/parts", direct.part_urls, PUSH),
    # Tag history, restore and diff (routes/history.py).
    Route("GET", "/dockless/v1/{name}/history", history.history, PULL),
    Route("POST", "/dockless/v1/{name}/tags/{tag}/restore", history.restore, PUSH),
    Route("GET", "/dockless/v1/{name}/diff", history.diff, PULL),
    # SBOMs, vulnerabilities and advisories (routes/scans.py).
    Route("GET", "/dockless/v1/{name}/scans/{reference}", scans.show, PULL),
    Route("POST", "/dockless/admin/v1/advisories", scans.import_advisories, ADMIN),
    Route("GET", "/dockless/admin/v1/accepted-risks/{namespace}", scans.list_accepted, ADMIN),
    Route("PUT", "/dockless/admin/v1/accepted-risks/{namespace}/{advisory_id}", scans.accept, ADMIN),
    Route("DELETE", "/dockless/admin/v1/accepted-risks/{namespace}/{advisory_id}", scans.withdraw, ADMIN),
    # Administration (routes/admin.py).
    Route("GET", "/dockless/admin/v1/principals", admin.list_principals, ADMIN),
    Route("POST", "/dockless/admin/v1/principals", admin.create_principal, ADMIN),
    Route("DELETE", "/dockless/admin/v1/principals/{principal}", admin.delete_principal, ADMIN),
    Route("GET", "/dockless/admin/v1/principals/{principal}/tokens", admin.list_tokens, ADMIN),
    Route("POST", "/dockless/admin/v1/principals/{principal}/tokens", admin.create_token, ADMIN),
    Route("GET", "/dockless/admin/v1/principals/{principal}/trusts", admin.list_trusts, ADMIN),
    Route("POST", "/dockless/admin/v1/principals/{principal}/trusts", admin.add_trust, ADMIN),
    Route("DELETE", "/dockless/admin/v1/principals/{principal}/trusts/{trust_id}", admin.remove_trust, ADMIN),
    Route("DELETE", "/dockless/admin/v1/tokens/{credential_id}", admin.revoke_token, ADMIN),
    Route("GET", "/dockless/admin/v1/webhooks/{namespace}", admin.list_webhooks, ADMIN),
    Route("POST", "/dockless/admin/v1/webhooks/{namespace}", admin.add_webhook, ADMIN),
    Route("DELETE", "/dockless/admin/v1/webhooks/{namespace}/{webhook_id}", admin.remove_webhook, ADMIN),
    Route("POST", "/dockless/admin/v1/webhooks/{namespace}/{webhook_id}/rotate", admin.rotate_webhook, ADMIN),
    Route("GET", "/dockless/admin/v1/webhooks/{namespace}/{webhook_id}/deliveries", admin.webhook_deliveries, ADMIN),
    Route("POST", "/dockless/admin/v1/webhooks/{namespace}/{webhook_id}/deliveries/{delivery_id}/redeliver",
          admin.redeliver, ADMIN),
    Route("PUT", "/dockless/admin/v1/teams/{team}/members/{principal}", admin.add_member, ADMIN),
    Route("DELETE", "/dockless/admin/v1/teams/{team}/members/{principal}", admin.remove_member, ADMIN),
    Route("GET", "/dockless/admin/v1/grants", admin.list_grants, ADMIN),
    Route("PUT", "/dockless/admin/v1/grants", admin.put_grant, ADMIN),
    Route("DELETE", "/dockless/admin/v1/grants", admin.delete_grant, ADMIN),
    Route("GET", "/dockless/admin/v1/audit", admin.list_audit, ADMIN),
    Route("GET", "/dockless/admin/v1/usage", admin.usage, ADMIN),
    Route("PUT", "/dockless/admin/v1/keys/{namespace}", signatures.add_keys, ADMIN),
    Route("GET", "/dockless/admin/v1/settings", admin.get_settings, ADMIN),
    Route("PUT", "/dockless/admin/v1/settings", admin.put_settings, ADMIN),
    Route("POST", "/dockless/admin/v1/gc", admin.collect_garbage, ADMIN),
    Route("POST", "/dockless/admin/v1/probe", admin.probe, ADMIN),
    Route("GET", "/dockless/admin/v1/retention", admin.preview_retention, ADMIN),
    Route("GET", "/dockless/admin/v1/quotas/{namespace}", admin.get_quota, ADMIN),
    Route("PUT", "/dockless/admin/v1/quotas/{namespace}", admin.put_quota, ADMIN),
    Route("DELETE", "/dockless/admin/v1/keys/{namespace}/{fingerprint}", signatures.remove_key, ADMIN),
    Route("GET", "/dockless/admin/v1/caches", admin.list_caches, ADMIN),
    Route("GET", "/dockless/admin/v1/caches/{namespace}", admin.get_cache, ADMIN),
    Route("PUT", "/dockless/admin/v1/caches/{namespace}", admin.put_cache, ADMIN),
    Route("DELETE", "/dockless/admin/v1/caches/{namespace}", admin.delete_cache, ADMIN),
    Route("GET", "/dockless/admin/v1/mirror-rules", admin.list_mirror_rules, ADMIN),
    Route("PUT", "/dockless/admin/v1/mirror-rules/{rule}", admin.put_mirror_rule, ADMIN),
    Route("DELETE", "/dockless/admin/v1/mirror-rules/{rule}", admin.delete_mirror_rule, ADMIN),
    Route("DELETE", "/dockless/admin/v1/repositories", admin.delete_repository, ADMIN),
    # Signatures (containers/image extension) and public keys (routes/signatures.py).
    Route("GET", "/extensions/v2/{name}/signatures/{digest}", signatures.get_signatures, PULL),
    Route("PUT", "/extensions/v2/{name}/signatures/{digest}", signatures.put_signature, PUSH),
    Route("GET", "/keys/{namespace}", signatures.list_keys, OPEN),
    Route("GET", "/keys/{namespace}/{file}", signatures.key_file, OPEN),
    # The web console (chalicelib/console): the same decision, through the session cookie.
    Page("GET", "/ui/signin", console.signin_form, OPEN),
    Page("POST", "/ui/signin", console.signin, OPEN),
    Page("GET", "/ui/sso", console.sso_begin, OPEN),
    Page("GET", "/ui/sso/callback", console.sso_callback, OPEN),
    Page("GET", "/ui/console.css", console.stylesheet, OPEN),
    Page("GET", "/ui/console.js", console.script, OPEN),
    Page("POST", "/ui/signout", console.signout, AUTHENTICATED),
    Page("GET", "/ui/", console.index, AUTHENTICATED),
    Page("GET", "/ui/keys", console.keys_page, AUTHENTICATED),
    Page("GET", "/ui/repository", console.repository, PULL),
    Page("GET", "/ui/tag", console.tag_page, PULL),
    Page("GET", "/ui/diff", console.diff_page, PULL),
    Page("GET", "/ui/history", console.history, PULL),
    Page("GET", "/ui/restore", console.restore_form, PUSH),
    Page("POST", "/ui/restore", console.restore, PUSH),
    Page("GET", "/ui/audit", console.audit_page, ADMIN),
    Page("GET", "/ui/audit.jsonl", console.audit_export, ADMIN),
    Page("GET", "/ui/people", console.people, ADMIN),
    Page("POST", "/ui/people", console.add_principal, ADMIN),
    Page("GET", "/ui/principal", console.principal_page, ADMIN),
    Page("POST", "/ui/tokens", console.create_token, ADMIN),
    Page("POST", "/ui/tokens/revoke", console.revoke_token, ADMIN),
    Page("POST", "/ui/members", console.set_member, ADMIN),
    Page("GET", "/ui/grants", console.grants, ADMIN),
    Page("POST", "/ui/grants", console.set_grant, ADMIN),
    Page("POST", "/ui/keys", console.add_keys, ADMIN),
    Page("POST", "/ui/keys/remove", console.remove_key, ADMIN),
    Page("GET", "/ui/usage", console.usage_page, ADMIN),
    Page("GET", "/ui/webhooks", console.webhooks_page, ADMIN),
)


# How each path parameter is checked before the handler runs ({name} by validate.repository_path;
# digests and references by their handlers, whose answers differ by method).
PATH_PARAMETERS = {
    "upload_id": validate.upload_id,
    "tag": validate.tag,
    "namespace": validate.namespace,
    "principal": validate.principal,
    "team": validate.principal,
    "credential_id": validate.credential_id,
    "trust_id": validate.trust_id,
    "webhook_id": validate.webhook_id,
    "delivery_id": validate.delivery_id,
    "fingerprint": validate.fingerprint,
    "file": validate.key_file,
    "rule": validate.mirror_rule,
    "advisory_id": validate.advisory_id,
}

