"""The registry as a client of another: what a pull-through cache namespace (chalicelib/pullthrough/proxy.py)
asks the registry it mirrors.

The distribution API over HTTPS (plain HTTP for loopback, as docker does), authenticated as the
upstream asks in its 401 challenge: Basic with the cache's credentials, or Docker's token flow (a
token from the challenge's realm for the one scope, with the credentials if the cache has any).
Every failure to get an answer (the network, a timeout, 5xx, 429) is `Unreachable`, which a cache
answers from what it holds; a 404 is `Missing`. The upstream's password is read from Secrets
Manager when a challenge asks for it, and never logged or recorded.

Whatever the upstream does, the registry stays in charge (chalicelib/runtime/outbound.py):
    where it goes    the upstream, its token realm and every redirect are held to one rule
                     (`may_fetch`): https to a host that is not an internal address; a loopback
                     upstream (the local stack's) may also name loopback, plain http only on its
                     own origin. Credentials never follow a redirect to another host.
    how long         one budget (spec.UPSTREAM_BUDGET_SECONDS) for all the upstream requests of
                     one registry request, their bodies included: at the deadline every socket
                     they use is shut, so a sender of a byte every few seconds is cut off too.
"""
from __future__ import annotations
import base64
import json
import re
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Tuple
from urllib.parse import urlencode, urljoin, urlsplit

from chalicelib.oci import spec
from chalicelib.policy.cache import Upstream
from chalicelib.runtime.outbound import (REDIRECT_STATUSES, SENDING, Budget, Unreachable, may_fetch, plainly, pool,
                                         release)

CONNECT_SECONDS, READ_SECONDS = 5, 20
_CHALLENGE_PARAM = r'(\w+)="([^"]*)"'


class Missing(Exception):
    """The upstream answered that it has no such manifest or blob (or refuses to show it)."""


