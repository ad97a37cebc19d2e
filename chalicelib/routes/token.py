"""Docker's token endpoint (distribution docs/spec/auth/token.md and oauth.md).

    GET  /token?service=&scope=…&scope=…&offline_token=&client_id=&account=   (Basic auth, or none)
    POST /token  grant_type=password (username, password, access_type=offline)
                 grant_type=refresh_token (refresh_token)     with one space-separated `scope`

The caller's password is an access credential (`dkl_…`), or, for a robot that trusts a federated
identity, that identity's OIDC ID token (chalicelib/access/federation.py). With offline access the
answer includes a refresh token, which `docker login` stores instead of the secret (not for an ID
token: a refresh token would outlive it).
"""
from __future__ import annotations
from urllib.parse import parse_qs

from chalicelib.access.service import ANONYMOUS, AuthService, Caller, basic_credentials, new_credential_text
from chalicelib.metadata import audit
from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.routes.respond import json_response


def _check_service(call, service):
    if service and service != call.backend.settings.token_service:
        raise RegistryError(errors.UNAUTHORIZED, f"unknown service {service!r}")


def _authenticate(call, username, secret, kind="access") -> Caller:
    trail = call.backend.audit
    try:
        caller = AuthService(call.backend).authenticate(secret, kind=kind, username=username)
    except RegistryError as error:
        reason = getattr(error, "reason", None)  # an ID token's: which condition failed, for the trail only
        trail.record("authenticate", outcome=audit.DENIED, actor=username or "-",
                     grant="federated" if reason else kind, **({"reason": reason} if reason else {}))
        raise
    audit.identify(caller.name, caller.credential_id, caller.federated.audit() if caller.federated else None)
    return caller


def _scopes(values) -> list:
    """Requested scopes, each parameter possibly holding several separated by spaces; a bounded
    number, since each may cost a read."""
    scopes = [scope for value in values for scope in value.split()]
    if len(scopes) > spec.TOKEN_SCOPES_MAX:
        raise RegistryError(errors.TOKEN_REQUEST_INVALID, {"scopes": len(scopes), "limit": spec.TOKEN_SCOPES_MAX},
                            message=f"at most {spec.TOKEN_SCOPES_MAX} scopes per token request")
    return scopes


def _answer(call, caller: Caller, scopes, offline: bool, grant: str):
    """The token, and its one audit event (which says how the caller proved itself: `grant`)."""
    auth = AuthService(call.backend)
    access = auth.granted_access(caller, scopes)
    token, lifetime, issued = auth.issue_access_token(caller, access)
    call.backend.audit.record("token.issue", access=access, offline=offline,
                              grant="federated" if caller.federated else grant)
    document = {"token": token, "access_token": token, "expires_in": lifetime,
                "issued_at": issued.isoformat().replace("+00:00", "Z")}
    # No refresh token for an ID token: it would outlive it (docker sends the ID token again).
    if offline and caller.name is not None and caller.federated is None:
        refresh = new_credential_text()
        auth.store_credential(caller.name, refresh, kind="refresh", lifetime_seconds=spec.REFRESH_TOKEN_SECONDS,
                                 description="docker login", parent=caller.credential)
        document["refresh_token"] = refresh
    return json_response(document)


def get_token(call):
    params = call.request.query_params
    _check_service(call, call.query("service"))
    scopes = _scopes(params.getlist("scope") if params and "scope" in params else [])
    header = call.header("authorization") or ""
    basic = basic_credentials(header) if header[:6].lower() == "basic " else None
    caller = _authenticate(call, basic[0], basic[1]) if basic else ANONYMOUS
    return _answer(call, caller, scopes, offline=call.query("offline_token") == "true",
                   grant="access" if basic else "anonymous")


def post_token(call):
    form = {k: v[0] for k, v in parse_qs(call.body().decode("utf-8", "replace")).items()}
    _check_service(call, form.get("service"))
    scopes = _scopes([form.get("scope", "")])
    grant_type = form.get("grant_type")
    if grant_type == "password":
        caller = _authenticate(call, form.get("username"), form.get("password", ""))
        offline, grant = form.get("access_type") == "offline", "access"
    elif grant_type == "refresh_token":
        caller = _authenticate(call, None, form.get("refresh_token", ""), kind="refresh")
        offline, grant = False, "refresh"
    else:
        raise RegistryError(errors.UNAUTHORIZED, "grant_type must be password or refresh_token")
    return _answer(call, caller, scopes, offline, grant)
