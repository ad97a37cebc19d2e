"""The web console (`/ui/`): server-rendered pages of what the signed-in principal may pull, from
the same function and front door as the registry API.

    GET  /ui/                      signed out: the sign-in form; signed in: the repositories it may pull
    POST /ui/signin                name + access token (what `docker login` takes) -> a session
    POST /ui/signout               revokes the session
    GET  /ui/repository?name=      a repository's tags and settings
    GET  /ui/console.css

A session is a credential of kind `session` (chalicelib/auth: hashed, its parent the access
credential signed in with, so revoking that ends the session too), eight hours long, held in an
HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over HTTPS). Every form carries a CSRF
token: for the sign-in form a random value also set as a cookie (double submit); once signed in,
an HMAC of the session secret. Templates autoescape; the pages run no script and load nothing
from elsewhere (Content-Security-Policy `default-src 'none'`); framing is refused.
"""
import functools
import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Dict, Optional
from urllib.parse import parse_qs

from chalice import Response

from chalicelib import audit, spec, validate
from chalicelib.auth.service import AuthService, Caller, new_credential_text
from chalicelib.errors import RegistryError
from chalicelib.meta import keys
from chalicelib.meta.keys import CATALOG_PARTITION
from chalicelib.meta.models import Repository, Tag
from chalicelib.repository_settings import SettingsService

SESSION_COOKIE = "dockless_session"
SIGNIN_COOKIE = "dockless_signin"  # the sign-in form's CSRF token (double submit)
SESSION_SECONDS = 8 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
}
HERE = Path(__file__).parent


@functools.lru_cache(maxsize=1)
def _templates():
    import jinja2  # only the console's requests pay for importing it
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _page(template: str, status: int = 200, cookies=(), **context) -> Response:
    body = _templates().get_template(template).render({"caller": None, "csrf": "", **context})
    headers: Dict[str, object] = {**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8"}
    if cookies:
        headers["Set-Cookie"] = list(cookies)
    return Response(body=body, status_code=status, headers=headers)


def _cookie(call, name: str, value: str, max_age: int) -> str:
    secure = "; Secure" if call.backend.public_url().startswith("https://") else ""
    return f"{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


def _cookies(call) -> Dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(call.header("cookie") or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _form(call) -> Dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.body().decode("utf-8", "replace")).items()}


def _csrf_of(session: str) -> str:
    return hmac.new(session.encode(), b"dockless console csrf", hashlib.sha256).hexdigest()


def _session(call) -> Optional[Caller]:
    """The signed-in caller, or None (no session, or one expired, revoked or forged)."""
    text = _cookies(call).get(SESSION_COOKIE)
    if not text:
        return None
    try:
        caller = AuthService(call.backend).authenticate(text, kind="session")
    except RegistryError:
        return None
    audit.identify(caller.name, caller.credential_id)
    return caller


def _signin_form(call, status: int = 200, problem: Optional[str] = None, name: Optional[str] = None) -> Response:
    token = secrets.token_urlsafe(24)
    return _page("signin.html", status, [_cookie(call, SIGNIN_COOKIE, token, 3600)], csrf=token, problem=problem,
                 name=name)


def _refused(status: int, title: str, message: str, caller: Optional[Caller] = None, csrf: str = "") -> Response:
    return _page("refused.html", status, title=title, message=message, caller=caller, csrf=csrf)


def index(call):
    caller = _session(call)
    if caller is None:
        return _signin_form(call)
    names = [repo.name for repo in Repository.query(CATALOG_PARTITION)]
    held = AuthService(call.backend).held(caller, names)
    namespaces: Dict[str, list] = {}
    for name in names:
        if spec.PULL in held[name]:
            namespaces.setdefault(keys.namespace_of(name), []).append(name)
    return _page("repositories.html", caller=caller, csrf=_csrf_of(_cookies(call)[SESSION_COOKIE]),
                 namespaces=sorted(namespaces.items()))


def repository(call):
    caller = _session(call)
    if caller is None:
        return _signin_form(call, 401, "Sign in to see this page.")
    csrf = _csrf_of(_cookies(call)[SESSION_COOKIE])
    name = call.query("name") or ""
    try:
        validate.repository_name(name)
    except RegistryError:
        name = None
    # A repository the caller may not pull looks exactly like one that does not exist.
    if name is None or spec.PULL not in AuthService(call.backend).held(caller, [name])[name]:
        return _refused(404, "Not found", "No such repository, or you may not pull from it.", caller, csrf)
    settings = SettingsService(call.backend).of(name)
    tags = [{"tag": t.tag, "digest": t.digest, "updated_at": t.updated_at, "immutable": settings.immutable(t.tag)}
            for t in Tag.query(name)]
    return _page("repository.html", caller=caller, csrf=csrf, name=name, tags=tags, settings=settings,
                 host=call.backend.public_url().split("://", 1)[-1])


def signin(call):
    form, cookies = _form(call), _cookies(call)
    expected = cookies.get(SIGNIN_COOKIE)
    if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
        return _refused(403, "Refused", "The sign-in form expired or came from elsewhere: reload the page and sign in.")
    name, token = form.get("name", ""), form.get("token", "")
    auth = AuthService(call.backend)
    try:
        caller = auth.authenticate(token, username=name)
    except RegistryError:
        call.backend.audit.record("console.signin", outcome=audit.DENIED, actor=name[:64] or "-")
        return _signin_form(call, 401, "Wrong name or token.", name)
    audit.identify(caller.name, caller.credential_id)
    session = new_credential_text()
    auth.store_credential(caller.name, session, kind="session", lifetime_seconds=SESSION_SECONDS,
                          description="console", parent=caller.credential)
    call.backend.audit.record("console.signin")
    return Response(body="", status_code=303, headers={
        **SECURITY_HEADERS, "Location": "/ui/",
        "Set-Cookie": [_cookie(call, SESSION_COOKIE, session, SESSION_SECONDS), _cookie(call, SIGNIN_COOKIE, "", 0)]})


def signout(call):
    caller = _session(call)
    if caller is None:
        return _signin_form(call)
    if not hmac.compare_digest(_form(call).get("csrf", ""), _csrf_of(_cookies(call)[SESSION_COOKIE])):
        return _refused(403, "Refused", "The form came from elsewhere: reload the page and try again.", caller,
                        _csrf_of(_cookies(call)[SESSION_COOKIE]))
    AuthService(call.backend).revoke_token(caller.credential_id)
    call.backend.audit.record("console.signout")
    return Response(body="", status_code=303, headers={
        **SECURITY_HEADERS, "Location": "/ui/", "Set-Cookie": [_cookie(call, SESSION_COOKIE, "", 0)]})


def stylesheet(call):
    return Response(body=(HERE / "console.css").read_text(), status_code=200,
                    headers={**SECURITY_HEADERS, "Content-Type": "text/css; charset=utf-8"})

