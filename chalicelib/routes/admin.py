"""The administration API (`/dockless/admin/v1/`), for registry admins (token scope
`registry:admin:*`, granted only to admin principals). JSON in and out.

    GET    /dockless/admin/v1/principals                          users, robots and teams
    POST   /dockless/admin/v1/principals                          {"name", "kind", "admin"?}
    DELETE /dockless/admin/v1/principals/<name>                   revokes its credentials too
    GET    /dockless/admin/v1/principals/<name>/tokens            its credentials, never secrets
    POST   /dockless/admin/v1/principals/<name>/tokens            {"expires_in_days"?, "description"?}
                                                                  -> {"token"} shown once
    GET    /dockless/admin/v1/principals/<robot>/trusts           the federated identities a robot trusts
    POST   /dockless/admin/v1/principals/<robot>/trusts           {"issuer", "audience", "subject", "claims"?}
    DELETE /dockless/admin/v1/principals/<robot>/trusts/<id>
    DELETE /dockless/admin/v1/tokens/<id>                         revoke
    PUT    /dockless/admin/v1/teams/<team>/members/<name>         add to a team
    DELETE /dockless/admin/v1/teams/<team>/members/<name>         remove from a team
    GET    /dockless/admin/v1/grants?resource=                    grants on a namespace or repository
    PUT    /dockless/admin/v1/grants                              {"resource", "subject", "role"}
    DELETE /dockless/admin/v1/grants?resource=&subject=
    GET    /dockless/admin/v1/audit?namespace=|repository=&actor=&since=&until=
                                                                  events, oldest first
    GET    /dockless/admin/v1/settings?resource=                  a namespace's or repository's settings
    PUT    /dockless/admin/v1/settings                            {"resource", "verified"?, "auto_sign"?,
                                                                   "immutable_tags"?, "time_machine_days"?}
    POST   /dockless/admin/v1/gc                                  {"dry_run"?, "namespace"?}: retention, then
                                                                  one garbage collection run; the report
    GET    /dockless/admin/v1/retention?resource=                 what retention would expire, bytes freed
    GET    /dockless/admin/v1/quotas/<namespace>                  what it stores, its quota
    PUT    /dockless/admin/v1/quotas/<namespace>                  {"bytes": int | null}
    GET    /dockless/admin/v1/usage?namespace=&since=&until=      per repository and namespace, the bucket
    GET    /dockless/admin/v1/caches                              every cache namespace and its upstream
    GET    /dockless/admin/v1/caches/<namespace>                  the registry a cache namespace mirrors
    PUT    /dockless/admin/v1/caches/<namespace>                  {"url", "username"?, "password"?,
                                                                   "freshness_seconds"?}
    DELETE /dockless/admin/v1/caches/<namespace>                  a cache no more (what it holds stays)
    GET    /dockless/admin/v1/mirror-rules                        what `dockless mirror sync` copies
    PUT    /dockless/admin/v1/mirror-rules/<rule>                 {"source", "destination", "tags"?,
                                                                   "with_signatures"?, "with_referrers"?}
    DELETE /dockless/admin/v1/mirror-rules/<rule>
    DELETE /dockless/admin/v1/repositories?name=                  the whole repository (registry/repositories.py):
                                                                  what went, counted
    POST   /dockless/admin/v1/probe                               {"wait_seconds"?, "busy"?}: the function's
                                                                  runtime, for `dockless check`
    GET    /dockless/admin/v1/webhooks/<namespace>                its webhooks (chalicelib/events/webhooks.py)
    POST   /dockless/admin/v1/webhooks/<namespace>                {"url", "events"?} -> {"webhook", "secret"}
                                                                  (the secret shown once)
    DELETE /dockless/admin/v1/webhooks/<namespace>/<id>
    POST   /dockless/admin/v1/webhooks/<namespace>/<id>/rotate    a new secret; the old signs on for a day
    GET    /dockless/admin/v1/webhooks/<namespace>/<id>/deliveries          the delivery log, newest first
    POST   /dockless/admin/v1/webhooks/<namespace>/<id>/deliveries/<delivery>/redeliver
"""
from __future__ import annotations
import os
import platform
import time

from botocore.exceptions import ClientError

