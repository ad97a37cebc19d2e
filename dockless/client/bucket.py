"""Sending one blob to the bucket through the registry's direct-upload extension, for the gateway
and for `dockless push`: ask for presigned URLs, PUT the bytes (one PUT, or multipart parts in
parallel), retry a failed transfer. Bytes are read from a file with pread, a piece at a time, so
memory stays bounded whatever the blob's size.
"""
import base64
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import time
from typing import Callable, Optional

import requests

from chalicelib.oci import spec

LOG = logging.getLogger("dockless.client.bucket")

PIECE_BYTES = 1024 * 1024
# Part uploads in flight at once for one multipart blob.
PARALLEL_PART_UPLOADS = 4
# Attempts per S3 transfer (a part or a single PUT) before the push fails.
TRANSFER_ATTEMPTS = 3

@dataclasses.dataclass(frozen=True)
class ApiAnswer:
    status: int
    document: object  # the parsed JSON body, or the start of the raw one
    whole: object = None  # the caller's own form of the whole answer, to pass on as it is


# (method, path, JSON body) -> ApiAnswer; the caller adds its credentials.
CallApi = Callable[[str, str, dict], ApiAnswer]
# Called with the number of bytes that just reached the bucket.
Progress = Callable[[int], None]


class TransferFailed(Exception):
    pass


class RegistryRefused(TransferFailed):
    """The registry said no (a 4xx or 5xx from the direct-upload extension): its answer is kept."""

    def __init__(self, what: str, answer: ApiAnswer):
        super().__init__(f"the registry refused {what} ({answer.status}): {answer.document}")
        self.answer = answer


class FileSlice:
    """A read-only window on an open file, read with pread so parallel slices share no offset."""

    def __init__(self, fd: int, offset: int, length: int, progress: Optional[Progress] = None):
        self._fd, self._offset, self._length, self._read = fd, offset, length, 0
        self._progress = progress

    def __len__(self) -> int:
        return self._length

    def fresh(self) -> "FileSlice":
        return FileSlice(self._fd, self._offset, self._length, self._progress)

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._read
        if size is None or size < 0 or size > remaining:
            size = remaining
        piece = os.pread(self._fd, min(size, PIECE_BYTES), self._offset + self._read)
        self._read += len(piece)
        if self._progress and piece:
            self._progress(len(piece))
        return piece

    def sha256_base64(self) -> str:
        hasher = hashlib.sha256()
        quiet = FileSlice(self._fd, self._offset, self._length)
        for piece in iter(quiet.read, b""):
            hasher.update(piece)
        return base64.b64encode(hasher.digest()).decode()


class BucketUploader:
    def __init__(self, session: Optional[requests.Session] = None, parallel_parts: int = PARALLEL_PART_UPLOADS):
        self.session = session or requests.Session()
        # Passed on each request: requests lets REQUESTS_CA_BUNDLE override a session's own.
        self.verify = True
        self._parts = concurrent.futures.ThreadPoolExecutor(parallel_parts, thread_name_prefix="part")

    def upload(self, call_api: CallApi, name: str, upload_id: str, digest: str, fd: int, offset: int,
               size: int, progress: Optional[Progress] = None) -> None:
        """Send `size` bytes at `offset` of `fd` as the blob of an open upload session, asking the
        registry through `call_api`. The caller completes the session afterwards with the standard
        PUT ?digest=."""
        answer = call_api("POST", f"/dockless/v1/{name}/uploads/{upload_id}/direct", {"digest": digest, "size": size})
        if answer.status != 200:
            raise RegistryRefused("the direct upload", answer)
        plan = answer.document
        if plan["mode"] == "single":
            self._transfer(plan, FileSlice(fd, offset, size, progress))
            return
        part_size, count = plan["part_size"], plan["part_count"]
        batch = plan.get("max_parts_per_request", spec.PART_URLS_PER_REQUEST)
        for first in range(1, count + 1, batch):
            slices = {n: FileSlice(fd, offset + (n - 1) * part_size,
                                   min(part_size, size - (n - 1) * part_size), progress)
                      for n in range(first, min(first + batch, count + 1))}
            answer = call_api("POST", f"/dockless/v1/{name}/uploads/{upload_id}/parts",
                              {"parts": [{"number": n, "sha256": s.sha256_base64()} for n, s in slices.items()]})
            if answer.status != 200:
                raise RegistryRefused("part URLs", answer)
            futures = [self._parts.submit(self._transfer, part, slices[part["number"]])
                       for part in answer.document["parts"]]
            for future in futures:
                future.result()

    def _transfer(self, signed: dict, data: FileSlice) -> None:
        """One presigned PUT, retried; a fresh slice per attempt, since a failed one was read."""
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            try:
                response = self.session.put(signed["url"], data=data.fresh(), headers=signed["headers"],
                                            timeout=300, verify=self.verify)
                if response.status_code == 200:
                    return
                reason = f"S3 answered {response.status_code}: {response.text[:200]}"
            except requests.RequestException as error:
                reason = str(error)
            LOG.warning("transfer attempt %d of %d failed: %s", attempt, TRANSFER_ATTEMPTS, reason)
            if attempt < TRANSFER_ATTEMPTS:
                time.sleep(0.5 * 2 ** attempt)
        raise TransferFailed(reason)
