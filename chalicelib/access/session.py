"""The console's credential: a session, held in a cookie, and the CSRF token every form of a
signed-in page carries.

A session is a credential of kind `session` (AuthService.store_credential: hashed, its parent the
access credential signed in with, so revoking that ends the session too), eight hours long, in an
HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over HTTPS). A form posted with the session
proves it came from one of our pages by its `csrf` field: an HMAC of the session's secret, which
no other site can read or compute. The sign-in form, before any session, uses a random value also
set as a cookie (double submit; console.signin checks it). A single sign-on in flight keeps its
state, nonce and PKCE verifier in FLOW_COOKIE, SameSite=Lax and scoped to /ui/sso: the provider's
redirect back is a navigation from another site, on which a Strict cookie is not sent.
"""
from __future__ import annotations
import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie
from typing import Dict, Optional
from urllib.parse import parse_qs

SESSION_COOKIE = "dockless_session"
SIGNIN_COOKIE = "dockless_signin"  # the sign-in form's CSRF token (double submit)
FLOW_COOKIE = "dockless_sso"
SESSION_SECONDS = 8 * 3600
FORM_FROM_ELSEWHERE = "The form came from elsewhere: reload the page and try again."


def cookies(request) -> Dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie") or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def form(request) -> Dict[str, str]:
    """A posted form's fields (the first value of each)."""
    body = (request.raw_body or b"").decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def secret(request) -> Optional[str]:
    """The session secret the request's cookie holds, unchecked, or None."""
    return cookies(request).get(SESSION_COOKIE) or None


def csrf_of(session: str) -> str:
    return hmac.new(session.encode(), b"dockless console csrf", hashlib.sha256).hexdigest()


def form_is_ours(request) -> bool:
    """Whether a posted form carries its session's CSRF token."""
    session = secret(request)
    return bool(session) and hmac.compare_digest(form(request).get("csrf", ""), csrf_of(session))


def cookie(secure: bool, name: str, value: str, max_age: int) -> str:
    """A Set-Cookie value for the console: HttpOnly, SameSite=Strict, scoped to /ui."""
    return f"{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"


def flow_cookie(secure: bool, value: str, max_age: int) -> str:
    """A Set-Cookie value for a single sign-on in flight: HttpOnly, SameSite=Lax, scoped to /ui/sso."""
    return f"{FLOW_COOKIE}={value}; Path=/ui/sso; Max-Age={max_age}; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
