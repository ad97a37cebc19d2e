"""An upstream for pull-through cache tests: Debian's `docker-registry` on loopback, anonymous, behind
Docker token auth (with a token issuer of our own that checks a password and signs RS256 tokens
with a self-signed certificate in an x5c header, as distribution verifies them), or behind Basic
auth (htpasswd). `ReferenceRegistry` pushes images to it with urllib3, which moto's in-process mock leaves
alone."""
import base64
import contextlib
import datetime
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import urllib3

USERNAME, PASSWORD = "puller", "upstream-secret-1"
SERVICE = "upstream-test"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer(http.server.ThreadingHTTPServer):
    """GET /token?service=&scope=: a pull token for the scope's repository, to callers who send
    USERNAME and PASSWORD as Basic credentials; 401 to anyone else."""

    def __init__(self, root: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(now - datetime.timedelta(days=1))
                            .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.bundle = root / "issuer.pem"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.issued = 0
        super().__init__(("127.0.0.1", 0), _IssuerHandler)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"

    def token(self, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        der = self.certificate.public_bytes(serialization.Encoding.DER)
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        access = []
        if scope.startswith("repository:"):
            _, name, _ = scope.split(":", 2)
            access.append({"type": "repository", "name": name, "actions": ["pull"]})
        now = int(time.time())
        claims = {"iss": "test-issuer", "sub": USERNAME, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signed = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signed + "." + _b64url(signature)


class _IssuerHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        scope = parse_qs(urlsplit(self.path).query).get("scope", [""])[0]
        self.server.issued += 1
        body = json.dumps({"token": self.server.token(scope)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def token_issuer(root: Path):
    server = TokenIssuer(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def token_auth(issuer: TokenIssuer) -> str:
    """docker-registry's configuration for Docker token auth by `issuer`."""
    return (f"auth:\n  token:\n    realm: {issuer.realm}\n    service: {SERVICE}\n    issuer: test-issuer\n"
            f"    rootcertbundle: {issuer.bundle}\n")


def basic_auth(root: Path) -> str:
    """docker-registry's configuration for Basic auth of USERNAME and PASSWORD (htpasswd, bcrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python 3.11's; libxcrypt makes bcrypt hashes, which is what htpasswd wants
        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
    (root / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
    return f"auth:\n  htpasswd:\n    realm: upstream\n    path: {root / 'htpasswd'}\n"


class ReferenceRegistry:
    """One docker-registry process on loopback; `stop()` and `start()` it to play an outage.
    Pushes go straight to its storage directory's API with urllib3 (as the registry's own
    credentials would allow; an auth-protected upstream is filled before auth is turned on)."""

    def __init__(self, root: Path, auth: str = ""):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._auth = auth
        self._process: Optional[subprocess.Popen] = None
        self._http = urllib3.PoolManager()
        self.requests_log = root / "registry.log"

    def _config(self, auth: str) -> Path:
        config = self.root / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
                          f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
                          f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{self.port}\n{auth}")
        return config

    def start(self, auth: Optional[str] = None) -> None:
        if shutil.which("docker-registry") is None:
            raise RuntimeError("the cache tests need Debian's docker-registry: make e2e-tools (as root) installs it")
        self._process = subprocess.Popen(["docker-registry", "serve", str(self._config(self._auth if auth is None
                                                                                        else auth))],
                                         stdout=subprocess.DEVNULL, stderr=open(self.requests_log, "a"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self._http.request("GET", self.url + "/v2/", retries=False, timeout=1)
                return
            except urllib3.exceptions.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start: " + self.requests_log.read_text()[-500:])

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def _call(self, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None, expect=(201,)):
        response = self._http.request(method, self.url + path, body=body, headers=headers or {}, redirect=False)
        assert response.status in expect, (method, path, response.status, response.data[:300])
        return response

    def blob(self, name: str, data: bytes, media_type: str = OCI_LAYER) -> dict:
        digest = digest_of(data)
        location = self._call("POST", f"/v2/{name}/blobs/uploads/", expect=(202,)).headers["Location"]
        separator = "&" if "?" in location else "?"
        self._call("PUT", urlsplit(location)._replace(scheme="", netloc="").geturl() + f"{separator}digest={digest}",
                   data, {"Content-Type": "application/octet-stream"})
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._call("PUT", f"/v2/{name}/manifests/{reference}", body, {"Content-Type": media_type})
        return response.headers["Docker-Content-Digest"]

    def image(self, name: str, tag: Optional[str], layers, architecture: str = "amd64") -> tuple:
        """(digest, body, [layer digests]) of an OCI image with these layer bytes."""
        config = self.blob(name, json.dumps({"architecture": architecture, "os": "linux",
                                             "rootfs": {"type": "layers", "diff_ids": []}}).encode(), OCI_CONFIG)
        descriptors = [self.blob(name, data) for data in layers]
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                           "layers": descriptors}).encode()
        return self.manifest(name, tag or digest_of(body), body, OCI_MANIFEST), body, \
            [config["digest"]] + [d["digest"] for d in descriptors]

    def index(self, name: str, tag: str, children) -> tuple:
        """(digest, body) of an OCI index of (digest, body, architecture) children."""
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(child),
             "platform": {"architecture": architecture, "os": "linux"}}
            for digest, child, architecture in children]}).encode()
        return self.manifest(name, tag, body, OCI_INDEX), body

    def blob_file(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes (to corrupt them)."""
        hex_digest = digest.split(":", 1)[1]
        return self.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"


@contextlib.contextmanager
def upstream_registry(root: Path, auth: str = ""):
    root.mkdir(parents=True, exist_ok=True)
    registry = ReferenceRegistry(root, auth)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
