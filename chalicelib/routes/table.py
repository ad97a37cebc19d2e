"""Every route of the registry, in one table, and how it is registered with Chalice.

Spec: OCI distribution-spec v1.1.1, "Endpoints" (end-1 … end-13), Docker's `_catalog`, and our
own direct-upload extension under `/dockless/v1/`.

Repository names contain slashes, and Chalice's router (deployed as API Gateway resources, and in
`chalice.test.Client` and the local stack, which share chalice.local's RouteMatcher) matches a
fixed number of path segments with no greedy parameter. So each `{name}` route is registered once
per depth, 1 … NAME_MAX_COMPONENTS, as `{name1}/…/{nameK}`; the wrapper joins them back. Route
keywords are refused as name components (validate.repository_name), so no path can match two
routes, with or without backtracking.

Every request goes through `_dispatch`: name validation, the access check, the handler, the
spec's error body for a RegistryError, the common headers, and one request log record.
"""
import dataclasses
import hmac
import logging
import re
from typing import Callable, List, Optional

from chalice import Blueprint

from chalicelib import audit, errors, spec, validate
from chalicelib.errors import RegistryError
from chalicelib.observe import RequestRecord
from chalicelib.auth.jwt import InvalidToken
from chalicelib.auth.service import AuthService, basic_credentials, token_allows
from chalicelib.routes import (admin, base, blobs, direct, listings, manifests, respond, signatures, token,
                               uploads)
from chalicelib.services import services

LOG = logging.getLogger("dockless")
# The path parameters a repository name is split into: name1 … nameK.
NAME_PART = re.compile(r"name\d+")

# Actions, as Docker's token scopes name them (distribution docs/spec/auth/scope.md).
PULL, PUSH, DELETE = "pull", "push", "delete"
# No token needed: the token endpoint itself.
OPEN = "open"
# Any valid token (the `/v2/` version check: docker logs in against it).
AUTHENTICATED = "authenticated"
# The `registry:catalog:*` scope; the handler lists only what the caller may pull.
CATALOG = "catalog"
# The `registry:admin:*` scope, granted to admin principals only.
ADMIN = "admin"


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable
    action: str  # what the caller needs: an action on the repository, or OPEN/AUTHENTICATED/CATALOG


ROUTES = (
    Route("GET", "/v2/", base.ping, AUTHENTICATED),                                 # end-1
    Route("GET", "/v2/_catalog", base.catalog, CATALOG),                            # Docker extension
    Route("GET", "/token", token.get_token, OPEN),                                  # Docker token auth
    Route("POST", "/token", token.post_token, OPEN),                                # OAuth2 form
    Route("HEAD", "/v2/{name}/blobs/{digest}", blobs.head, PULL),                   # end-2
    Route("GET", "/v2/{name}/blobs/{digest}", blobs.get, PULL),                     # end-2
    Route("DELETE", "/v2/{name}/blobs/{digest}", blobs.delete, DELETE),             # end-10
    Route("POST", "/v2/{name}/blobs/uploads/", uploads.start, PUSH),                # end-4a/4b/11
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
    # Administration (routes/admin.py).
    Route("GET", "/dockless/admin/v1/principals", admin.list_principals, ADMIN),
    Route("POST", "/dockless/admin/v1/principals", admin.create_principal, ADMIN),
    Route("DELETE", "/dockless/admin/v1/principals/{principal}", admin.delete_principal, ADMIN),
    Route("GET", "/dockless/admin/v1/principals/{principal}/tokens", admin.list_tokens, ADMIN),
    Route("POST", "/dockless/admin/v1/principals/{principal}/tokens", admin.create_token, ADMIN),
    Route("DELETE", "/dockless/admin/v1/tokens/{credential_id}", admin.revoke_token, ADMIN),
    Route("PUT", "/dockless/admin/v1/teams/{team}/members/{principal}", admin.add_member, ADMIN),
    Route("DELETE", "/dockless/admin/v1/teams/{team}/members/{principal}", admin.remove_member, ADMIN),
    Route("GET", "/dockless/admin/v1/grants", admin.list_grants, ADMIN),
    Route("PUT", "/dockless/admin/v1/grants", admin.put_grant, ADMIN),
    Route("DELETE", "/dockless/admin/v1/grants", admin.delete_grant, ADMIN),
    Route("GET", "/dockless/admin/v1/audit", admin.list_audit, ADMIN),
    Route("GET", "/dockless/admin/v1/usage", admin.usage, ADMIN),
    Route("PUT", "/dockless/admin/v1/keys/{namespace}", signatures.add_keys, ADMIN),
    Route("PUT", "/dockless/admin/v1/settings", admin.put_setting, ADMIN),
    Route("DELETE", "/dockless/admin/v1/keys/{namespace}/{fingerprint}", signatures.remove_key, ADMIN),
    # Signatures (containers/image extension) and public keys (routes/signatures.py).
    Route("GET", "/extensions/v2/{name}/signatures/{digest}", signatures.get_signatures, PULL),
    Route("PUT", "/extensions/v2/{name}/signatures/{digest}", signatures.put_signature, PUSH),
    Route("GET", "/keys/{namespace}", signatures.list_keys, OPEN),
    Route("GET", "/keys/{namespace}/{file}", signatures.key_file, OPEN),
)


