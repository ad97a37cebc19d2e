"""An OpenID Connect provider on loopback, as a CI's token service is (GitHub Actions', GitLab's):
a discovery document and its JWKS over HTTP on 127.0.0.1, ID tokens signed RS256 or ES256 with
keys it can rotate; and, for the hostile cases, a provider that lies (another issuer in its
discovery document), stalls, redirects where it should not and floods."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

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
                                       "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
                if self.path == "/jwks":
                    return self._json({"keys": [provider.jwk(kid, key) for kid, key in provider.keys.items()]})
                self._send(404, b"{}", {})

            def _json(self, document):
                self._send(200, json.dumps(document).encode(), {"Content-Type": "application/json"})

            def _send(self, status, body, headers):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

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
