"""Who may do what: every access decision, made in one place before a handler runs.

`authorize(request, route, name, backend)` reads the caller's credentials (a bearer token, verified
without any read; or Basic access credentials, checked as at the token endpoint) and returns an
`Access`, or raises the 401 with the challenge docker follows. Handlers never look at credentials:
they ask the `Access` they are given, which answers from the same claims:

    allows(action, repository)   the route's own action was checked already; a mount's source
                                 (pull), verified mode's exemption (push) are asked here
    holds(action, repository)    the token's action or the caller's grants: what an answer may
                                 show (tag history's client addresses), never a gate
    readable(repositories)       the catalog's filter: what of a page the caller may pull

Each route declares its action (distribution's `appendAccessRecords` maps methods to actions the
same way): an action on the repository (spec.PULL, PUSH, DELETE), or one of OPEN (no credentials:
the token endpoint, public keys), AUTHENTICATED (any valid credentials: `/v2/`, where docker logs
in), CATALOG (`registry:catalog:*`) and ADMIN (`registry:admin:*`, admins only). A route may also
name a query parameter that holds another repository it may need pull on (`Route.also_pull`: a
mount's `from`), so that one challenge asks for both scopes.

Two doors lead to the same decision. Through the API door (`API`) credentials come in the
Authorization header and a refusal is the 401 with its challenge. Through the console's door
(`CONSOLE`, the /ui pages) the credential is the session cookie (access/session.py), a posted form
counts only with its CSRF token, the repository a page is about is its `name` field (query or
form), and a refusal says what a person can act on: sign in (401), a repository the caller may not
pull is one that does not exist (404), a push or an admin page refused (403).
"""
from __future__ import annotations
import dataclasses
from typing import Iterable, List, Optional

from chalicelib.access import session
from chalicelib.access.jwt import InvalidToken
from chalicelib.access.service import AuthService, Caller, basic_credentials, caller_of, held
from chalicelib.metadata import audit, keys
from chalicelib.oci import errors, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.spec import DELETE, PULL, PUSH

# No credentials needed: the token endpoint, public keys.
OPEN = "open"
# Any valid credentials (the `/v2/` version check: docker logs in against it).
AUTHENTICATED = "authenticated"
# The `registry:catalog:*` scope; the catalog lists only what the caller may pull (Access.readable).
CATALOG = "catalog"
# The `registry:admin:*` scope, granted to admin principals only.
ADMIN = "admin"
# The doors a request comes through: the registry API, or the console's pages.
API, CONSOLE = "api", "console"
# What a challenge asks for, per action (docker asks for pull and push together when pushing).
CHALLENGE_ACTIONS = {PULL: "pull", PUSH: "pull,push", DELETE: "delete"}


@dataclasses.dataclass(frozen=True)
class Access:
    """What the caller of one request may do: the claims of its token, or what its Basic
    credentials or console session earned for this request's scopes."""
    claims: Optional[dict]
    # Whether the claims name every action the caller holds on each repository they name (a
    # console session asks for all of them), so that `holds` needs no read for those.
    complete: bool = False
    # The caller as this request proved it (Basic credentials, a session): its teams already read.
    proved: Optional[Caller] = None

    @property
    def caller(self) -> Caller:
        return self.proved or caller_of(self.claims)

    def allows(self, action: str, repository: str) -> bool:
        return _granted(self.claims, "repository", repository, action)

    def holds(self, action: str, repository: str) -> bool:
        """Whether the caller may do `action` on the repository, by this token or by its grants (a
        token carries only the scopes its client asked for): for what an answer shows, not a gate."""
        if self.allows(action, repository):
            return True
        if self.complete and _entries(self.claims, "repository", repository):
            return False
        return action in held(self.caller, [repository])[repository]

    def readable(self, repositories: Iterable[str]) -> List[str]:
        """Of these repositories, those the caller may pull (one read of grants for all)."""
        names = list(repositories)
        may = held(self.caller, names)
        return [name for name in names if PULL in may[name]]


def _entries(claims: Optional[dict], kind: str, name: str) -> List[dict]:
    """The claims' `access` entries for one resource."""
    return [entry for entry in (claims or {}).get("access", ())
            if entry.get("type") == kind and entry.get("name") == name]


def _granted(claims: Optional[dict], kind: str, name: str, action: str) -> bool:
    return any(action in entry.get("actions", ()) for entry in _entries(claims, kind, name))


def scopes(request, route, name: Optional[str]) -> List[str]:
    """The token scopes a request needs, as its challenge names them."""
    if name is None:
        return [f"registry:{route.action}:*"] if route.action in (CATALOG, ADMIN) else []
    needed = [f"repository:{name}:{CHALLENGE_ACTIONS[route.action]}"]
    other = (request.query_params or {}).get(route.also_pull)  # None when the route names no parameter
    if other:
        needed.append(f"repository:{validate.repository_name(other)}:pull")
    return needed


def _claims_earned(backend, caller: Optional[Caller], needed: List[str]) -> Optional[dict]:
    """The claims a token for exactly these scopes would carry for this caller (None: none)."""
    if caller is None:
        return None
    return {"sub": caller.name, "cid": caller.credential_id, "admin": caller.admin,
            "access": AuthService(backend).granted_access(caller, needed)}