from chalicelib.access.service import AuthService
from chalicelib.events import delivery as event_delivery
from chalicelib.events.webhooks import WebhookService, describe as describe_webhook
from chalicelib.lifecycle import quota, usage as usage_report
from chalicelib.lifecycle.retention import RetentionService
from chalicelib.metadata import audit, keys
from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.policy import vulnerabilities
from chalicelib.policy.settings import Retention, SettingsService, check_days, check_patterns
from chalicelib.pullthrough import mirror_rules, proxy
from chalicelib.registry import repositories
from chalicelib.routes import jobs
from chalicelib.routes.respond import empty, json_response
from chalicelib.runtime import function_url

# The longest a probe waits: past API Gateway's 29 s and the function's 30 s.
PROBE_MAX_WAIT_SECONDS = 35


# One audit query reads one partition per shard and day: a bound keeps it inside the timeout.


def _when(value):
    return value.isoformat() if value else None


def list_principals(call):
    return json_response({"principals": [
        {"name": p.name, "kind": p.kind, "admin": p.admin, "created_at": _when(p.created_at),
         **({"members": members} if p.kind == "team" else {})}
        for p, members in AuthService(call.backend).principals()]})


def create_principal(call):
    document = call.json_object(errors.ADMIN_INVALID)
    principal = AuthService(call.backend).create_principal(document.get("name"), document.get("kind", "user"),
                                                            bool(document.get("admin")))
    return json_response({"name": principal.name, "kind": principal.kind, "admin": principal.admin}, status=201)


def delete_principal(call, principal):
    AuthService(call.backend).delete_principal(principal)
    return empty(204)


def list_tokens(call, principal):
    return json_response({"tokens": [
        {"id": c.credential_id, "kind": c.kind, "description": c.description, "created_at": _when(c.created_at),
         "expires_at": c.expires_at, "last_used_at": _when(c.last_used_at), "revoked": c.revoked}
        for c in AuthService(call.backend).credentials_of(principal)]})


def create_token(call, principal):
    document = call.json_object(errors.ADMIN_INVALID)
    days = document.get("expires_in_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days <= 0):
        raise RegistryError(errors.ADMIN_INVALID, "expires_in_days is a positive whole number")
    text, credential = AuthService(call.backend).new_token(principal, days * 86400 if days else None,
                                                            document.get("description"))
    return json_response({"id": credential.credential_id, "token": text, "expires_at": credential.expires_at},
                         status=201)


def list_trusts(call, principal):
    return json_response({"trusts": [t.document() for t in AuthService(call.backend).trusts(principal)]})


def add_trust(call, principal):
    document = call.json_object(errors.ADMIN_INVALID)
    return json_response(AuthService(call.backend).add_trust(principal, document).document(), status=201)


def remove_trust(call, principal, trust_id):
    AuthService(call.backend).remove_trust(principal, trust_id)
    return empty(204)


def revoke_token(call, credential_id):
    AuthService(call.backend).revoke_token(credential_id)
    return empty(204)


def add_member(call, team, principal):
    AuthService(call.backend).set_membership(team, principal, present=True)
    return empty(204)


def remove_member(call, team, principal):
    AuthService(call.backend).set_membership(team, principal, present=False)
    return empty(204)


def list_grants(call):
    resource = call.query("resource") or ""
    return json_response({"grants": [{"resource": resource, "subject": g.subject, "role": g.role}
                                     for g in AuthService(call.backend).grants_on(resource)]})


def put_grant(call):
    document = call.json_object(errors.ADMIN_INVALID)
    AuthService(call.backend).set_grant(str(document.get("resource", "")), str(document.get("subject", "")),
                                        str(document.get("role", "")))
    return empty(204)


def delete_grant(call):
    AuthService(call.backend).set_grant(call.query("resource") or "", call.query("subject") or "", None)
    return empty(204)


def list_audit(call):
    """Events for a namespace (or one repository of it) or an actor, between since and until
    (default: the last 24 hours)."""
    since, until = audit.period(call.query, call.backend.clock(), default_days=1)
    repository, actor = call.query("repository"), call.query("actor")
    namespace = call.query("namespace") or (keys.namespace_of(repository) if repository else None)
    if not namespace and not actor:
        raise RegistryError(errors.ADMIN_INVALID, "give a namespace, a repository or an actor")
    events = [audit.as_dict(e) for e in audit.query(namespace, actor, since, until)
              if not repository or e.repository == repository]
    return json_response({"events": events})


def usage(call):
    """Per repository of a namespace (or all): stored bytes, blob and manifest counts, and the
    pushes and pulls between since and until (default: the last 30 days); per namespace: stored
    bytes, quota, and what garbage collection freed; the bucket before and after collection."""
    since, until = audit.period(call.query, call.backend.clock(), default_days=30)
    return json_response({"since": since.isoformat(), "until": until.isoformat(),
                          **usage_report.report(call.query("namespace"), since, until, call.backend.settings.door,
                                                call.backend.settings.log_retention_days)})


def get_quota(call, namespace):
    item = quota.total(namespace)
    return json_response(_quota(item))


def put_quota(call, namespace):
    """{"bytes": int | null}: a namespace's storage quota, or none."""
    document = call.json_object(errors.ADMIN_INVALID)
    limit = document.get("bytes", ...)
    if limit is ... or not (limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0)):
        raise RegistryError(errors.ADMIN_INVALID, "bytes is a positive whole number of bytes, or null for no quota")
    return json_response(_quota(quota.set_quota(call.backend, namespace, limit)))


