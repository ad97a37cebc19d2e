"""The whole S3 key layout, drawn once. Only this module builds keys.

    <bucket>/
      blobs/sha256/<hex>                 verified blob bytes (layers, configs, artifacts), shared by
                                         every repository that links the digest (meta BlobLink)
      manifests/sha256/<hex>             manifest bytes exactly as pushed, Content-Type = media type
      uploads/<upload-id>/<offset>       chunks of an upload in progress, <offset> zero-padded to
                                         20 digits so keys list in byte order

Lifecycle rules may expire `uploads/` (never linked: completion writes the verified blob under
`blobs/`) and abort incomplete multipart uploads. `blobs/` and `manifests/` hold linked data and
no rule may touch them; only a garbage collector that consults the links deletes there.
"""
from chalicelib import spec

BLOBS_PREFIX = "blobs/"
MANIFESTS_PREFIX = "manifests/"
UPLOADS_PREFIX = "uploads/"


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


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/"


def upload_chunk_key(upload_id: str, offset: int) -> str:
    return f"{upload_prefix(upload_id)}{offset:020d}"