def _basic_caller(backend, header: str) -> Optional[Caller]:
    """Who Basic access credentials prove, or None. For clients that send credentials on every
    request instead of fetching a token (oras-py's basic backend, curl -u); revocation applies
    at once."""
    try:
        username, secret = basic_credentials(header)
        return AuthService(backend).authenticate(secret, username=username)
    except RegistryError:
        return None


def _session_caller(text: Optional[str], backend) -> Optional[Caller]:
    """Who the console's session cookie (its secret, `text`) proves, or None."""
    try:
        return AuthService(backend).authenticate(text, kind="session") if text else None
    except RegistryError:
        return None


def _whole(needed: List[str]) -> List[str]:
    """A session's scopes: every action on the page's repository (a session is the person, not a
    token its client scoped)."""
    return [scope.rsplit(":", 1)[0] + ":*" if scope.startswith("repository:") else scope for scope in needed]


def repository_of(request, route) -> Optional[str]:
    """The repository a console route is about: its `name` field (the form's, for a form)."""
    if route.name_field is None:
        return None
    fields = session.form(request) if request.method == "POST" else (request.query_params or {})
    return validate.repository_name(fields.get(route.name_field) or "")


def authorize(request, route, name: Optional[str], backend) -> Access:
    """The one place access is decided, before any handler runs. Who asked is kept on the
    request (`request.access`) for the request log and a refused page."""
    if route.action == OPEN:
        return Access(None)
    needed = scopes(request, route, name)
    claims, proved, presented = None, None, False
    if route.door == CONSOLE:
        text = session.secret(request)
        presented = text is not None
        proved = _session_caller(text, backend)
        claims = _claims_earned(backend, proved, _whole(needed))
    else:
        header = request.headers.get("authorization", "")
        presented = bool(header)
        if header[:7].lower() == "bearer ":
            try:
                claims = AuthService(backend).verify_access_token(header[7:].strip())
            except InvalidToken:
                claims = None
        elif header[:6].lower() == "basic ":
            proved = _basic_caller(backend, header)
            claims = _claims_earned(backend, proved, needed)
    access = request.access = Access(claims, complete=route.door == CONSOLE, proved=proved)
    if claims is not None:
        audit.identify(claims.get("sub") or None, claims.get("cid"), claims.get("fed"))
        if route.door == CONSOLE and request.method != "GET" and not session.form_is_ours(request):
            raise RegistryError(errors.DENIED, message=session.FORM_FROM_ELSEWHERE)
    if route.action == AUTHENTICATED and claims is not None:
        return access
    if route.action in (CATALOG, ADMIN) and _granted(claims, "registry", route.action, "*"):
        return access
    if name is not None and route.action in CHALLENGE_ACTIONS and _granted(claims, "repository", name,
                                                                            route.action):
        return access
    if claims is not None or presented:
        # A challenge to a request without credentials is the normal first step of every docker
        # command, not a decision worth recording; anything else refused is.
        backend.audit.record("access.denied", name, outcome=audit.DENIED, method=route.method, route=route.path,
                             needed=route.action)
    if route.door == CONSOLE:
        raise _console_refusal(access, route.action, name)
    # The reference registry answers a token that lacks an action as it answers no token (401
    # UNAUTHORIZED), with error="insufficient_scope" in the challenge; the message says which.
    message = None if claims is None else _refusal_message(backend, claims, route.action, name)
    raise RegistryError(errors.UNAUTHORIZED, message=message,
                        headers={"WWW-Authenticate": challenge(backend, needed, insufficient=claims is not None)})


def _console_refusal(access: Access, action: str, name: Optional[str]) -> RegistryError:
    """A refused page: sign in; a repository the caller may not pull looks exactly like one that
    does not exist; a push or an admin page it may not have."""
    if access.claims is None:
        return RegistryError(errors.UNAUTHORIZED, message="Sign in to see this page.")
    if action == ADMIN:
        return RegistryError(errors.DENIED, message="This page is for admins.")
    if name is not None and not access.allows(PULL, name):
        return RegistryError(errors.NAME_UNKNOWN, message="No such repository, or you may not pull from it.")
    return RegistryError(errors.DENIED, message=f"You may not {action} to {name}.")


def _refusal_message(backend, claims: dict, action: str, name: Optional[str]) -> str:
    """What a caller refused with credentials is told to do: log in (an anonymous token), that a
    cache namespace takes no pushes (whoever asks), or ask an admin for a grant."""
    what = f"{action} on {name or 'the registry'}"
    if not claims.get("sub"):
        return (f"authentication required: anonymous callers may not {action} {name or 'the registry'}; "
                "log in (docker login, dockless login)")
    if action == PUSH and name is not None:
        from chalicelib.policy.settings import SettingsService  # a refusal's cost only
        cache = SettingsService(backend).of(name).cache
        if cache is not None:
            return cache.refusal(keys.namespace_of(name))
    if claims.get("admin"):
        return f"authentication required: the token does not carry {what}; ask for a token with that scope"
    return f"authentication required: the credentials do not allow {what}; ask an admin for a grant"


def challenge(backend, needed: List[str], insufficient: bool) -> str:
    parts = [f'realm="{backend.public_url()}/token"', f'service="{backend.settings.token_service}"']
    if needed:
        parts.append(f'scope="{" ".join(needed)}"')
    if insufficient:
        parts.append('error="insufficient_scope"')
    return "Bearer " + ",".join(parts)
