"""The registry as a client of another: what a pull-through cache namespace (chalicelib/cache.py)
asks the registry it mirrors.

The distribution API over HTTPS (plain HTTP for loopback, as docker does), authenticated as the
upstream asks in its 401 challenge: Basic with the cache's credentials, or Docker's token flow (a
token from the challenge's realm for the one scope, with the credentials if the cache has any).
Every failure to get an answer (the network, a timeout, 5xx, 429) is `Unreachable`, which a cache
answers from what it holds; a 404 is `Missing`. The upstream's password is read from Secrets
Manager when a challenge asks for it, and never logged or recorded.
"""
from __future__ import annotations
import base64
import dataclasses
import json
import re
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from chalicelib import spec

# Docker Hub serves official images under library/; `docker pull alpine` means library/alpine.
DOCKER_HUB_HOSTS = ("registry-1.docker.io", "index.docker.io", "docker.io")
CONNECT_SECONDS, READ_SECONDS = 5, 20
_CHALLENGE_PARAM = r'(\w+)="([^"]*)"'


@dataclasses.dataclass(frozen=True)
class Upstream:
    """What a cache namespace mirrors: the upstream's URL, who it signs in as (the password is in
    Secrets Manager under `secret_id`), and how long a tag is served before it is checked again."""
    url: str
    username: Optional[str] = None
    secret_id: Optional[str] = None
    freshness_seconds: int = spec.CACHE_FRESHNESS_SECONDS_DEFAULT

    @classmethod
    def from_json(cls, text: Optional[str]) -> Optional["Upstream"]:
        return cls(**json.loads(text)) if text else None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def public(self) -> dict:
        """What an admin sees: never the secret's value."""
        return {"url": self.url, "username": self.username, "freshness_seconds": self.freshness_seconds}

    def repository(self, name: str) -> str:
        """The upstream's name for `name` (a repository's name after the cache namespace)."""
        if "/" not in name and urlsplit(self.url).hostname in DOCKER_HUB_HOSTS:
            return "library/" + name
        return name


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def secure_url(url: str) -> bool:
    """https://, or http:// to this machine (a registry on loopback, as docker allows)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http"
                                                                 and parts.hostname in LOOPBACK_HOSTS))


class Unreachable(Exception):
    """The upstream gave no usable answer (network, timeout, 5xx, 429): served from the cache."""


class Missing(Exception):
    """The upstream answered that it has no such manifest or blob (or refuses to show it)."""


class Answer(NamedTuple):
    status: int
    headers: Dict[str, str]
    response: object  # urllib3's response, its body not yet read
    url: str  # where the answer came from, after redirects


class UpstreamClient:
    def __init__(self, upstream: Upstream, password: Callable[[], Optional[str]]):
        self._upstream = upstream
        self._password = password
        self._base = upstream.url.rstrip("/")

    def manifest(self, name: str, reference: str) -> Tuple[bytes, Optional[str], Optional[str]]:
        """The manifest's bytes (at most spec.MANIFEST_MAX_BYTES), Content-Type and the digest the
        upstream says it has (Docker-Content-Digest, if sent)."""
        answer = self._get(f"/v2/{name}/manifests/{reference}", name, {"Accept": spec.MANIFEST_ACCEPT})
        try:
            body = answer.response.read(spec.MANIFEST_MAX_BYTES + 1, decode_content=True)
        except Exception as error:  # noqa: BLE001 - any failure mid-body is the upstream's
            raise Unreachable(f"reading the manifest failed: {error}") from None
        finally:
            _release(answer.response)
        if len(body) > spec.MANIFEST_MAX_BYTES:
            raise Unreachable(f"the upstream's manifest is larger than {spec.MANIFEST_MAX_BYTES} bytes")
        return body, answer.headers.get("content-type"), answer.headers.get(spec.CONTENT_DIGEST_HEADER.lower())

    def tag_digest(self, name: str, tag: str) -> Optional[str]:
        """What the tag names upstream, from a HEAD's Docker-Content-Digest (None if it sends none)."""
        answer = self._get(f"/v2/{name}/manifests/{tag}", name, {"Accept": spec.MANIFEST_ACCEPT}, method="HEAD")
        _release(answer.response)
        return answer.headers.get(spec.CONTENT_DIGEST_HEADER.lower())

    def blob(self, name: str, digest: str) -> Answer:
        """An open GET of the blob (redirects followed; credentials are not sent to another host);
        the caller reads the body and releases it."""
        return self._get(f"/v2/{name}/blobs/{digest}", name, {})

    # --- plumbing --------------------------------------------------------------------------------

    def _get(self, path: str, name: str, headers: dict, method: str = "GET") -> Answer:
        answer = self._send(method, self._base + path, headers)
        if answer.status == 401:
            _release(answer.response)
            authorization = self._authorization(answer.headers.get("www-authenticate", ""), name)
            answer = self._send(method, self._base + path, {**headers, "Authorization": authorization})
        if answer.status == 200:
            return answer
        _release(answer.response)
        if answer.status in (401, 403, 404):
            raise Missing(f"the upstream answered {answer.status} for {path}")
        raise Unreachable(f"the upstream answered {answer.status} for {path}")

    def _send(self, method: str, url: str, headers: dict) -> Answer:
        import urllib3  # only a cache namespace's miss pays for it

        try:
            response = _pool().request(method, url, headers=headers, preload_content=False, redirect=True,
                                       retries=urllib3.Retry(total=3, connect=1, read=0, redirect=3, status=0),
                                       timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS))
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(f"{urlsplit(url).netloc} did not answer ({error})") from None
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response,
                      response.geturl() or url)

    def _authorization(self, challenge: str, name: str) -> str:
        """The Authorization header the upstream's challenge asks for."""
        scheme, _, rest = challenge.partition(" ")
        credentials = self._credentials()
        if scheme.lower() == "basic":
            if credentials is None:
                raise Missing("the upstream asks for credentials; add them with dockless cache add")
            return _basic(credentials)
        if scheme.lower() != "bearer":
            raise Missing(f"the upstream asks for {scheme or 'an unknown'} authentication")
        params = dict(re.findall(_CHALLENGE_PARAM, rest))
        if not secure_url(params.get("realm", "")):
            # The cache's password goes there: never in clear text over the network.
            raise Missing("the upstream's challenge names no https:// token realm")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or f"repository:{name}:pull"}
        headers = {}
        if credentials is not None:
            headers["Authorization"] = _basic(credentials)
        answer = self._send("GET", params["realm"] + "?" + urlencode(query), headers)
        try:
            if answer.status != 200:
                raise (Unreachable if answer.status >= 500 or answer.status == 429 else Missing)(
                    f"the upstream's token service answered {answer.status}")
            document = json.loads(answer.response.read(64 * spec.KiB))
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            raise Unreachable("the upstream's token service sent no token") from None
        finally:
            _release(answer.response)
        if not isinstance(token, str):
            raise Unreachable("the upstream's token service sent no token")
        return "Bearer " + token

    def _credentials(self) -> Optional[Tuple[str, str]]:
        if not self._upstream.username:
            return None
        return self._upstream.username, self._password() or ""


_POOL = None


def _pool():
    """One connection pool per container, for every cache's upstream."""
    global _POOL
    if _POOL is None:
        import urllib3
        _POOL = urllib3.PoolManager(num_pools=8, maxsize=4)
    return _POOL


def _basic(credentials: Tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def body_of(answer: Answer) -> Iterator[bytes]:
    """An answer's body as it arrives, undecoded; the upstream stopping half-way is Unreachable."""
    import urllib3
    try:
        yield from answer.response.stream(spec.MiB, decode_content=False)
    except urllib3.exceptions.HTTPError as error:
        raise Unreachable(f"the upstream stopped sending ({error})") from None


def _release(response) -> None:
    """Give a connection back to the pool with nothing left to read on it (what is left of a small
    answer is read; a connection given back mid-body would answer the next request with it)."""
    try:
        response.drain_conn()
    finally:
        response.release_conn()
