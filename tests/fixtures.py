"""In-process fixtures: the Chalice app through chalice.test.Client, AWS mocked by moto in the
same process. Fast; the e2e tier repeats the important paths with real clients and a moto server."""
import dataclasses
import datetime
import hashlib
import json

import boto3
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from chalice.test import Client

from chalicelib.access import jwt
from chalicelib.backend import use_backend
from chalicelib.metadata.models import TABLES, AuditEvent, JobState, SigninFailures

PUBLIC_URL = "https://registry.example.test"
SIGNING_KEY = "test-signing-key"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class FakeClock:
    def __init__(self):
        self.now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += datetime.timedelta(**kwargs)


@pytest.fixture
def clock():
    return FakeClock()


def _empty(on):
    for model in TABLES:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    on.objects.delete_keys(on.objects.keys_under(""))


@pytest.fixture
def registry(aws, clock):
    _empty(aws)
    backend = dataclasses.replace(aws, clock=clock)
    use_backend(backend)
    yield backend
    use_backend(None)


@pytest.fixture
def anonymous(registry):
    """The test client with no credentials: what an unauthenticated caller sees."""
    from app import app
    with Client(app) as test_client:
        yield test_client.http


_NAMED = re.compile(r"^/(?:v2|dockless/v1|extensions/v2)/(.+?)/(?:(?:blobs|manifests|tags|referrers|uploads|signatures|scans)/"
                    r"|(?:history|diff)$)")


def admin_token(path: str, now: float, query: dict = None) -> str:
    """An access token as the token endpoint would give the bootstrap admin for this request."""
    access = [{"type": "registry", "name": "catalog", "actions": ["*"]},
              {"type": "registry", "name": "admin", "actions": ["*"]}]
    for name in filter(None, [(_NAMED.match(path) or [None, None])[1], (query or {}).get("from")]):
        access.append({"type": "repository", "name": name, "actions": ["delete", "pull", "push"]})
    claims = jwt.new_claims(PUBLIC_URL, "admin", "dockless", None, access, now, 300)
    claims["admin"] = True
    return jwt.encode(claims, SIGNING_KEY.encode())


class AuthorizedClient:
    """chalice's test HTTP client, each request carrying an admin's token for what it touches:
    the in-process tests of the registry's behaviour. Access control has its own tests."""

    def __init__(self, http, clock):
        self._http, self._clock = http, clock

    def request(self, method, path, body=b"", headers=None):
        headers = dict(headers or {})
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        headers.setdefault("Authorization", "Bearer " + admin_token(url.path, self._clock().timestamp(), query))
        return self._http.request(method, path, body=body, headers=headers)

    def __getattr__(self, method):
        return lambda path, **kwargs: self.request(method.upper(), path, **kwargs)


@pytest.fixture
def client(anonymous, clock):
    return AuthorizedClient(anonymous, clock)


def raw_exchange(port: int, request: bytes, read: bool = True) -> bytes:
    """Send bytes exactly as given, say that nothing more comes, and read until the server closes
    (or, without `read`, leave at once): for requests no HTTP library would send."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking all of it: read what it said
        received = b""
        while read:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            received += piece
        return received


class UnauthenticatedFirst:
    """A client that sends every request without credentials, takes the challenge, fetches a token
    for exactly the scope it names, and sends the same request again: what many HTTP libraries
    and Go registry clients (and the OCI conformance suite's) do. `challenges` keeps what it met."""

    def __init__(self, token_url: str, user: str, secret: str, verify=True):
        self.token_url, self.credentials, self.verify = token_url, (user, secret), verify
        self.challenges = []

    def __call__(self, method, url, **kwargs):
        import requests
        first = requests.request(method, url, verify=self.verify, **kwargs)
        if first.status_code != 401:
            return first
        challenge = first.headers["WWW-Authenticate"]
        self.challenges.append(challenge)
        scope = challenge.split('scope="')[1].split('"')[0]
        answer = requests.get(self.token_url, params=[("service", "dockless")] + [("scope", s) for s in scope.split()],
                              auth=self.credentials, verify=self.verify)
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {answer.json()['token']}"}
        return requests.request(method, url, headers=headers, verify=self.verify, **kwargs)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_code(response) -> str:
    return json.loads(response.body)["errors"][0]["code"]


def stored_items() -> dict:
    """Every item of every table of the bound models, except what records use rather than
    changes anything: the audit trail, which records refusals too (tests/api/test_audit.py checks
    it), the count of failed sign-ins (tests/api/test_console.py), a credential's last use and the
    jobs' leases and cursors (tests/api/test_jobs.py)."""
    return {model.__name__: sorted(str(sorted((k, v) for k, v in item.attribute_values.items()
                                              if k != "last_used_at"))
                                   for item in model.scan())
            for model in TABLES if model not in (AuditEvent, SigninFailures, JobState)}


@pytest.fixture
def state(registry):
    """Everything the registry has stored: stored_items() and every S3 key."""
    s3 = boto3.client("s3", region_name="us-east-1")

    def snapshot():
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="test-bucket").get("Contents", ()))
        return stored_items(), keys
    return snapshot


class Pusher:
    """Pushes blobs and manifests through the test client, asserting each step succeeded."""

    def __init__(self, client):
        self.client = client

    def blob(self, repo: str, data: bytes) -> dict:
        digest = digest_of(data)
        response = self.client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", body=data,
                                    headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 201, response.body
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    def image(self, repo: str, tag: str = None, layers=(b"layer-one", b"layer-two"), **fields) -> tuple:
        config = self.blob(repo, json.dumps({"architecture": "amd64", "os": "linux"}).encode())
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                    "layers": [dict(self.blob(repo, data), mediaType=OCI_LAYER) for data in layers],
                    **fields}
        body = json.dumps(manifest).encode()
        response = self.manifest(repo, tag or digest_of(body), body)
        assert response.status_code == 201, response.body
        return body, digest_of(body)

    def manifest(self, repo: str, reference: str, body: bytes, media_type: str = None):
        media_type = media_type or json.loads(body).get("mediaType", OCI_MANIFEST)
        return self.client.put(f"/v2/{repo}/manifests/{reference}", body=body,
                               headers={"Content-Type": media_type})


@pytest.fixture
def push(client):
    return Pusher(client)


@pytest.fixture
def http(stack):
    """requests, answering the registry's Bearer challenges as the admin of the tier's `stack`."""
    import requests

    from dockless.client.auth import RegistryAuth
    session = requests.Session()
    session.auth = RegistryAuth("admin", stack.admin_token)
    yield session
    session.close()