def _quota(item) -> dict:
    return {"namespace": item.namespace, "stored_bytes": int(item.bytes or 0),
            "quota_bytes": None if item.quota is None else int(item.quota)}


def _resource(value) -> str:
    if not isinstance(value, str) or not spec.NAME_RE.fullmatch(value):
        raise RegistryError(errors.ADMIN_INVALID, "resource is a namespace or repository name")
    return value


def get_settings(call):
    """?resource=<namespace or repository>: its own settings, who changed each, what applies."""
    return json_response(SettingsService(call.backend).show(_resource(call.query("resource"))))


def put_settings(call):
    """{"resource", "verified"?: bool, "auto_sign"?: bool, "immutable_tags"?: [pattern, …],
    "time_machine_days"?: int | null, "retention"?: {rules} | null, "refuse_severity"?: low | medium | high |
    critical | null}: change some settings of a namespace or one repository."""
    document = call.json_object(errors.ADMIN_INVALID)
    resource = _resource(document.get("resource"))
    changes = {}
    for flag in ("verified", "auto_sign"):
        if document.get(flag) is not None:
            if not isinstance(document[flag], bool):
                raise RegistryError(errors.ADMIN_INVALID, f"{flag} is true or false")
            changes[flag] = document[flag]
    if "immutable_tags" in document:
        changes["immutable_tags"] = check_patterns(document["immutable_tags"])
    if "time_machine_days" in document:
        changes["time_machine_days"] = check_days(document["time_machine_days"])
    if "retention" in document:
        changes["retention"] = Retention.parse(document["retention"])
    if "refuse_severity" in document:
        changes["refuse_severity"] = vulnerabilities.check_severity(document["refuse_severity"])
    return json_response(SettingsService(call.backend).change(resource, **changes))


def collect_garbage(call):
    """{"dry_run"?: bool, "namespace"?: str}: run garbage collection now (the scheduled job runs it
    hourly); a namespace's run leaves the bucket's objects to a full run."""
    document = call.json_object(errors.ADMIN_INVALID)
    dry_run, namespace = document.get("dry_run", False), document.get("namespace")
    if not isinstance(dry_run, bool):
        raise RegistryError(errors.ADMIN_INVALID, "dry_run is true or false")
    if namespace is not None and (not isinstance(namespace, str) or not spec.NAMESPACE_RE.fullmatch(namespace)):
        raise RegistryError(errors.ADMIN_INVALID, "namespace is a namespace name (team)")
    return json_response(jobs.collect_garbage(call.backend, dry_run=dry_run, namespace=namespace,
                                             run_seconds=jobs.API_RUN_SECONDS))


def preview_retention(call):
    """?resource=<namespace or repository>: what its retention rules would expire now, and the bytes
    of the blobs only those images need."""
    return json_response(RetentionService(call.backend).preview(_resource(call.query("resource"))))


def list_caches(call):
    return json_response({"caches": proxy.caches()})


def get_cache(call, namespace):
    return json_response(proxy.describe(call.backend, namespace))


