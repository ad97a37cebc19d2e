"""Single sign-on for people: the company's OpenID Connect provider signs people in, to the
console with the authorization code flow and PKCE (`begin`, `finish`), to the CLI with the device
authorization grant (RFC 8628: `device_start`, `device_finish`), which the CLI runs through the
registry's token endpoint, so the client secret never leaves the registry.

Configured per registry (runtime/config.SingleSignOn, DOCKLESS_SSO_*): the issuer, the registry's
client id and secret (deployed, from Secrets Manager), which of the provider's groups make a
person a member of which team, the claims that name the person and list their groups.

  * The provider's endpoints and keys come from its discovery document, fetched and cached as a
    federated identity's are (access/federation.KeySets: https, loopback only off Lambda, every
    redirect held to the same rule, bounded), its token endpoint answered only with a POST that
    is never redirected (runtime/outbound.post_form).
  * The ID token is verified as a robot's is (federation.verify): RS256/ES256 by a key the issuer
    publishes, `iss` exactly the issuer, `aud` the client id, exp/nbf/iat, and for the console the
    `nonce` its sign-in sent (its state, nonce and PKCE verifier live in a cookie of that browser
    for FLOW_SECONDS).
  * The person is the principal named by the username claim (lowercased, `@` read as `.`),
    created at the first sign-in and bound to that issuer and subject (Principal.identity): a name
    a local user or another identity holds is refused, never taken over. Their teams are set anew
    at every sign-in from the groups claim through the team map; grants reach them through those
    teams (or grants to the user). No one is made an admin this way: admins stay local users
    (break-glass), as robots and access tokens do.

A failure says what a person can act on (`Failed.said`); which check failed goes to the audit
trail (`Failed.reason`).
"""
from __future__ import annotations
import base64
import hashlib
import json
import secrets
from typing import Dict, List, NamedTuple, Optional
from urllib.parse import urlencode

from pynamodb.exceptions import TransactWriteError

from chalicelib.access import federation
from chalicelib.access.service import Caller, key_sets
from chalicelib.metadata import audit
from chalicelib.metadata.models import Principal, failed_conditions, read_together, transaction
from chalicelib.oci import spec
from chalicelib.runtime import outbound
from chalicelib.runtime.config import SingleSignOn

FLOW_SECONDS = 600  # how long a console sign-in may stay at the provider
REFRESH_SECONDS = 12 * 3600  # the refresh token `dockless login --sso` stores
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PENDING = ("authorization_pending", "slow_down")  # RFC 8628 §3.5: the CLI polls on
ANSWER_MAX_BYTES = 64 * 1024
EXCHANGE_SECONDS = 10
MAX_GROUPS = 1000
CALLBACK = "/ui/sso/callback"


class Failed(Exception):
    """No sign-in: `said` for the person, `reason` for the audit trail."""

    def __init__(self, said: str, reason: str):
        super().__init__(reason)
        self.said, self.reason = said, reason


class Pending(Exception):
    """The person has not finished at the provider yet (`error`: authorization_pending or slow_down)."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


class Flow(NamedTuple):
    """A console sign-in in flight, kept in the browser's cookie: what the callback must match."""
    state: str
    nonce: str
    verifier: str  # PKCE's code_verifier; the provider saw only its S256 challenge

    def text(self) -> str:
        return ".".join(self)

    @classmethod
    def of(cls, text: Optional[str]) -> Optional["Flow"]:
        parts = (text or "").split(".")
        return cls(*parts) if len(parts) == 3 and all(0 < len(part) <= 128 for part in parts) else None


def configured(backend) -> SingleSignOn:
    if backend.settings.sso is None:
        raise Failed("Single sign-on is not configured for this registry.", "single sign-on is not configured")
    return backend.settings.sso


_CLIENT_SECRET: Dict[str, Optional[str]] = {}


