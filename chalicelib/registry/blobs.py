"""Blobs: links that prove a repository may serve a blob, and upload sessions that create them.

A blob becomes readable in a repository only by proof: its bytes were verified for an upload into
that repository, or it was mounted from a repository that holds a link. Knowing a digest is not
enough, even when the bytes already sit in the bucket for another repository.
"""
from __future__ import annotations
import datetime
import hashlib
import json
import logging
import uuid
from typing import Callable, Iterable, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.backend import Backend
from chalicelib.lifecycle import gc, quota
from chalicelib.metadata import keys, queries
from chalicelib.metadata.leases import Lease, Scan
from chalicelib.metadata.models import (BlobLink, RepositorySetting, Upload, keep_in_catalog, leave_catalog,
                                        read_together)
from chalicelib.oci import errors, protocol, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.urls import upload_path
from chalicelib.policy.cache import Upstream
from chalicelib.pullthrough.proxy import PullThrough
from chalicelib.storage import paths
from chalicelib.storage.objects import sha256_base64

LOG = logging.getLogger("dockless.blobs")
TOO_LARGE_DETAIL = {"limit_bytes": spec.API_MAX_BODY_BYTES, "advice": spec.BIG_BLOB_ADVICE}


class BlobService:
    def __init__(self, backend: Backend):
        self._backend = backend
        self._objects = backend.objects

    def served(self, repo: str, digest: str, readable: Callable[[Iterable[str]], List[str]],
               head: bool = False) -> Tuple[Optional[BlobLink], Optional[str]]:
        """What a blob GET or HEAD serves: the repository's link, read in one call with its
        namespace's settings, so that a cache namespace's miss is filled from the upstream
        (pullthrough/proxy.py) without another read; elsewhere a miss is BLOB_UNKNOWN. `readable`
        filters repository names to those the caller may pull (Access.readable). A link, or (None,
        the upstream's own URL) for a blob too large to copy in."""
        link, namespace = read_together((BlobLink, (repo, digest)),
                                        (RepositorySetting, (keys.resource(keys.namespace_of(repo)),)))
        if link is not None:
            return link, None
        upstream = Upstream.from_json(namespace.upstream) if namespace is not None else None
        if upstream is None:
            raise RegistryError(errors.BLOB_UNKNOWN, {"digest": digest})
        with PullThrough(self._backend, repo, upstream).open() as cache:
            if head:
                return cache.blob_head(self, digest, readable), None
            return cache.blob(self, digest, readable)

    def link_for(self, repo: str, digest: str) -> BlobLink:
        try:
            return BlobLink.get(repo, digest)
        except DoesNotExist:
            raise RegistryError(errors.BLOB_UNKNOWN, {"digest": digest}) from None

    def small_blob(self, repo: str, digest: str, limit: int = spec.MANIFEST_MAX_BYTES) -> bytes:
        """The bytes of a small blob the repository links (an image config), read in the function;
        larger blobs are never read here."""
        link = self.link_for(repo, digest)
        if link.size > limit:
            raise RegistryError(errors.SIZE_INVALID, f"{digest} is {link.size} bytes; at most {limit} are read here")
        return self._objects.get(link.location)

    def unlink(self, repo: str, digest: str) -> None:
        link = self.link_for(repo, digest)
        freed = quota.delete_link(self._backend, link,
                                  also=lambda txn: self._backend.audit.record_in(txn, "blob.delete", repo, digest))
        if freed is None:
            raise RegistryError(errors.BLOB_UNKNOWN, {"digest": digest})  # deleted meanwhile

    def mount(self, repo: str, source_repo: str, digest: str) -> Optional[BlobLink]:
        """Link a blob that `source_repo` links; None when it does not (the caller falls back to an
        upload session, as the spec asks)."""
        source = self._reusable_link(source_repo, digest)
        if source is None or not source.verified:
            return None  # absent, collected, or not proven as a whole yet (it stays in its own repository)
        return self._link(repo, digest, source.size, source.location, mounted_from=source_repo)

    @staticmethod
    def _reusable_link(repo: str, digest: str) -> Optional[BlobLink]:
        """A link whose bytes a new link may share: read consistently and revived from garbage
        collection's plan (gc.revive), or None."""
        try:
            link = BlobLink.get(repo, digest, consistent_read=True)
        except DoesNotExist:
            return None
        return link if gc.revive(link, BlobLink) else None

    @classmethod
    def verified_link(cls, digest: str, among: Optional[Callable[[List[str]], List[str]]] = None
                      ) -> Optional[BlobLink]:
        """A link to proven bytes of this digest, if any repository has one (the index finds the
        link; the link itself is read and revived before its bytes are shared); `among` keeps
        only the repositories it returns (those a caller may pull)."""
        repos = [entry.repo for entry in BlobLink.by_digest.query(digest, limit=10) if entry.verified]
        for source in (among(repos) if among is not None and repos else repos):
            link = cls._reusable_link(source, digest)
            if link is not None and link.verified:
                return link
        return None

    def shared_link(self, repo: str, digest: str, among: Callable[[List[str]], List[str]]
                    ) -> Optional[BlobLink]:
        """Link bytes that a repository among those `among` returns (the caller may pull them:
        the rule of a mount) proved already, within the quota (no byte moves); None if none."""
        existing = self.verified_link(digest, among)
        if existing is None:
            return None
        standing = self._room_for(repo, digest, existing.size)
        return self._link(repo, digest, existing.size, existing.location, known=standing)

    def fill(self, repo: str, digest: str, size: int, pieces: Iterable[bytes]) -> BlobLink:
        """Link a blob from bytes streamed in (a cache's upstream, chalicelib/pullthrough/proxy.py): written to
        the bucket while hashed (or, when the bucket holds the digest already, hashed only), and
        linked only if they are `size` bytes of `digest`. What they were instead is logged, never
        answered: the caller may not learn what another address served."""
        standing = self._room_for(repo, digest, size)
        key, stored = self._blob_key(digest)
        hex_digest = keys.digest_hex(digest)
        actual, got = self._objects.write_verified(pieces, None if stored else key, hex_digest)
        if (actual, got) != (hex_digest, size):
            LOG.warning(json.dumps({"event": "upstream_bytes_refused", "repo": repo, "digest": digest,
                                    "size": size, "received_bytes": got, "received": f"sha256:{actual}"}))
            raise RegistryError(errors.DIGEST_INVALID, {"expected": digest},
                                message=f"the upstream sent bytes that are not {digest}; nothing was kept")
        return self._link(repo, digest, size, key, known=standing)

    def _link(self, repo: str, digest: str, size: int, location: str, verified: bool = True,
              mounted_from: Optional[str] = None, known: Optional[quota.Standing] = None,
              session: Optional[Upload] = None) -> BlobLink:
        """Write the link, counted against the namespace's quota (refused past it), and end the
        upload `session` it completes."""
        now = self._backend.clock()
        link = BlobLink(repo, digest, size=size, location=location, verified=verified, linked_at=now)

        def also(txn):
            if session is not None:
                txn.delete(session)
            if mounted_from:
                self._backend.audit.record_in(txn, "blob.mount", repo, digest, source=mounted_from)

        try:
            quota.write_link(self._backend, link, also, known)
        except RegistryError as refused:
            if refused.error == errors.QUOTA_EXCEEDED:  # a mount, or a link that lost the last room
                self.abandon_push(repo)
            raise
        keep_in_catalog(repo, now)
        return link

    def _room_for(self, repo: str, digest: str, size: int, upload: Optional[Upload] = None,
                  known: Optional[quota.Standing] = None) -> quota.Standing:
        """Check the quota before any byte is copied or sent; a refused upload session is cancelled,
        and what the push linked before goes (abandon_push), so nothing of the push remains."""
        try:
            return quota.require_room(repo, digest, size, known)
        except RegistryError:
            if upload is not None:
                self.cancel(upload)
            self.abandon_push(repo)
            raise

    def abandon_push(self, repo: str) -> None:
        """A push into `repo` was refused for its quota: the links no manifest of the repository
        needs that are younger than an upload session lives (what this push, or one racing it,
        uploaded before the refusal) go, and a repository left holding nothing leaves the catalog.
        Best effort: the refusal stands either way, and garbage collection takes what is left."""
        try:
            self._abandon(repo)
        except Exception:  # noqa: BLE001 - the quota's refusal is the answer, whatever this meets
            LOG.exception("could not remove what a refused push left in %s", repo)

    def _abandon(self, repo: str) -> None:
        since = self._backend.clock() - datetime.timedelta(seconds=self._backend.settings.upload_ttl_seconds)
        manifests = list(queries.manifests(repo, consistent=True))
        needed = gc.blobs_of(self._backend, manifests)  # deleted ones too: restorable, their blobs with them
        kept = 0
        for link in queries.links(repo, consistent=True):
            if link.digest in needed or link.linked_at < since:
                kept += 1
                continue
            try:
                if quota.delete_link(self._backend, link, condition=BlobLink.linked_at == link.linked_at) is None:
                    kept += 1  # linked again meanwhile
            except RegistryError:
                kept += 1
        if not manifests and not kept:
            leave_catalog(repo, lambda: queries.holds_anything(repo), self._backend.clock())

    # --- uploads -------------------------------------------------------------------------------

    def push_monolithic(self, repo: str, digest: str, data: bytes) -> BlobLink:
        """POST ?digest= with the whole blob as the body."""
        _check_body_size(data)
        actual = hashlib.sha256(data).hexdigest()
        if f"sha256:{actual}" != digest:
            raise RegistryError(errors.DIGEST_INVALID, {"expected": digest, "actual": f"sha256:{actual}"})
        standing = self._room_for(repo, digest, len(data))
        key, stored = self._blob_key(digest)
        if not stored:
            self._objects.put(key, data, sha256_hex=actual)
        return self._link(repo, digest, len(data), key, known=standing)

    def _blob_key(self, digest: str) -> Tuple[str, bool]:
        """Where verified bytes of this digest go, and whether they are there already: the
        content-addressed key, claimed from garbage collection (gc.claim_object), or, while a
        collection is deleting the object there, a key of this blob's own."""
        key = paths.blob_key(digest)
        if not gc.claim_object(key):
            return paths.direct_blob_key(uuid.uuid4().hex), False
        return key, self._objects.exists(key)

    def start_upload(self, repo: str) -> Upload:
        now = self._backend.clock()
        expires = now + datetime.timedelta(seconds=self._backend.settings.upload_ttl_seconds)
        upload = Upload(uuid.uuid4().hex, repo=repo, received=0, created_at=now,
                        expires_at=int(expires.timestamp()))
        upload.save()
        return upload

    def load_upload(self, repo: str, upload_id: str) -> Upload:
        try:
            upload = Upload.get(upload_id)
        except DoesNotExist:
            upload = None
        return self._usable(upload, repo, upload_id)

    def load_for_link(self, repo: str, upload_id: str, digest: str) -> Tuple[Upload, quota.Standing]:
        """An upload session about to link `digest` (its completion, its direct upload), and the
        namespace's quota standing for the digest, in one read."""
        upload, *counts = read_together((Upload, (upload_id,)), *quota.items_of(repo, digest))
        return self._usable(upload, repo, upload_id), quota.Standing.of(repo, *counts)

    def _usable(self, upload: Optional[Upload], repo: str, upload_id: str) -> Upload:
        """The session, unless it is absent, another repository's or expired (all unknown)."""
        if upload is None or upload.repo != repo:
            raise RegistryError(errors.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id})
        if upload.expires_at <= self._backend.clock().timestamp():
            raise RegistryError(errors.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id, "reason": "expired"})
        return upload

    def append(self, upload: Upload, data: bytes, chunk_range: Optional[Tuple[int, int]] = None) -> Upload:
        """Stage one chunk at the end of the upload. Its Content-Range, if given, must start at the
        current end and cover the body, so chunks arrive in order."""
        offset = upload.received
        try:
            protocol.check_chunk(chunk_range, offset, len(data))
        except RegistryError as refused:
            refused.headers.update(self.state_headers(upload))
            raise
        _check_body_size(data)
        if offset + len(data) > spec.API_MAX_UPLOAD_BYTES:
            raise RegistryError(errors.TOO_LARGE,
                                {"limit_bytes": spec.API_MAX_UPLOAD_BYTES, "advice": spec.BIG_BLOB_ADVICE})
        if not data:
            return upload
        self._objects.put(paths.upload_chunk_key(upload.upload_id, offset), data)
        try:
            upload.update(actions=[Upload.received.add(len(data))], condition=Upload.received == offset)
        except UpdateError:
            # Another chunk landed first; the client's view of the upload is stale.
            upload.refresh()
            raise RegistryError(errors.RANGE_INVALID, "a concurrent chunk changed the upload",
                                headers=self.state_headers(upload)) from None
        return upload

    def complete(self, upload: Upload, digest: str, final_chunk: bytes,
                 known: Optional[quota.Standing] = None) -> BlobLink:
        """PUT ?digest=: verify the staged bytes against the digest, then link the blob. `known`:
        the quota standing read with the session (load_for_link)."""
        if upload.digest is not None:
            if final_chunk:
                raise RegistryError(errors.BLOB_UPLOAD_INVALID,
                                    "this upload goes direct to the bucket; complete it without a body")
            return self._complete_direct(upload, digest, known)
        standing = self._room_for(upload.repo, digest, upload.received + len(final_chunk), upload, known)
        upload = self.append(upload, final_chunk)
        hex_digest = keys.digest_hex(digest)
        key, stored = self._blob_key(digest)
        try:
            chunks = self._objects.keys_under(paths.upload_prefix(upload.upload_id))
            actual, size = self._objects.concatenate_verified(chunks, key, hex_digest, write=not stored)
        finally:
            self.cancel(upload)
        if actual != hex_digest:
            raise RegistryError(errors.DIGEST_INVALID, {"expected": digest, "actual": f"sha256:{actual}"})
        return self._link(upload.repo, digest, size, key, known=standing)

    def state_headers(self, upload: Upload) -> dict:
        """Location, Range and Docker-Upload-UUID of an upload in progress."""
        return protocol.upload_state_headers(self._backend.public_url() + upload_path(upload.repo, upload.upload_id),
                                             upload.upload_id, upload.received)

    def cancel(self, upload: Upload) -> None:
        self._objects.delete_keys(self._objects.keys_under(paths.upload_prefix(upload.upload_id)))
        if upload.digest is not None:
            self._drop_direct_object(upload)
        upload.delete()

    # --- direct to the bucket (the dockless/v1 extension) --------------------------------------

    def open_direct(self, upload: Upload, digest: str, size: int, known: Optional[quota.Standing] = None) -> dict:
        """Sign the upload of one blob of known digest and size to a key of this session alone."""
        if upload.received or upload.digest is not None:
            raise RegistryError(errors.BLOB_UPLOAD_INVALID,
                                "a direct upload needs a fresh session (no chunks, not opened before)")
        self._room_for(upload.repo, digest, size, upload, known)
        settings = self._backend.settings
        key = paths.direct_blob_key(upload.upload_id)
        if size <= settings.multipart_threshold_bytes:
            if size > spec.S3_MAX_SINGLE_PUT_BYTES:
                raise RegistryError(errors.SIZE_INVALID, "above S3's single PUT limit")
            upload.update(actions=[Upload.digest.set(digest), Upload.size.set(size)])
            url, headers = self._objects.presign_put(key, size, keys.digest_hex(digest))
            return {"mode": "single", "url": url, "method": "PUT", "headers": headers,
                    "expires_in": spec.PRESIGNED_URL_EXPIRY_SECONDS}
        part_bytes = max(settings.part_bytes, -(-size // spec.S3_MAX_PARTS))
        multipart_id = self._objects.start_multipart(key)
        upload.update(actions=[Upload.digest.set(digest), Upload.size.set(size),
                               Upload.multipart_id.set(multipart_id), Upload.part_bytes.set(part_bytes)])
        return {"mode": "multipart", "part_size": part_bytes, "part_count": _part_count(size, part_bytes),
                "max_parts_per_request": spec.PART_URLS_PER_REQUEST}

    def part_urls(self, upload: Upload, parts: list) -> list:
        """Presigned URLs for the given parts ({"number", "sha256" base64}), each signed for the
        part's exact length and checksum."""
        if upload.multipart_id is None:
            raise RegistryError(errors.BLOB_UPLOAD_INVALID, "this upload is not a direct multipart upload")
        if not parts or len(parts) > spec.PART_URLS_PER_REQUEST:
            raise RegistryError(errors.BLOB_UPLOAD_INVALID,
                                f"ask for 1 to {spec.PART_URLS_PER_REQUEST} parts at a time")
        count = _part_count(upload.size, upload.part_bytes)
        signed = []
        for part in parts:
            number, checksum = part.get("number"), part.get("sha256")
            if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= count:
                raise RegistryError(errors.BLOB_UPLOAD_INVALID, f"part number must be 1..{count}")
            if not isinstance(checksum, str) or not spec.SHA256_BASE64_RE.fullmatch(checksum):
                raise RegistryError(errors.BLOB_UPLOAD_INVALID, "sha256 is the part's base64 SHA-256")
            size = min(upload.part_bytes, upload.size - (number - 1) * upload.part_bytes)
            url, headers = self._objects.presign_part(paths.direct_blob_key(upload.upload_id),
                                                      upload.multipart_id, number, size, checksum)
            signed.append({"number": number, "url": url, "method": "PUT", "headers": headers})
        return signed

    def _complete_direct(self, upload: Upload, digest: str, known: Optional[quota.Standing]) -> BlobLink:
        key = paths.direct_blob_key(upload.upload_id)
        if digest != upload.digest:
            raise RegistryError(errors.DIGEST_INVALID,
                                {"expected": upload.digest, "given": digest, "reason": "not the digest signed"})
        if upload.multipart_id is not None and not self._objects.finish_multipart(
                key, upload.multipart_id, _part_count(upload.size, upload.part_bytes)):
            raise RegistryError(errors.BLOB_UPLOAD_INVALID, "not every part has been uploaded")
        verdict = self._verify_direct(key, digest, upload.size, multipart=upload.multipart_id is not None)
        if verdict is False:
            self.cancel(upload)
            raise RegistryError(errors.DIGEST_INVALID,
                                {"expected": digest, "reason": "the bucket holds no such bytes for this upload"})
        standing = self._room_for(upload.repo, digest, upload.size, upload, known)
        existing = self.verified_link(digest)
        # The session goes in the link's own transaction: a session left behind would make the
        # cleanup job delete the object the link points at.
        if existing is None:
            return self._link(upload.repo, digest, upload.size, key, verified=verdict is True, known=standing,
                              session=upload)
        link = self._link(upload.repo, digest, upload.size, existing.location, known=standing, session=upload)
        self._objects.delete(key)  # the same bytes were stored and proven already
        return link

    def _verify_direct(self, key: str, digest: str, size: int, multipart: bool) -> Optional[bool]:
        """True: proven. False: absent or wrong. None: stored, but only provable by hashing later.
        S3 checked the signed x-amz-checksum-sha256 when the bytes arrived; one HeadObject reads
        it back, so no byte passes through the API and the time does not grow with the blob."""
        hex_digest = keys.digest_hex(digest)
        stored = self._objects.stored_checksum(key)
        if stored is None or stored[0] != size:
            return False
        if multipart:
            return None  # S3 proved each part; the whole object is proven by verify_unproven_blobs
        return stored[1] == sha256_base64(hex_digest)

    def verify_unproven_blobs(self, lease: Lease, seconds: float) -> int:
        """Scheduled: hash direct multipart blobs that S3 proved only part by part, going on from
        the lease's cursor for about `seconds`. A match makes them shareable; a mismatch unlinks
        them and deletes the bytes."""
        proven = 0
        scan = Scan(BlobLink, lease.cursor, seconds, BlobLink.verified == False)  # noqa: E712 - a DynamoDB condition
        for link in scan:
            hashed = self._objects.hash_object(link.location)
            if hashed == (keys.digest_hex(link.digest), link.size):
                link.update(actions=[BlobLink.verified.set(True)])
                proven += 1
            else:
                LOG.error(json.dumps({"event": "blob_verification_failed", "repo": link.repo,
                                      "digest": link.digest, "location": link.location}))
                quota.delete_link(self._backend, link)
                self._objects.delete(link.location)
            lease.keep(scan.cursor)
        lease.keep(scan.cursor)
        return proven

    def _drop_direct_object(self, upload: Upload) -> None:
        key = paths.direct_blob_key(upload.upload_id)
        if upload.multipart_id is not None:
            self._objects.abort_multipart(key, upload.multipart_id)
        self._objects.delete(key)

    def clean_expired_uploads(self) -> int:
        """Scheduled: drop sessions past their expiry and their staged chunks."""
        now = self._backend.clock().timestamp()
        expired = list(Upload.scan(Upload.expires_at <= int(now)))
        for upload in expired:
            self.cancel(upload)
        return len(expired)


def _part_count(size: int, part_bytes: int) -> int:
    return max(1, -(-size // part_bytes))


def _check_body_size(data: bytes) -> None:
    if len(data) > spec.API_MAX_BODY_BYTES:
        raise RegistryError(errors.TOO_LARGE, TOO_LARGE_DETAIL)
