"""Blobs: links that prove a repository may serve a blob, and upload sessions that create them.

A blob becomes readable in a repository only by proof: its bytes were verified for an upload into
that repository, or it was mounted from a repository that holds a link. Knowing a digest is not
enough, even when the bytes already sit in the bucket for another repository.
"""
import datetime
import hashlib
import uuid
from typing import Optional, Tuple

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import errors, spec
from chalicelib.errors import RegistryError
from chalicelib.meta.models import BlobLink, Upload, touch_repository, transaction
from chalicelib.services import Services
from chalicelib.storage import paths
from chalicelib.urls import upload_url

TOO_LARGE_DETAIL = {"limit_bytes": spec.API_MAX_BODY_BYTES, "advice": spec.BIG_BLOB_ADVICE}


class BlobService:
    def __init__(self, services: Services):
        self._services = services
        self._objects = services.objects

    def link_for(self, repo: str, digest: str) -> BlobLink:
        try:
            return BlobLink.get(repo, digest)
        except DoesNotExist:
            raise RegistryError(errors.BLOB_UNKNOWN, {"digest": digest}) from None

    def presigned_url(self, repo: str, digest: str, operation: str) -> Tuple[str, BlobLink]:
        """A presigned S3 URL (`get_object` or `head_object`) for a blob the repository links."""
        link = self.link_for(repo, digest)
        return self._objects.presign(operation, link.location), link

    def unlink(self, repo: str, digest: str) -> None:
        link = self.link_for(repo, digest)
        link.delete()

    def mount(self, repo: str, source_repo: str, digest: str) -> Optional[BlobLink]:
        """Link a blob that `source_repo` links; None when it does not (the caller falls back to an
        upload session, as the spec asks)."""
        try:
            source = BlobLink.get(source_repo, digest)
        except DoesNotExist:
            return None
        return self._link(repo, digest, source.size, source.location)

    def _link(self, repo: str, digest: str, size: int, location: str) -> BlobLink:
        now = self._services.clock()
        link = BlobLink(repo, digest, size=size, location=location, linked_at=now)
        with transaction() as txn:
            txn.save(link)
            touch_repository(txn, repo, now)
        return link

    # --- uploads -------------------------------------------------------------------------------

    def push_monolithic(self, repo: str, digest: str, data: bytes) -> BlobLink:
        """POST ?digest= with the whole blob as the body."""
        _check_body_size(data)
        actual = hashlib.sha256(data).hexdigest()
        if f"sha256:{actual}" != digest:
            raise RegistryError(errors.DIGEST_INVALID, {"expected": digest, "actual": f"sha256:{actual}"})
        key = paths.blob_key(digest)
        if not self._objects.exists(key):
            self._objects.put(key, data, sha256_hex=actual)
        return self._link(repo, digest, len(data), key)

    def start_upload(self, repo: str) -> Upload:
        now = self._services.clock()
        expires = now + datetime.timedelta(seconds=self._services.settings.upload_ttl_seconds)
        upload = Upload(uuid.uuid4().hex, repo=repo, received=0, created_at=now,
                        expires_at=int(expires.timestamp()))
        upload.save()
        return upload

    def load_upload(self, repo: str, upload_id: str) -> Upload:
        try:
            upload = Upload.get(upload_id)
        except DoesNotExist:
            upload = None
        if upload is None or upload.repo != repo:
            raise RegistryError(errors.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id})
        if upload.expires_at <= self._services.clock().timestamp():
            raise RegistryError(errors.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id, "reason": "expired"})
        return upload

    def append(self, upload: Upload, data: bytes, start: Optional[int]) -> Upload:
        """Stage one chunk at the end of the upload. `start` (from Content-Range) must be the
        current end, so chunks arrive in order."""
        offset = upload.received
        if start is not None and start != offset:
            raise RegistryError(errors.RANGE_INVALID,
                                f"chunk starts at {start}, but the upload has {offset} bytes",
                                headers=upload_state_headers(upload))
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
                                headers=upload_state_headers(upload)) from None
        return upload

    def complete(self, upload: Upload, digest: str, final_chunk: bytes) -> BlobLink:
        """PUT ?digest=: verify the staged bytes against the digest, then link the blob."""
        upload = self.append(upload, final_chunk, None)
        hex_digest = digest.split(":", 1)[1]
        key = paths.blob_key(digest)
        try:
            chunks = self._objects.keys_under(paths.upload_prefix(upload.upload_id))
            actual, size = self._objects.concatenate_verified(
                chunks, key, hex_digest, write=not self._objects.exists(key))
        finally:
            self.cancel(upload)
        if actual != hex_digest:
            raise RegistryError(errors.DIGEST_INVALID, {"expected": digest, "actual": f"sha256:{actual}"})
        return self._link(upload.repo, digest, size, key)

    def cancel(self, upload: Upload) -> None:
        self._objects.delete_keys(self._objects.keys_under(paths.upload_prefix(upload.upload_id)))
        upload.delete()

    def clean_expired_uploads(self) -> int:
        """Scheduled: drop sessions past their expiry and their staged chunks."""
        now = self._services.clock().timestamp()
        expired = list(Upload.scan(Upload.expires_at <= int(now)))
        for upload in expired:
            self.cancel(upload)
        return len(expired)


def _check_body_size(data: bytes) -> None:
    if len(data) > spec.API_MAX_BODY_BYTES:
        raise RegistryError(errors.TOO_LARGE, TOO_LARGE_DETAIL)


def upload_state_headers(upload: Upload) -> dict:
    """Location, Range and Docker-Upload-UUID: where the upload continues and what it holds."""
    return {
        "Location": upload_url(upload.repo, upload.upload_id),
        "Range": f"0-{max(upload.received - 1, 0)}",
        spec.UPLOAD_UUID_HEADER: upload.upload_id,
    }
