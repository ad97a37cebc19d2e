"""How every route of the table runs: registered with Chalice once per name depth, and dispatched
through one function.

Repository names contain slashes, and Chalice's router (deployed as API Gateway resources, and in
`chalice.test.Client` and the local stack, which share chalice.local's RouteMatcher) matches a
fixed number of path segments with no greedy parameter. So each `{name}` route is registered once
per depth, 1 … NAME_MAX_COMPONENTS, as `{name1}/…/{nameK}` (chalice_paths); `dispatch` joins
them back. Route keywords are refused as name components (validate.repository_name), so no path can
match two routes, with or without backtracking.

`dispatch`, for every request: the front-door check, name and path-parameter validation, the access
decision (access.authorize), the handler with its `Call`, the spec's error body for a
RegistryError (a console page, through the console's door), the common headers, and one request
log record.
"""
from __future__ import annotations
import hmac
import logging
import re
from typing import Optional

from chalice import Blueprint

from chalicelib import console
from chalicelib.access.decision import CONSOLE, authorize, repository_of
from chalicelib.backend import Backend, backend
from chalicelib.metadata import audit
from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.routes import respond
from chalicelib.routes.request import Call
from chalicelib.routes.table import PATH_PARAMETERS, ROUTES, Route
from chalicelib.runtime import retries
from chalicelib.runtime.observe import RequestRecord

LOG = logging.getLogger("dockless")
# The path parameters a repository name is split into: name1 … nameK.
NAME_PART = re.compile(r"name\d+")


def client_ip(request, context: dict, hops: int) -> Optional[str]:
    """The client's address as the front door reports it (DOCKLESS_TRUSTED_PROXY_HOPS)."""
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return context.get("identity", {}).get("sourceIp")


def _require_front_door(request, secret: Optional[str]) -> None:
    """Deployed, only CloudFront knows the origin secret: a request without it went straight to
    API Gateway, around the edge function and the viewer-host header, and is refused."""
    if secret and not hmac.compare_digest(request.headers.get(spec.ORIGIN_SECRET_HEADER.lower(), ""), secret):
        raise RegistryError(errors.FRONT_DOOR_BYPASSED)


def _call(request, route: Route, captured: dict, on: Backend):
    """The handler's answer, once the request passed every check before it."""
    _require_front_door(request, on.settings.origin_secret)
    # Path parameters arrive decoded, as API Gateway passes them (DESIGN.md §4).
    if "{name}" in route.path:
        name = validate.repository_path([value for _, value in sorted(
            (int(key[4:]), value) for key, value in captured.items() if NAME_PART.fullmatch(key))])
    else:
        name = repository_of(request, route)
    call = Call(request, on, authorize(request, route, name, on))
    params = {key: PATH_PARAMETERS.get(key, str)(value) for key, value in captured.items()
              if not NAME_PART.fullmatch(key)}
    if name is not None:
        params["name"] = name
    return route.handler(call, **params)


def dispatch(blueprint: Blueprint, route: Route, captured: dict):
    request = blueprint.current_request
    on = backend()
    context = request.context or {}
    lambda_context = blueprint.lambda_context
    request_id = context.get("requestId") or getattr(lambda_context, "aws_request_id", "-")
    record = RequestRecord(request_id, route.method, context.get("path", ""), route.path,
                           dict(request.query_params or {}), len(request.raw_body or b""))
    audit_context = audit.begin(audit.RequestContext(
        request_id, client_ip(request, context, on.settings.trusted_proxy_hops), request.headers.get("user-agent")))
    refused = (lambda error: console.refused(request, on, error)) if route.door == CONSOLE else respond.error
    try:
        response = _call(request, route, captured, on)
    except RegistryError as error:
        response = refused(error)
    except Exception as crash:  # noqa: BLE001 - one place turns a crash into the spec's error body
        if retries.busy(crash):
            LOG.warning("storage busy in %s %s: %s", route.method, route.path, crash)
            response = refused(RegistryError(errors.STORAGE_BUSY, {"request_id": request_id},
                                             headers={"Retry-After": str(retries.RETRY_AFTER_SECONDS)}))
        else:
            LOG.exception("unhandled error in %s %s", route.method, route.path)
            response = refused(RegistryError(errors.INTERNAL, {"request_id": request_id}))
    finally:
        audit.end(audit_context)
    response.headers[spec.API_VERSION_HEADER] = spec.API_VERSION
    response.headers[spec.SIGNATURES_HEADER] = "1"
    response.headers["Cache-Control"] = spec.CACHE_CONTROL
    response.headers.setdefault("X-Request-Id", request_id)
    access = getattr(request, "access", None)
    record.finish(response.status_code, principal=access.caller.name if access else None,
                  host=request.headers.get(spec.VIEWER_HOST_HEADER.lower()))
    return response


def chalice_paths(path: str):
    """The Chalice paths one route registers as: one per name depth, no trailing slash."""
    path = path.rstrip("/")
    if "{name}" not in path:
        return [path]
    return [path.replace("{name}", "/".join(f"{{name{i}}}" for i in range(1, depth + 1)))
            for depth in range(1, spec.NAME_MAX_COMPONENTS + 1)]


def _view(blueprint: Blueprint, route: Route):
    def view(**captured):
        return dispatch(blueprint, route, captured)
    return view


def registry_routes() -> Blueprint:
    """Every route of the table, as one Chalice blueprint."""
    blueprint = Blueprint(__name__)
    for route in ROUTES:
        for number, path in enumerate(chalice_paths(route.path)):
            view_name = f"{route.handler.__module__.rsplit('.', 1)[-1]}_{route.handler.__name__}_{route.method}_{number}"
            blueprint.route(path, methods=[route.method], name=view_name, content_types=["*/*"])(_view(blueprint, route))
    return blueprint