def _client_secret(backend, sso: SingleSignOn) -> Optional[str]:
    """The client's secret: from the environment, or read once per container from Secrets Manager."""
    if sso.client_secret or not sso.client_secret_secret:
        return sso.client_secret
    if sso.client_secret_secret not in _CLIENT_SECRET:
        _CLIENT_SECRET[sso.client_secret_secret] = backend.secret(sso.client_secret_secret).strip() or None
    return _CLIENT_SECRET[sso.client_secret_secret]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _endpoint(backend, sso: SingleSignOn, name: str) -> str:
    try:
        discovery = key_sets(backend).discovery(sso.issuer)
    except federation.Refused as error:
        raise Failed("The identity provider could not be reached: try again later.", error.reason) from None
    url = discovery.get(name)
    if not isinstance(url, str) or not key_sets(backend).allowed(sso.issuer)(url):
        raise Failed("The identity provider does not offer this way of signing in.",
                     f"its discovery document has no usable {name}")
    return url


def redirect_uri(backend) -> str:
    return backend.public_url() + CALLBACK


def begin(backend) -> tuple:
    """(the provider's authorization URL to send the browser to, the Flow to keep in its cookie)."""
    sso = configured(backend)
    flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))
    endpoint = _endpoint(backend, sso, "authorization_endpoint")
    query = urlencode({"response_type": "code", "client_id": sso.client_id, "redirect_uri": redirect_uri(backend),
                       "scope": sso.scopes, "state": flow.state, "nonce": flow.nonce,
                       "code_challenge": _b64url(hashlib.sha256(flow.verifier.encode()).digest()),
                       "code_challenge_method": "S256"})
    return endpoint + ("&" if "?" in endpoint else "?") + query, flow


