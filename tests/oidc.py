"""An OpenID Connect provider on loopback, as a CI's token service is (GitHub Actions', GitLab's)
and as a company's identity provider is: a discovery document and its JWKS over HTTP on
127.0.0.1, ID tokens signed RS256 or ES256 with keys it can rotate, and for people an
authorization endpoint (a sign-in page), a token endpoint (authorization code with PKCE, and the
device grant) and a device authorization endpoint, for one client it knows. For the hostile
cases, a provider that lies (another issuer in its discovery document; `answer` replaces its
token endpoint's ID token), stalls, redirects where it should not and floods."""
import base64
import contextlib
import hashlib
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _number(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Provider:
    """`issuer` (http://127.0.0.1:PORT), serving `keys` (kid -> private key) as its JWKS.
    `mode` breaks it: "lie", "stall", "redirect-internal", "redirect-loop", "flood"."""

    def __init__(self):
        self.keys = {"k1": rsa.generate_private_key(65537, 2048)}
        self.mode: Optional[str] = None
        self.fetches = 0
        self.clock = time.time  # what "now" is for the tokens it issues (a test's registry clock)
        # The client it knows (the registry): its id, and its secret (None: a public client).
        self.client_id, self.client_secret = "dockless", None
        self.kid = "k1"  # the key its token endpoint signs ID tokens with
        self.people: Dict[str, dict] = {}  # who may sign in here: user name -> their claims
        self.codes: Dict[str, dict] = {}  # authorization codes issued, until used
        self.devices: Dict[str, dict] = {}  # device codes, with the user code and who approved
        self.token_requests = []  # the forms its token endpoint got, with the client's Authorization
        # A test's change of what the token endpoint answers: (the answer it would give) -> (status, document).
        self.answer: Optional[Callable[[dict], tuple]] = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                provider.fetches += 1
                mode = provider.mode
                if mode == "stall":
                    time.sleep(30)
                if mode == "redirect-internal":
                    return self._send(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
                if mode == "redirect-loop":
                    return self._send(302, b"", {"Location": self.path})
                if mode == "flood":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        for _ in range(4096):
                            self.wfile.write(b" " * 65536)
                    except OSError:
                        pass
                    return
                if self.path == "/.well-known/openid-configuration":
                    issuer = "https://evil.example.test" if mode == "lie" else provider.issuer
                    return self._json({"issuer": issuer, "jwks_uri": provider.issuer + "/jwks",
                                       "authorization_endpoint": provider.issuer + "/authorize",
                                       "token_endpoint": provider.issuer + "/oauth/token",
                                       "device_authorization_endpoint": provider.issuer + "/device",
                                       "code_challenge_methods_supported": ["S256"],
                                       "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
                if self.path == "/jwks":
                    return self._json({"keys": [provider.jwk(kid, key) for kid, key in provider.keys.items()]})
                if self.path.startswith("/authorize?"):
                    return self._page(self._sign_in_page(parse_qs(urlsplit(self.path).query)))
                if self.path.startswith("/activate"):
                    return self._page("<form method=post action=/activate><label>Code <input name=user_code></label>"
                                      "<label>User <input name=username></label><button>Approve</button></form>")
                self._send(404, b"{}", {})

            def do_POST(self):
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                                                     .decode()).items()}
                if self.path == "/authorize":
                    return provider._authorize(self, form)
                if self.path == "/activate":
                    provider.approve(form.get("user_code", ""), form.get("username", ""))
                    return self._page("<p>Approved: go back to your terminal.</p>")
                if self.path == "/device":
                    if not provider._client_ok(self, form):
                        return self._json({"error": "invalid_client"}, 401)
                    return self._json(provider._device(form))
                if self.path == "/oauth/token":
                    provider.token_requests.append({**form, "authorization": self.headers.get("Authorization")})
                    status, document = provider._token(self, form)
                    if provider.answer is not None:
                        status, document = provider.answer(document)
                    return self._json(document, status)
                self._send(404, b"{}", {})

            def _sign_in_page(self, query):
                fields = "".join(f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v[0])}">'
                                 for k, v in query.items())
                return (f"<h1>Acme identity</h1><form method=post action=/authorize>{fields}"
                        "<label>User <input name=username></label><button type=submit>Sign in</button></form>")

            def _page(self, text):
                self._send(200, f"<!doctype html><html><body>{text}</body></html>".encode(),
                           {"Content-Type": "text/html; charset=utf-8"})

            def _json(self, document, status=200):
                self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

            def _send(self, status, body, headers):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client the registry cut off
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    # --- people: authorization code with PKCE, and the device grant ------------------------------

    def _client_ok(self, request, form) -> bool:
        """client_secret_basic, or a public client naming itself in the form."""
        header = request.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            from urllib.parse import unquote
            client, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return unquote(client) == self.client_id and unquote(secret) == self.client_secret
        return self.client_secret is None and form.get("client_id") == self.client_id

    def _authorize(self, request, form):
        """The sign-in page's form: the person's name, the authorization request's fields."""
        person = self.people.get(form.get("username", ""))
        redirect = form.get("redirect_uri", "")
        if form.get("client_id") != self.client_id or form.get("response_type") != "code" \
                or form.get("code_challenge_method") != "S256" or not form.get("code_challenge"):
            return request._send(400, b"bad authorization request", {})
        if person is None:
            query = {"error": "access_denied", "state": form.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"redirect_uri": redirect, "challenge": form["code_challenge"],
                                "nonce": form.get("nonce"), "person": form["username"]}
            query = {"code": code, "state": form.get("state", "")}
        request._send(302, b"", {"Location": redirect + ("&" if "?" in redirect else "?") + urlencode(query)})

    def _device(self, form) -> dict:
        device_code, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        self.devices[device_code] = {"user_code": user_code, "person": None}
        return {"device_code": device_code, "user_code": user_code, "verification_uri": self.issuer + "/activate",
                "verification_uri_complete": f"{self.issuer}/activate?user_code={user_code}", "expires_in": 600,
                "interval": 1}

    def approve(self, user_code: str, username: str) -> None:
        """The person `username` enters `user_code` at the verification page (the device grant)."""
        for device in self.devices.values():
            if device["user_code"] == user_code:
                device["person"] = username

    def _token(self, request, form) -> tuple:
        if not self._client_ok(request, form):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if issued is None or issued["redirect_uri"] != form.get("redirect_uri") or \
                    b64url(hashlib.sha256(verifier.encode()).digest()) != issued["challenge"]:
                return 400, {"error": "invalid_grant"}
            person, nonce = issued["person"], issued["nonce"]
        elif form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "expired_token"}
            if device["person"] is None:
                return 400, {"error": "authorization_pending"}
            if device["person"] not in self.people:
                return 400, {"error": "access_denied"}
            person, nonce = device["person"], None
            del self.devices[form["device_code"]]
        else:
            return 400, {"error": "unsupported_grant_type"}
        claims = dict(self.people[person])
        subject = claims.pop("sub", "id-" + person)
        id_token = self.token(subject, audience=self.client_id, kid=self.kid, **({"nonce": nonce} if nonce else {}),
                              **claims)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}

    @staticmethod
    def jwk(kid: str, key) -> dict:
        public = key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": _number(numbers.n),
                    "e": _number(numbers.e)}
        numbers = public.public_numbers()
        return {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def token(self, subject: str, audience="https://registry.example.test", kid: str = "k1", lifetime: int = 300,
              now: Optional[float] = None, header: Optional[dict] = None, issuer: Optional[str] = None,
              **claims) -> str:
        """An ID token as a CI issues it, signed with key `kid` (RS256 for RSA, ES256 for EC)."""
        key = self.keys[kid]
        now = self.clock() if now is None else now
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        body = {"iss": issuer or self.issuer, "sub": subject, "aud": audience, "iat": int(now), "nbf": int(now) - 5,
                "exp": int(now) + lifetime, "jti": "j" + str(int(now * 1000)), **claims}
        head = {"alg": alg, "typ": "JWT", "kid": kid, **(header or {})}
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(body).encode())}".encode()
        if alg == "RS256":
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input.decode()}.{b64url(signature)}"

    def forged_hs256(self, subject: str, **claims) -> str:
        """The old confusion: an HS256 token whose HMAC key is the provider's public key (PEM)."""
        import hashlib
        import hmac
        pem = self.keys["k1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        body = {"iss": self.issuer, "sub": subject, "aud": "https://registry.example.test",
                "exp": int(self.clock()) + 300, **claims}
        signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{b64url(json.dumps(body).encode())}"
        return f"{signing_input}.{b64url(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"

    def unsigned(self, subject: str) -> str:
        body = {"iss": self.issuer, "sub": subject, "aud": "https://registry.example.test", "exp": int(self.clock()) + 300}
        return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(body).encode())}."


@contextlib.contextmanager
def serving(clock):
    """A provider whose tokens use the test's clock; the registry forgets the issuers' keys it
    fetched before, and after."""
    import chalicelib.access.service as service_module
    service_module._KEY_SETS = None
    provider = Provider()
    provider.clock = lambda: clock().timestamp()
    try:
        yield provider
    finally:
        provider.close()
        service_module._KEY_SETS = None
