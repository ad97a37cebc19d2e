"""S3 operations on the registry bucket, behind one class that takes an injected client.

Callers pass keys built by `paths.py`; nothing here knows about repositories or digests beyond
hashing what it concatenates.
"""
from __future__ import annotations
import base64
import hashlib
from typing import Iterable, Iterator, List, Optional, Tuple

from chalicelib.oci import spec

# Bytes read from S3 at a time while concatenating staged chunks.
READ_PIECE_BYTES = 1 * spec.MiB


def sha256_base64(hex_digest: str) -> str:
    """The form S3's x-amz-checksum-sha256 takes: base64 of the raw 32 bytes."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _signed_headers(size: int, sha256_b64: str) -> dict:
    """The headers a presigned PUT was signed with; the uploader must send exactly these."""
    return {"Content-Length": str(size), "x-amz-checksum-sha256": sha256_b64,
            "x-amz-sdk-checksum-algorithm": "SHA256"}


class ObjectStore:
    """`client` makes the calls; `presigner` signs the URLs clients use (another endpoint only where
    clients reach S3 elsewhere than the API does: the local stack's public door)."""

    def __init__(self, client, bucket: str, presigner=None):
        self._s3 = client
        self._presigner = presigner or client
        self._bucket = bucket

    def create_bucket(self, region: str) -> None:
        """For the local stack and tests; deployed buckets come from infra/."""
        extra = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        self._s3.create_bucket(Bucket=self._bucket, **extra)

    def put(self, key: str, data: bytes, content_type: Optional[str] = None,
            sha256_hex: Optional[str] = None) -> None:
        extra = {}
        if content_type:
            extra["ContentType"] = content_type
        if sha256_hex:
            # S3 recomputes the checksum and refuses the PUT if the bytes differ.
            extra["ChecksumSHA256"] = sha256_base64(sha256_hex)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, **extra)

    def get(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def presign_get(self, key: str) -> str:
        """A SigV4 GET URL for one key, valid for minutes."""
        return self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=spec.PRESIGNED_URL_EXPIRY_SECONDS)

    def presign_put(self, key: str, size: int, sha256_hex: str) -> Tuple[str, dict]:
        """A SigV4 PUT URL and the headers it signed: S3 refuses a body of another length or hash."""
        checksum = sha256_base64(sha256_hex)
        url = self._presigner.generate_presigned_url(
            "put_object", Params={"Bucket": self._bucket, "Key": key, "ContentLength": size,
                                  "ChecksumSHA256": checksum, "ChecksumAlgorithm": "SHA256"},
            ExpiresIn=spec.PRESIGNED_URL_EXPIRY_SECONDS)
        return url, _signed_headers(size, checksum)

    def start_multipart(self, key: str) -> str:
        return self._s3.create_multipart_upload(Bucket=self._bucket, Key=key,
                                                ChecksumAlgorithm="SHA256")["UploadId"]

    def presign_part(self, key: str, multipart_id: str, number: int, size: int,
                     sha256_b64: str) -> Tuple[str, dict]:
        url = self._presigner.generate_presigned_url(
            "upload_part", Params={"Bucket": self._bucket, "Key": key, "UploadId": multipart_id,
                                   "PartNumber": number, "ContentLength": size,
                                   "ChecksumSHA256": sha256_b64, "ChecksumAlgorithm": "SHA256"},
            ExpiresIn=spec.PRESIGNED_URL_EXPIRY_SECONDS)
        return url, _signed_headers(size, sha256_b64)

    def finish_multipart(self, key: str, multipart_id: str, part_count: int) -> bool:
        """Complete a multipart upload from the parts S3 holds; False if any part is missing."""
        parts = []
        paginator = self._s3.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self._bucket, Key=key, UploadId=multipart_id):
            parts.extend({"PartNumber": p["PartNumber"], "ETag": p["ETag"],
                          "ChecksumSHA256": p.get("ChecksumSHA256")} for p in page.get("Parts", ()))
        if [p["PartNumber"] for p in parts] != list(range(1, part_count + 1)):
            return False
        for part in parts:
            if part["ChecksumSHA256"] is None:
                del part["ChecksumSHA256"]
        self._s3.complete_multipart_upload(Bucket=self._bucket, Key=key, UploadId=multipart_id,
                                           MultipartUpload={"Parts": parts})
        return True

    def abort_multipart(self, key: str, multipart_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=multipart_id)
        except self._s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in ("NoSuchUpload", "404"):
                raise

    def stored_checksum(self, key: str) -> Optional[Tuple[int, Optional[str]]]:
        """(size, SHA-256 checksum S3 keeps for the object) without reading it; None if absent.
        A multipart object's checksum is composite ("<base64>-<parts>"), not the whole hash."""
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except self._s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head["ContentLength"], head.get("ChecksumSHA256")

    def hash_object(self, key: str) -> Optional[Tuple[str, int]]:
        """(sha256 hex, size) by streaming the object; None if absent."""
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except self._s3.exceptions.NoSuchKey:
            return None
        hasher, size = hashlib.sha256(), 0
        for piece in body.iter_chunks(READ_PIECE_BYTES):
            hasher.update(piece)
            size += len(piece)
        return hasher.hexdigest(), size

    def pieces(self, key: str) -> Iterator[bytes]:
        """An object's bytes, streamed in pieces of READ_PIECE_BYTES (a layer read off the request path)."""
        yield from self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].iter_chunks(READ_PIECE_BYTES)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def listing(self, prefix: str) -> Iterator[Tuple[str, int]]:
        """(key, size) of every object under the prefix, in key order, a page (1,000) at a time."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield item["Key"], item["Size"]

    def keys_under(self, prefix: str) -> List[str]:
        return sorted(key for key, _ in self.listing(prefix))

    def delete_keys(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})

    def concatenate_verified(self, source_keys: Iterable[str], target_key: str,
                             expected_sha256_hex: str, write: bool) -> Tuple[str, int]:
        """Stream the sources in order, hashing; return (sha256 hex, size).

        With `write`, the bytes also go to `target_key`, which becomes visible only if the hash
        matches `expected_sha256_hex`. Memory stays below one S3 part plus one read piece.
        """
        pieces = (piece for key in source_keys
                  for piece in self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].iter_chunks(READ_PIECE_BYTES))
        return self.write_verified(pieces, target_key if write else None, expected_sha256_hex)

    def write_verified(self, pieces: Iterable[bytes], target_key: Optional[str],
                       expected_sha256_hex: str) -> Tuple[str, int]:
        """Hash a stream of bytes and, given a `target_key`, write it there; the object becomes
        visible only if the hash matches `expected_sha256_hex`. Returns (sha256 hex, size)."""
        hasher = hashlib.sha256()
        size = 0
        writer = _PartWriter(self._s3, self._bucket, target_key) if target_key else None
        try:
            for piece in pieces:
                hasher.update(piece)
                size += len(piece)
                if writer:
                    writer.write(piece)
        except BaseException:
            if writer:
                writer.abort()
            raise
        actual = hasher.hexdigest()
        if writer:
            if actual == expected_sha256_hex:
                writer.finish(actual)
            else:
                writer.abort()
        return actual, size


class _PartWriter:
    """Writes a stream to one key: a single PUT if it stays under one part, else multipart."""

    def __init__(self, client, bucket: str, key: str):
        self._s3, self._bucket, self._key = client, bucket, key
        self._buffer = bytearray()
        self._upload_id: Optional[str] = None
        self._parts: List[dict] = []

    def write(self, data: bytes) -> None:
        self._buffer.extend(data)
        if len(self._buffer) >= spec.S3_MIN_PART_BYTES:
            self._flush_part()

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        response = self._s3.upload_part(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                        PartNumber=number, Body=bytes(self._buffer))
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()

    def finish(self, sha256_hex: str) -> None:
        if self._upload_id is None:
            self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer),
                                ChecksumSHA256=sha256_base64(sha256_hex))
            return
        if self._buffer:
            self._flush_part()
        self._s3.complete_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                           MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        """Called at most once, instead of `finish`."""
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
