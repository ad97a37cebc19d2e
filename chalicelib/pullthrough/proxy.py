"""Pull-through cache namespaces: a namespace that keeps copies of another registry's images,
fetched when first pulled, so builds keep pulling while the upstream is down or rate-limits them
(DESIGN.md "Pull-through cache namespaces").

    manifest by tag     served as cached while fresh (fetched or checked within the cache's
                        freshness, 6 h by default); after that the upstream is asked what the tag
                        names (one HEAD): the same digest marks the tag checked, another digest is
                        fetched, verified, stored and the tag moved
    manifest by digest  fetched once when absent (an index's children when a client asks for them)
    blob                copied from the upstream into the bucket within the request, hashed on the
                        way and linked only if the bytes match the digest (at most
                        spec.CACHE_FILL_MAX_BYTES), even when the bucket holds those bytes for
                        another repository: a cache serves only what its upstream served it, or
                        what the caller could pull anyway (a link in a repository it may pull is
                        shared, as a mount would). A larger blob is passed on to the download URL
                        the upstream redirected to, if it did, and not kept. A HEAD writes nothing:
                        the upstream's HEAD answers it
    upstream down       what is cached keeps being served; a tag that was due for a check carries
                        a Warning header (110, stale); what was never cached is unknown (404),
                        with a message saying the upstream did not answer
    upstream slow       the upstream requests of one registry request share one time budget
                        (spec.UPSTREAM_BUDGET_SECONDS); at most spec.CACHE_FETCHES_PER_NAMESPACE
                        requests of this process are at one namespace's upstream at once, the rest
                        are answered 429 with Retry-After (what is cached is served meanwhile)

What a cache writes is recorded with the actor `cache` (and the caller whose pull caused it).
Nobody may push to a cache namespace (access.service.held grants no push there, and a manifest PUT
is refused); deleting is allowed, and retention applies (`unpulled_days` evicts).
"""
from __future__ import annotations
import contextlib
import datetime
import logging
import threading
from typing import Dict, Optional, Tuple

from pynamodb.exceptions import UpdateError

from chalicelib.metadata import audit, keys
from chalicelib.metadata.models import BlobLink, Manifest, RepositorySetting, Tag
from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.formats import parse_manifest
from chalicelib.policy.cache import Upstream
from chalicelib.policy.settings import SettingsService
from chalicelib.pullthrough.upstream import Busy, Missing, Unreachable, UpstreamClient
from chalicelib.runtime.outbound import secure_url

LOG = logging.getLogger("dockless.cache")
ACTOR = "cache"


def secret_id(backend, namespace: str) -> str:
    """The Secrets Manager secret holding a cache namespace's upstream password."""
    return f"{backend.settings.table_prefix}/cache/{namespace}"


