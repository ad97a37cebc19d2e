"""The whole S3 key layout, drawn once. Only this module builds keys.

    <bucket>/
      blobs/sha256/<hex>                 verified blob bytes (layers, configs, artifacts) uploaded
                                         through the API, shared by every repository that links
                                         the digest (meta BlobLink.location)
      blobs/direct/<upload-id>           a blob uploaded straight to the bucket for one upload
                                         session (presigned PUT or multipart); once verified it stays
                                         here and links point at it: completion never copies bytes
      manifests/sha256/<hex>             manifest bytes exactly as pushed, Content-Type = media type
      uploads/<upload-id>/<offset>       chunks of an upload in progress, <offset> zero-padded to
                                         20 digits so keys list in byte order
      audit/<YYYY>/<MM>/<DD>/part-<n>.jsonl  one day of the audit trail in parts, exported by a scheduled job
      audit/<YYYY>/<MM>/<DD>/day.json        written once the day's parts are all there: how many

Lifecycle rules may expire `uploads/` (never linked: completion writes the verified blob under
`blobs/`) and abort incomplete multipart uploads anywhere. `blobs/` and `manifests/` hold linked
data and no expiry rule may touch them; an abandoned `blobs/direct/` object is deleted by the
upload-cleanup job when its session expires, and otherwise only a garbage collector that consults
the links deletes there.
"""
from __future__ import annotations
from chalicelib.oci import spec

BLOBS_PREFIX = "blobs/"
MANIFESTS_PREFIX = "manifests/"
UPLOADS_PREFIX = "uploads/"
AUDIT_PREFIX = "audit/"


def _split(digest: str) -> tuple:
    algorithm, hex_digest = digest.split(":", 1)
    assert algorithm == spec.SUPPORTED_DIGEST_ALGORITHM, digest
    return algorithm, hex_digest


def blob_key(digest: str) -> str:
    algorithm, hex_digest = _split(digest)
    return f"{BLOBS_PREFIX}{algorithm}/{hex_digest}"


def manifest_key(digest: str) -> str:
    algorithm, hex_digest = _split(digest)
    return f"{MANIFESTS_PREFIX}{algorithm}/{hex_digest}"


def audit_part_key(day, part: int) -> str:
    return f"{AUDIT_PREFIX}{day:%Y/%m/%d}/part-{part:05d}.jsonl"


def audit_day_key(day) -> str:
    return f"{AUDIT_PREFIX}{day:%Y/%m/%d}/day.json"


def direct_blob_key(upload_id: str) -> str:
    return f"{BLOBS_PREFIX}direct/{upload_id}"


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/"


def upload_chunk_key(upload_id: str, offset: int) -> str:
    return f"{upload_prefix(upload_id)}{offset:020d}"