def put_cache(call, namespace):
    """{"url", "username"?, "password"?, "freshness_seconds"?}: a pull-through cache namespace."""
    return json_response(proxy.configure(call.backend, namespace, call.json_object(errors.ADMIN_INVALID)))


def delete_cache(call, namespace):
    proxy.remove(call.backend, namespace)
    return empty(204)


def list_mirror_rules(call):
    return json_response({"rules": mirror_rules.rules()})


def put_mirror_rule(call, rule):
    return json_response(mirror_rules.put(call.backend, rule, call.json_object(errors.ADMIN_INVALID)))


def delete_mirror_rule(call, rule):
    mirror_rules.delete(call.backend, rule)
    return empty(204)


def delete_repository(call):
    name = call.query("name")
    if not name:
        raise RegistryError(errors.ADMIN_INVALID, "name is the repository to delete (team/app)")
    return json_response(repositories.delete(call.backend, validate.repository_name(name)))


def probe(call):
    """{"wait_seconds"?: 0..PROBE_MAX_WAIT_SECONDS, "busy"?: bool}: what `dockless check` asks of
    the function itself. The runtime it runs on ({"python", "architecture", "memory_mb"}) and the
    door the request came through ("door"), after
    waiting `wait_seconds` (past the front door's timeout, the front door's answer shows); with
    `busy`, the answer of a request whose storage stayed busy once its retries were spent, made by
    the one mechanism every route's is (routes/dispatch.py)."""
    document = call.json_object(errors.ADMIN_INVALID)
    wait, busy = document.get("wait_seconds", 0), document.get("busy", False)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= PROBE_MAX_WAIT_SECONDS:
        raise RegistryError(errors.ADMIN_INVALID, f"wait_seconds is a number from 0 to {PROBE_MAX_WAIT_SECONDS}")
    if not isinstance(busy, bool):
        raise RegistryError(errors.ADMIN_INVALID, "busy is true or false")
    if busy:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "dockless check's probe"}}, "Query")
    time.sleep(wait)
    return json_response({"python": platform.python_version(), "architecture": platform.machine(),
                          "memory_mb": int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0)) or None,
                          "door": (call.request.context or {}).get("door", function_url.API_GATEWAY_DOOR)})



# --- webhooks ------------------------------------------------------------------------------------

def _delivery_document(found) -> dict:
    return {"id": found.delivery_key, "message_id": found.message_id, "type": found.event_type,
            "subject": found.subject, "status": found.status, "attempts": found.attempts,
            "last_status": found.last_status, "last_error": found.last_error,
            "last_attempt_at": found.last_attempt_at.isoformat() if found.last_attempt_at else None}


def list_webhooks(call, namespace):
    now = call.backend.clock().timestamp()
    return json_response({"webhooks": [describe_webhook(w, now) for w in WebhookService(call.backend).list(namespace)]})


def add_webhook(call, namespace):
    document = call.json_object(errors.ADMIN_INVALID)
    webhook, secret = WebhookService(call.backend).add(namespace, document.get("url"), document.get("events"),
                                                       audit.current().actor)
    return json_response({"webhook": describe_webhook(webhook, call.backend.clock().timestamp()), "secret": secret},
                         status=201)


def remove_webhook(call, namespace, webhook_id):
    WebhookService(call.backend).remove(namespace, webhook_id)
    return empty(204)


def rotate_webhook(call, namespace, webhook_id):
    return json_response({"secret": WebhookService(call.backend).rotate(namespace, webhook_id)})


def webhook_deliveries(call, namespace, webhook_id):
    WebhookService(call.backend).get(namespace, webhook_id)
    return json_response({"deliveries": [_delivery_document(d) for d in event_delivery.deliveries(webhook_id)]})


def redeliver(call, namespace, webhook_id, delivery_id):
    from pynamodb.exceptions import DoesNotExist
    WebhookService(call.backend).get(namespace, webhook_id)
    try:
        found = event_delivery.redeliver(call.backend, namespace, webhook_id, delivery_id)
    except DoesNotExist:
        raise RegistryError(errors.ADMIN_UNKNOWN, f"{webhook_id} has no delivery {delivery_id[:80]!r}") from None
    return json_response(_delivery_document(found), status=202)