class _Fetching:
    """How many requests of this process are at each cache namespace's upstream."""

    def __init__(self, limit: int):
        self.limit = limit
        self._counts: Dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self, namespace: str):
        with self._lock:
            if self._counts.get(namespace, 0) >= self.limit:
                raise Busy(f"{self.limit} requests are fetching from this upstream already")
            self._counts[namespace] = self._counts.get(namespace, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[namespace] -= 1
                if not self._counts[namespace]:
                    del self._counts[namespace]


FETCHING = _Fetching(spec.CACHE_FETCHES_PER_NAMESPACE)


class PullThrough:
    """One repository of a cache namespace, and the upstream it mirrors."""

    def __init__(self, backend, repo: str, upstream: Upstream):
        self._backend, self._repo, self._upstream = backend, repo, upstream
        self._client = UpstreamClient(upstream, lambda: backend.secret(upstream.secret_id)
                                      if upstream.secret_id else None)
        self._name = upstream.repository(repo.split("/", 1)[1])
        # Set when a tag was served as cached because the upstream could not be asked.
        self.warning: Optional[str] = None

    @contextlib.contextmanager
    def open(self):
        """The cache for one registry request: its upstream time budget ends with it."""
        try:
            yield self
        finally:
            self._client.budget.end()

    def manifest(self, manifests, reference: str, found) -> Manifest:
        """The manifest to serve for a reference, given what the cache holds for it (`found`: the
        tag or the manifest read, or None); `manifests` is the ManifestService that stores."""
        by_digest = validate.is_digest(reference)
        if by_digest and found is not None and found.deleted_at is None:
            return found
        if not by_digest and found is not None and not self._due(found):
            return manifests.get(self._repo, found.digest)
        try:
            with FETCHING.slot(keys.namespace_of(self._repo)):
                if found is not None and not by_digest and \
                        self._client.tag_digest(self._name, reference) == found.digest:
                    self._mark_checked(found)
                    return manifests.get(self._repo, found.digest)
                return self._fetch(manifests, reference, None if by_digest else found)
        except (Unreachable, Missing) as failure:
            if found is None or by_digest:
                where = f"{self._upstream.url}/{self._name}{'@' if by_digest else ':'}{reference}"
                raise _refusal(errors.MANIFEST_UNKNOWN, where, failure) from None
            LOG.warning("serving %s:%s as cached: %s", self._repo, reference, failure)
            self.warning = spec.CACHE_STALE_WARNING
            return manifests.get(self._repo, found.digest)

    def blob(self, blobs, digest: str, readable) -> Tuple[Optional[BlobLink], Optional[str]]:
        """A blob the repository does not link yet: (the link, None) once copied in, or (None, the
        upstream's own download URL) for a blob larger than a request may copy."""
        shared = blobs.shared_link(self._repo, digest, readable)
        if shared is not None:
            return shared, None
        where = f"{self._upstream.url}/{self._name}@{digest}"
        try:
            with FETCHING.slot(keys.namespace_of(self._repo)):
                answer = self._client.blob(self._name, digest)
                try:
                    size = int(answer.headers.get("content-length", "-1"))
                    if not 0 <= size <= spec.CACHE_FILL_MAX_BYTES:
                        if not answer.url.startswith(self._upstream.url.rstrip("/") + "/"):
                            return None, answer.url  # a CDN's presigned URL: no credentials ride along
                        message = (f"{digest} is larger than a cache copies within one request "
                                   f"({spec.CACHE_FILL_MAX_BYTES // spec.MiB} MiB) and {self._upstream.url} "
                                   "serves it itself; copy the image into another namespace with `dockless mirror`")
                        raise RegistryError(errors.BLOB_UNKNOWN, {"digest": digest, "size": size}, message=message)
                    with audit.acting_as(ACTOR):
                        return blobs.fill(self._repo, digest, size, self._client.body(answer)), None
                finally:
                    answer.response.close()  # a blob not read to its end is not drained: the connection goes
        except (Unreachable, Missing) as failure:
            raise _refusal(errors.BLOB_UNKNOWN, where, failure) from None

    def blob_head(self, blobs, digest: str, readable) -> BlobLink:
        """What a HEAD of a blob the repository does not link yet answers, writing nothing: the
        size of a link the caller may pull anyway, or the upstream's own HEAD."""
        shared = blobs.verified_link(digest, readable)
        if shared is not None:
            return BlobLink(self._repo, digest, size=shared.size)
        where = f"{self._upstream.url}/{self._name}@{digest}"
        try:
            with FETCHING.slot(keys.namespace_of(self._repo)):
                size = self._client.blob_size(self._name, digest)
        except (Unreachable, Missing) as failure:
            raise _refusal(errors.BLOB_UNKNOWN, where, failure) from None
        return BlobLink(self._repo, digest, size=size)

    # --- plumbing --------------------------------------------------------------------------------

    def _due(self, tag: Tag) -> bool:
        """Whether the tag is due for a check with the upstream."""
        checked = tag.checked_at or tag.updated_at
        return self._backend.clock() - checked >= datetime.timedelta(seconds=self._upstream.freshness_seconds)

    def _mark_checked(self, tag: Tag) -> None:
        try:
            tag.update(actions=[Tag.checked_at.set(self._backend.clock())], condition=Tag.digest == tag.digest)
        except UpdateError:
            pass  # moved meanwhile: the next pull checks again

    def _fetch(self, manifests, reference: str, tag: Optional[Tag]) -> Manifest:
        """Fetch a manifest from the upstream, check it is what was asked for, and store it (and
        the tag) as a push would."""
        body, content_type, said = self._client.manifest(self._name, reference)
        try:
            manifest = parse_manifest(body, content_type)
        except RegistryError as invalid:
            raise Unreachable(f"the upstream sent an invalid manifest ({invalid.detail})") from None
        expected = reference if validate.is_digest(reference) else said
        if expected is not None and expected != manifest.digest:
            raise Unreachable(f"the upstream sent a manifest of digest {manifest.digest} for {expected}")
        requested_by = audit.current().actor
        with audit.acting_as(ACTOR):
            return manifests.store_cached(self._repo, None if validate.is_digest(reference) else reference,
                                          manifest, body, getattr(tag, "digest", None),
                                          upstream=self._upstream.url, requested_by=requested_by)


def _refusal(code: errors.ErrorCode, what: str, failure: Exception) -> RegistryError:
    """Unknown (404, which docker prints with its message; a 5xx it would not), saying whether the
    upstream lacks it or could not be asked; 429 with Retry-After while the upstream is busy with
    this namespace's other requests."""
    if isinstance(failure, Busy):
        return RegistryError(errors.TOOMANYREQUESTS, {"upstream": what, "reason": "busy"},
                             message=f"{what} is not cached and {failure}: try again shortly",
                             headers={"Retry-After": str(spec.UPSTREAM_BUSY_RETRY_SECONDS)})
    if isinstance(failure, Missing):
        return RegistryError(code, {"upstream": what, "reason": "missing"},
                             message=f"{what} is not in the upstream registry ({failure})")
    return RegistryError(code, {"upstream": what, "reason": "unreachable"},
                         message=f"{what} is not cached and the upstream registry did not answer ({failure})")


# --- administration (routes/admin.py: /dockless/admin/v1/caches/<namespace>) ---------------------

FRESHNESS_SECONDS_MAX = 30 * 24 * 3600
CREDENTIAL_MAX_CHARS = 4096


def caches() -> list:
    """Every cache namespace and its upstream (a scan of the settings: a handful of items)."""
    found = [(item.resource.split(":", 1)[1], Upstream.from_json(item.upstream))
             for item in RepositorySetting.scan(RepositorySetting.upstream.exists())]
    return sorted(({"namespace": namespace, **upstream.public()} for namespace, upstream in found),
                  key=lambda entry: entry["namespace"])


def describe(backend, namespace: str) -> dict:
    """A cache namespace's upstream (never its password) and who set it, when."""
    return _described(namespace, SettingsService(backend).show(namespace))


def _described(namespace: str, shown: dict) -> dict:
    """`describe` from SettingsService.show's answer."""
    if shown["own"]["upstream"] is None:
        raise RegistryError(errors.ADMIN_UNKNOWN, {"namespace": namespace},
                            message=f"{namespace} is not a cache namespace")
    return {"namespace": namespace, **shown["own"]["upstream"], "changed": shown["changes"].get("upstream")}


def configure(backend, namespace: str, document: dict) -> dict:
    """{"url", "username"?, "password"?, "freshness_seconds"?}: make (or change) a cache
    namespace. The password goes to Secrets Manager; nothing else ever holds or records it."""
    url = document.get("url")
    if not isinstance(url, str) or not _upstream_url_ok(url):
        raise RegistryError(errors.ADMIN_INVALID, "url is the upstream registry's https:// URL (http:// only for "
                                                  "localhost), without a path, e.g. https://registry-1.docker.io")
    username, password = document.get("username"), document.get("password")
    if (username is None) != (password is None) or not all(
            value is None or (isinstance(value, str) and 0 < len(value) <= CREDENTIAL_MAX_CHARS)
            for value in (username, password)):
        raise RegistryError(errors.ADMIN_INVALID, "give both username and password (strings), or neither")
    freshness = document.get("freshness_seconds", spec.CACHE_FRESHNESS_SECONDS_DEFAULT)
    if not isinstance(freshness, int) or isinstance(freshness, bool) or not 0 <= freshness <= FRESHNESS_SECONDS_MAX:
        raise RegistryError(errors.ADMIN_INVALID, f"freshness_seconds is 0 … {FRESHNESS_SECONDS_MAX}")
    secret = secret_id(backend, namespace)
    if password is not None:
        _store_secret(backend, secret, password)
    else:
        _delete_secret(backend, secret)
    upstream = Upstream(url.rstrip("/"), username, secret if password is not None else None, freshness)
    return _described(namespace, SettingsService(backend).change(namespace, upstream=upstream))


def remove(backend, namespace: str) -> None:
    """The namespace is a cache no more (what it cached stays, and it takes pushes again)."""
    describe(backend, namespace)
    SettingsService(backend).change(namespace, upstream=None)
    _delete_secret(backend, secret_id(backend, namespace))


def _upstream_url_ok(url: str) -> bool:
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return secure_url(url) and parts.path in ("", "/") and not (
        parts.query or parts.fragment or parts.username or parts.password)


def _store_secret(backend, name: str, value: str) -> None:
    client = backend.client("secretsmanager")
    try:
        client.create_secret(Name=name, SecretString=value,
                             Description="dockless: a pull-through cache's upstream password")
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=value)


def _delete_secret(backend, name: str) -> None:
    client = backend.client("secretsmanager")
    try:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except client.exceptions.ResourceNotFoundException:
        pass