class Busy(Unreachable):
    """As many requests as a cache namespace may have at its upstream at once are there already."""


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
        self.budget = Budget(spec.UPSTREAM_BUDGET_SECONDS, "the upstream")

    def manifest(self, name: str, reference: str) -> Tuple[bytes, Optional[str], Optional[str]]:
        """The manifest's bytes (at most spec.MANIFEST_MAX_BYTES), Content-Type and the digest the
        upstream says it has (Docker-Content-Digest, if sent)."""
        answer = self._get(f"/v2/{name}/manifests/{reference}", name, {"Accept": spec.MANIFEST_ACCEPT})
        try:
            body = answer.response.read(spec.MANIFEST_MAX_BYTES + 1, decode_content=True)
        except Exception as error:  # noqa: BLE001 - any failure mid-body is the upstream's
            raise Unreachable(f"reading the manifest failed ({plainly(error)})") from None
        finally:
            release(answer.response)
        if len(body) > spec.MANIFEST_MAX_BYTES:
            raise Unreachable(f"the upstream's manifest is larger than {spec.MANIFEST_MAX_BYTES} bytes")
        return body, answer.headers.get("content-type"), answer.headers.get(spec.CONTENT_DIGEST_HEADER.lower())

    def tag_digest(self, name: str, tag: str) -> Optional[str]:
        """What the tag names upstream, from a HEAD's Docker-Content-Digest (None if it sends none)."""
        answer = self._get(f"/v2/{name}/manifests/{tag}", name, {"Accept": spec.MANIFEST_ACCEPT}, method="HEAD")
        release(answer.response)
        return answer.headers.get(spec.CONTENT_DIGEST_HEADER.lower())

    def blob_size(self, name: str, digest: str) -> int:
        """The blob's length, from a HEAD (its Docker-Content-Digest, if sent, must be the digest)."""
        answer = self._get(f"/v2/{name}/blobs/{digest}", name, {}, method="HEAD")
        release(answer.response)
        said = answer.headers.get(spec.CONTENT_DIGEST_HEADER.lower())
        try:
            size = int(answer.headers.get("content-length", ""))
        except ValueError:
            size = -1
        if size < 0 or said not in (None, digest):
            raise Unreachable("the upstream's HEAD named no length, or another digest")
        return size

    def blob(self, name: str, digest: str) -> Answer:
        """An open GET of the blob (redirects followed; credentials are not sent to another host);
        the caller reads the body and releases it."""
        return self._get(f"/v2/{name}/blobs/{digest}", name, {})

    def body(self, answer: Answer) -> Iterator[bytes]:
        """An answer's body as it arrives, undecoded; the upstream stopping half-way, or sending
        past the budget, is Unreachable."""
        import urllib3
        try:
            yield from answer.response.stream(spec.MiB, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if self.budget.spent:
                raise Unreachable(f"the upstream did not finish within {self.budget.seconds:g} s") from None
            raise Unreachable(f"the upstream stopped sending ({plainly(error)})") from None

    # --- plumbing --------------------------------------------------------------------------------

    def _get(self, path: str, name: str, headers: dict, method: str = "GET") -> Answer:
        answer = self._send(method, self._base + path, headers)
        if answer.status == 401:
            release(answer.response)
            authorization = self._authorization(answer.headers.get("www-authenticate", ""), name)
            answer = self._send(method, self._base + path, {**headers, "Authorization": authorization})
        if answer.status == 200:
            return answer
        release(answer.response)
        if answer.status in (401, 403, 404):
            raise Missing(f"the upstream answered {answer.status} for {path}")
        raise Unreachable(f"the upstream answered {answer.status} for {path}")

    def _send(self, method: str, url: str, headers: dict) -> Answer:
        """One request and the redirects it leads to, each target held to `may_fetch`; the
        Authorization header goes only to the host it was meant for."""
        host = urlsplit(url).netloc
        for _ in range(spec.UPSTREAM_MAX_REDIRECTS + 1):
            answer = self._send_once(method, url, headers)
            location = answer.headers.get("location")
            if answer.status not in REDIRECT_STATUSES or not location:
                return answer
            release(answer.response)
            target = urljoin(url, location)
            if not may_fetch(target, self._upstream.url):
                # Where it pointed is not told: it may be an address the caller must not learn of.
                raise Unreachable(f"the upstream redirected {method} to an address a cache does not fetch from")
            if answer.status == 303:
                method = "GET" if method != "HEAD" else method
            if urlsplit(target).netloc != host:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = target
        raise Unreachable(f"the upstream redirected more than {spec.UPSTREAM_MAX_REDIRECTS} times")

    def _send_once(self, method: str, url: str, headers: dict) -> Answer:
        import urllib3  # only a cache namespace's miss pays for it

        left = self.budget.remaining()
        SENDING.budget = self.budget
        try:
            response = pool().request(method, url, headers=headers, preload_content=False, redirect=False,
                                       retries=urllib3.Retry(total=3, connect=1, read=0, redirect=0, status=0),
                                       timeout=urllib3.Timeout(connect=min(CONNECT_SECONDS, left),
                                                               read=min(READ_SECONDS, left)))
        except urllib3.exceptions.HTTPError as error:
            if self.budget.spent:
                raise Unreachable(f"the upstream did not finish within {self.budget.seconds:g} s") from None
            raise Unreachable(f"{urlsplit(url).netloc} did not answer ({plainly(error)})") from None
        finally:
            SENDING.budget = None
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response, url)

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
        if not may_fetch(params.get("realm", ""), self._upstream.url, same_origin_http=False):
            # The cache's password goes there: never in clear text over the network.
            raise Missing("the upstream's challenge names no https:// token realm a cache may ask")
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
            release(answer.response)
        if not isinstance(token, str):
            raise Unreachable("the upstream's token service sent no token")
        return "Bearer " + token

    def _credentials(self) -> Optional[Tuple[str, str]]:
        if not self._upstream.username:
            return None
        return self._upstream.username, self._password() or ""


def _basic(credentials: Tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()