# How each path parameter is checked before the handler runs ({name} by validate.repository_path;
# digests and references by their handlers, whose answers differ by method).
PATH_PARAMETERS = {
    "upload_id": validate.upload_id,
    "namespace": validate.namespace,
    "principal": validate.principal,
    "team": validate.principal,
    "credential_id": validate.credential_id,
    "fingerprint": validate.fingerprint,
    "file": validate.key_file,
}


def chalice_paths(path: str):
    """The Chalice paths one route registers as: one per name depth, no trailing slash."""
    path = path.rstrip("/")
    if "{name}" not in path:
        return [path]
    return [path.replace("{name}", "/".join(f"{{name{i}}}" for i in range(1, depth + 1)))
            for depth in range(1, spec.NAME_MAX_COMPONENTS + 1)]


# What a challenge asks for, per action (docker asks for pull and push together when pushing).
CHALLENGE_ACTIONS = {PULL: "pull", PUSH: "pull,push", DELETE: "delete"}


def _scopes(request, route: Route, name: Optional[str]) -> List[str]:
    """The token scopes a request needs, as its challenge names them: the route's action on the
    repository, and for a cross-repository mount pull on the source too (Docker's token spec allows
    several; without the second a mount quietly becomes an upload)."""
    if name is None:
        return [f"registry:{route.action}:*"] if route.action in (CATALOG, ADMIN) else []
    scopes = [f"repository:{name}:{CHALLENGE_ACTIONS[route.action]}"]
    source = (request.query_params or {}).get("from")
    if route.handler is uploads.start and (request.query_params or {}).get("mount") and source:
        scopes.append(f"repository:{validate.repository_name(source)}:pull")
    return scopes


def _basic_claims(header: str, scopes: List[str]) -> Optional[dict]:
    """What a Basic access credential earns for this request: the claims a token for exactly its
    scopes would carry, or None. For clients that send credentials on every request instead of
    fetching a token (oras-py's basic backend, curl -u); revocation applies at once."""
    service = AuthService(services())
    try:
        username, secret = basic_credentials(header)
        caller = service.authenticate(secret, username=username)
    except RegistryError:
        return None
    return {"sub": caller.name, "cid": caller.credential_id, "admin": caller.admin,
            "access": service.granted_access(caller, scopes)}


def authorize(request, route: Route, name: Optional[str]) -> Optional[dict]:
    """The one place access is decided, before any handler runs: the bearer token's claims (or
    what Basic credentials earn), or a 401 with the challenge docker follows. Verifying a token
    reads no table."""
    if route.action == OPEN:
        return None
    scopes = _scopes(request, route, name)
    claims = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            claims = AuthService(services()).verify_access_token(header[7:].strip())
        except InvalidToken:
            claims = None
    elif header[:6].lower() == "basic ":
        claims = _basic_claims(header, scopes)
    if claims is not None:
        audit.identify(claims.get("sub") or None, claims.get("cid"))
    if route.action == AUTHENTICATED and claims is not None:
        return claims
    if route.action in (CATALOG, ADMIN) and token_allows(claims, "registry", route.action, "*"):
        return claims
    if name is not None and token_allows(claims, "repository", name, route.action):
        return claims
    if claims is not None or header:
        # A challenge to a request without credentials is the normal first step of every docker
        # command, not a decision worth recording; anything else refused is.
        audit.record("access.denied", name, outcome=audit.DENIED, method=route.method, route=route.path,
                     needed=route.action)
    # The reference registry answers a token that lacks an action as it answers no token (401
    # UNAUTHORIZED), with error="insufficient_scope" in the challenge; the message says which.
    message = (f"authentication required: the credentials do not allow {route.action} on "
               f"{name or 'the registry'}; ask an admin for a grant" if claims is not None else None)
    raise RegistryError(errors.UNAUTHORIZED, message=message, status=401,
                        headers={"WWW-Authenticate": _challenge(scopes, insufficient=claims is not None)})