def finish(backend, flow: Optional[Flow], query: Dict[str, str]) -> Caller:
    """The person the provider's redirect back (`query`: code and state, or error) proves."""
    sso = configured(backend)
    if query.get("error"):
        said = str(query["error"])[:100]
        raise Failed(f"The identity provider did not sign you in ({said}).", f"the provider answered {said}")
    if flow is None or not secrets.compare_digest(query.get("state") or "", flow.state):
        raise Failed("The sign-in expired or came from elsewhere: sign in again.",
                     "the state does not match this browser's sign-in")
    code = query.get("code") or ""
    if not 0 < len(code) <= 2048:
        raise Failed("The identity provider sent no code: sign in again.", "no authorization code")
    answer = _token(backend, sso, {"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri(backend), "code_verifier": flow.verifier})
    return _person(backend, sso, answer, flow.nonce)


def device_start(backend) -> dict:
    """RFC 8628 §3.2: the provider's device code, user code and where the person enters it."""
    sso = configured(backend)
    document = _post(backend, sso, _endpoint(backend, sso, "device_authorization_endpoint"), {"scope": sso.scopes})
    shown = {name: document.get(name) for name in ("device_code", "user_code", "verification_uri",
                                                   "verification_uri_complete", "expires_in", "interval")}
    if not all(isinstance(shown[name], str) and 0 < len(shown[name]) <= 2048
               for name in ("device_code", "user_code", "verification_uri")) \
            or not isinstance(shown["expires_in"], int) or isinstance(shown["expires_in"], bool):
        raise Failed("The identity provider's answer was not a device authorization.",
                     "the device authorization answer lacks device_code, user_code, verification_uri or expires_in")
    if not isinstance(shown["interval"], int) or isinstance(shown["interval"], bool):
        shown["interval"] = 5
    return {name: value for name, value in shown.items() if value is not None}


def device_finish(backend, device_code: str) -> Caller:
    """The person who approved `device_code` at the provider, or Pending while they have not."""
    sso = configured(backend)
    if not 0 < len(device_code or "") <= 2048:
        raise Failed("no device_code", "no device_code")
    return _person(backend, sso, _token(backend, sso, {"grant_type": DEVICE_GRANT, "device_code": device_code}), None)


def _post(backend, sso: SingleSignOn, url: str, form: dict) -> dict:
    """The provider's JSON answer to a form POST with the client's authentication
    (client_secret_basic; a public client names itself in the form), or Failed/Pending."""
    secret = _client_secret(backend, sso)
    headers = {}
    if secret:
        pair = f"{_form_escape(sso.client_id)}:{_form_escape(secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    budget = outbound.Budget(EXCHANGE_SECONDS, "the identity provider")
    try:
        status, body = outbound.post_form(url, {**form, "client_id": sso.client_id}, key_sets(backend).allowed(sso.issuer),
                                          budget, ANSWER_MAX_BYTES, headers)
    except outbound.Unreachable as error:
        raise Failed("The identity provider could not be reached: try again later.", str(error)) from None
    finally:
        budget.end()
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise Failed("The identity provider's answer was not JSON.", f"the provider answered {status} with no JSON object")
    if status != 200:
        error = str(document.get("error") or status)[:100]
        if error in PENDING:
            raise Pending(error)
        raise Failed(f"The identity provider did not sign you in ({error}).", f"the provider answered {status} {error}")
    return document


def _form_escape(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")  # RFC 6749 §2.3.1: each part form-encoded before Basic


def _token(backend, sso: SingleSignOn, form: dict) -> dict:
    return _post(backend, sso, _endpoint(backend, sso, "token_endpoint"), form)


def name_of(value) -> Optional[str]:
    """The principal name a username claim gives, or None: lowercased, `@` read as `.`."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower().replace("@", ".")
    return name if spec.PRINCIPAL_NAME_RE.fullmatch(name) else None


def _groups(value) -> List[str]:
    if isinstance(value, str):
        value = [value]
    return [group for group in value[:MAX_GROUPS] if isinstance(group, str)] if isinstance(value, list) else []


def _person(backend, sso: SingleSignOn, answer: dict, nonce: Optional[str]) -> Caller:
    token = answer.get("id_token")
    if not isinstance(token, str):
        raise Failed("The identity provider sent no ID token.", "the token answer has no id_token")
    trust = federation.Trust("sso", sso.issuer, sso.client_id, "*", {"nonce": nonce} if nonce else {})
    try:
        proof = federation.verify(token, [trust], backend.clock().timestamp(), key_sets(backend))
    except federation.Refused as error:
        raise Failed("Single sign-on failed: the identity provider's answer did not verify.", error.reason) from None
    claims = proof.claims or {}
    name = name_of(claims.get(sso.username_claim))
    if name is None:
        raise Failed(f"Your identity provider gives no {sso.username_claim} the registry can use as a name.",
                     f"claim {sso.username_claim} {str(claims.get(sso.username_claim))[:100]!r} is not a principal name")
    teams = sorted({sso.teams[group] for group in _groups(claims.get(sso.groups_claim)) if group in sso.teams})
    return sign_in(backend, name, f"{proof.issuer} {proof.subject}", teams, proof.subject)


def sign_in(backend, name: str, identity: str, teams: List[str], subject: str) -> Caller:
    """The principal `name`, created for `identity` or already bound to it, its teams now `teams`
    (those that exist), the change and its event in one transaction."""
    principal, *found = read_together((Principal, (name,)), *[(Principal, (team,)) for team in teams])
    teams = [team for team, item in zip(teams, found) if item is not None and item.kind == "team"]
    if principal is not None and principal.identity != identity:
        raise Failed(f"The name {name} belongs to someone else in this registry: ask an administrator.",
                     f"{name} exists and is not bound to {identity[:300]}")
    audit.identify(name, None)  # the sign-in's events are the person's
    try:
        with transaction() as txn:
            if principal is None:
                txn.save(Principal(name, kind="user", created_at=backend.clock(), identity=identity,
                                   teams=set(teams) or None), condition=Principal.name.does_not_exist())
            else:
                txn.update(principal, actions=[Principal.teams.set(set(teams)) if teams else Principal.teams.remove()],
                           condition=Principal.identity == identity)
            backend.audit.record_in(txn, "sso.signin", principal=name, issuer=identity.split(" ", 1)[0],
                                    subject=subject, teams=teams, created=principal is None)
    except TransactWriteError as error:
        if not failed_conditions(error):
            raise  # not refused by a condition: busy, or wrong
        raise Failed("Your account changed meanwhile: sign in again.", f"{name} changed during the sign-in") from None
    return Caller(name, None, False, None, frozenset(teams))
