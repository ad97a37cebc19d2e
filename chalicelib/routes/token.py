"""Docker's token endpoint (distribution docs/spec/auth/token.md and oauth.md).

    GET  /token?service=&scope=…&scope=…&offline_token=&client_id=&account=   (Basic auth, or none)
    POST /token  grant_type=password (username, password, access_type=offline)
                 grant_type=refresh_token (refresh_token)     with one space-separated `scope`
                 grant_type=urn:ietf:params:oauth:grant-type:device_code (device_code)
    POST /token/device                                        single sign-on's device authorization

The caller's password is an access credential (`dkl_…`), or, for a robot that trusts a federated
identity, that identity's OIDC ID token (chalicelib/access/federation.py). With offline access the
answer includes a refresh token, which `docker login` stores instead of the secret (not for an ID
token: a refresh token would outlive it).

`dockless login --sso` signs a person in through the company's identity provider
(chalicelib/access/sso.py) with RFC 8628's device grant, relayed here so the client secret stays
with the registry: /token/device answers the provider's device and user codes; the CLI then polls
/token with the device code (`authorization_pending` and `slow_down` answered as RFC 8628 §3.5
says) until the person has approved, and gets a refresh token of sso.REFRESH_SECONDS.
"""
from __future__ import annotations
from typing import Optional
from urllib.parse import parse_qs

from chalicelib.access import sso
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


def _answer(call, caller: Caller, scopes, offline: bool, grant: str, refresh_seconds: Optional[int] = None):
    """The token, and its one audit event (which says how the caller proved itself: `grant`)."""
    auth = AuthService(call.backend)
    access, edge_blobs = auth.token_access(caller, scopes)
    token, lifetime, issued = auth.issue_access_token(caller, access, edge_blobs)
    call.backend.audit.record("token.issue", access=access, offline=offline,
                              grant="federated" if caller.federated else grant)
    document = {"token": token, "access_token": token, "expires_in": lifetime,
                "issued_at": issued.isoformat().replace("+00:00", "Z")}
    # No refresh token for an ID token: it would outlive it (docker sends the ID token again).
    if offline and caller.name is not None and caller.federated is None:
        refresh = new_credential_text()
        auth.store_credential(caller.name, refresh, kind="refresh",
                              lifetime_seconds=refresh_seconds or spec.REFRESH_TOKEN_SECONDS,
                              description="single sign-on" if grant == "sso" else "docker login", parent=caller.credential)
        document["refresh_token"] = refresh
        document["principal"] = caller.name
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
    elif grant_type == sso.DEVICE_GRANT:
        return _device_token(call, form.get("device_code", ""), scopes)
    else:
        raise RegistryError(errors.UNAUTHORIZED, "grant_type must be password or refresh_token")
    return _answer(call, caller, scopes, offline, grant)


def _oauth_error(error: str, description: str, status: int = 400):
    """An OAuth 2.0 error answer (RFC 6749 §5.2), as device-grant clients read it."""
    return json_response({"error": error, "error_description": description}, status, {"Cache-Control": "no-store"})


def _sso_refused(call, failure: sso.Failed):
    call.backend.audit.record("authenticate", outcome=audit.DENIED, actor="-", grant="sso", reason=failure.reason)


def device_authorization(call):
    """RFC 8628 §3.1-3.2, relayed to the identity provider with the registry's client credentials."""
    try:
        return json_response(sso.device_start(call.backend), headers={"Cache-Control": "no-store"})
    except sso.Failed as failure:
        _sso_refused(call, failure)
        return _oauth_error("invalid_request", failure.said)


def _device_token(call, device_code: str, scopes):
    try:
        caller = sso.device_finish(call.backend, device_code)
    except sso.Pending as pending:
        return _oauth_error(pending.error, "the sign-in is not finished at the identity provider yet")
    except sso.Failed as failure:
        _sso_refused(call, failure)
        return _oauth_error("access_denied", failure.said)
    return _answer(call, caller, scopes, offline=True, grant="sso", refresh_seconds=sso.REFRESH_SECONDS)