def client_ip(request, context: dict) -> Optional[str]:
    """The client's address as the front door reports it (DOCKLESS_TRUSTED_PROXY_HOPS)."""
    hops = services().settings.trusted_proxy_hops
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return context.get("identity", {}).get("sourceIp")


def _require_front_door(request) -> None:
    """Deployed, only CloudFront knows the origin secret: a request without it went straight to
    API Gateway, around the edge function and the viewer-host header, and is refused."""
    secret = services().settings.origin_secret
    if secret and not hmac.compare_digest(request.headers.get(spec.ORIGIN_SECRET_HEADER.lower(), ""), secret):
        raise RegistryError(errors.FRONT_DOOR_BYPASSED)


def _challenge(scopes: List[str], insufficient: bool) -> str:
    parts = [f'realm="{services().public_url()}/token"', f'service="{services().settings.service}"']
    if scopes:
        parts.append(f'scope="{" ".join(scopes)}"')
    if insufficient:
        parts.append('error="insufficient_scope"')
    return "Bearer " + ",".join(parts)


def _dispatch(blueprint: Blueprint, route: Route, captured: dict):
    request = blueprint.current_request
    context = request.context or {}
    lambda_context = blueprint.lambda_context
    request_id = context.get("requestId") or getattr(lambda_context, "aws_request_id", "-")
    record = RequestRecord(request_id, route.method, context.get("path", ""), route.path,
                           dict(request.query_params or {}), len(request.raw_body or b""))
    audit_context = audit.begin(audit.RequestContext(request_id, client_ip(request, context),
                                                     request.headers.get("user-agent")))
    try:
        _require_front_door(request)
        # Path parameters arrive decoded, as API Gateway passes them (DESIGN.md §4).
        name = None
        if "{name}" in route.path:
            name = validate.repository_path([value for _, value in sorted(
                (int(key[4:]), value) for key, value in captured.items() if NAME_PART.fullmatch(key))])
        request.claims = authorize(request, route, name)
        params = {key: PATH_PARAMETERS.get(key, str)(value) for key, value in captured.items()
                  if not NAME_PART.fullmatch(key)}
        if name is not None:
            params["name"] = name
        response = route.handler(request, **params)
    except RegistryError as error:
        response = respond.error(error)
    except Exception:  # noqa: BLE001 - one place turns a crash into the spec's error body
        LOG.exception("unhandled error in %s %s", route.method, route.path)
        response = respond.error(RegistryError(errors.INTERNAL, {"request_id": request_id}))
    finally:
        audit.end(audit_context)
    response.headers[spec.API_VERSION_HEADER] = spec.API_VERSION
    response.headers[spec.SIGNATURES_HEADER] = "1"
    response.headers["Cache-Control"] = spec.CACHE_CONTROL
    response.headers.setdefault("X-Request-Id", request_id)
    claims = getattr(request, "claims", None) or {}
    record.finish(response.status_code, principal=claims.get("sub"),
                  host=request.headers.get(spec.VIEWER_HOST_HEADER.lower()))
    return response


def _view(blueprint: Blueprint, route: Route):
    def view(**captured):
        return _dispatch(blueprint, route, captured)
    return view


def registry_routes() -> Blueprint:
    blueprint = Blueprint(__name__)
    for route in ROUTES:
        for number, path in enumerate(chalice_paths(route.path)):
            view_name = f"{route.handler.__module__.rsplit('.', 1)[-1]}_{route.handler.__name__}_{route.method}_{number}"
            blueprint.route(path, methods=[route.method], name=view_name, content_types=["*/*"])(_view(blueprint, route))
    return blueprint
