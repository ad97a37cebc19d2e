"""A registry client for `dockless push` and `dockless pull`: the OCI distribution API for
manifests and existence checks, the direct-upload extension for blob bytes (dockless/bucket.py),
and presigned S3 URLs (followed redirects) for downloads."""
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Tuple

import requests

from chalicelib import spec
from dockless.auth import RegistryAuth
from dockless.bucket import ApiAnswer, BucketUploader, RegistryRefused, TransferFailed

MANIFEST_ACCEPT = ", ".join(sorted(spec.MANIFEST_MEDIA_TYPES))


class ClientError(Exception):
    pass


def _explain(response: requests.Response) -> str:
    try:
        error = response.json()["errors"][0]
        detail = f" ({error['detail']})" if error.get("detail") else ""
        return f"{response.status_code} {error['code']}: {error['message']}{detail}"
    except (ValueError, KeyError, IndexError):
        return f"{response.status_code}: {response.text[:200]}"


class RegistryClient:
    def __init__(self, base_url: str, session: Optional[requests.Session] = None,
                 bucket: Optional[BucketUploader] = None, username: Optional[str] = None,
                 password: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.auth = RegistryAuth(username, password)
        self.bucket = bucket or BucketUploader()

    def _call_api(self, method: str, path: str, document: dict) -> ApiAnswer:
        response = self.session.request(method, self.base_url + path, json=document, timeout=60)
        try:
            return ApiAnswer(response.status_code, response.json(), response)
        except ValueError:
            return ApiAnswer(response.status_code, response.text[:200], response)

    def has_blob(self, name: str, digest: str) -> bool:
        response = self.session.head(f"{self.base_url}/v2/{name}/blobs/{digest}", allow_redirects=False,
                                     timeout=60)
        if response.status_code in (200, 307):
            return True
        if response.status_code == 404:
            return False
        raise ClientError(f"checking {digest}: {_explain(response)}")

    def upload_blob(self, name: str, digest: str, fd: int, offset: int, size: int,
                    progress: Callable[[int], None]) -> None:
        started = self.session.post(f"{self.base_url}/v2/{name}/blobs/uploads/", timeout=60)
        if started.status_code != 202:
            raise ClientError(f"starting the upload of {digest}: {_explain(started)}")
        upload_id = started.headers[spec.UPLOAD_UUID_HEADER]
        try:
            self.bucket.upload(self._call_api, name, upload_id, digest, fd, offset, size, progress)
        except RegistryRefused as refused:
            raise ClientError(f"uploading {digest}: {_explain(refused.answer.whole)}") from None
        except TransferFailed as failure:
            raise ClientError(f"uploading {digest} to the bucket: {failure}") from None
        completed = self.session.put(f"{self.base_url}/v2/{name}/blobs/uploads/{upload_id}",
                                     params={"digest": digest}, timeout=60)
        if completed.status_code != 201:
            raise ClientError(f"completing the upload of {digest}: {_explain(completed)}")

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        response = self.session.put(f"{self.base_url}/v2/{name}/manifests/{reference}", data=body,
                                    headers={"Content-Type": media_type}, timeout=60)
        if response.status_code != 201:
            raise ClientError(f"pushing the manifest {reference}: {_explain(response)}")
        return response.headers[spec.CONTENT_DIGEST_HEADER]

    def get_manifest(self, name: str, reference: str) -> Tuple[bytes, str, str]:
        response = self.session.get(f"{self.base_url}/v2/{name}/manifests/{reference}",
                                    headers={"Accept": MANIFEST_ACCEPT}, timeout=60)
        if response.status_code != 200:
            raise ClientError(f"fetching the manifest {reference}: {_explain(response)}")
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ClientError(f"the manifest {reference} arrived with digest {digest}")
        media_type = json.loads(response.content).get("mediaType") or response.headers["Content-Type"]
        return response.content, media_type, digest

    def fetch_blob(self, name: str, digest: str, path: Path, progress: Callable[[int], None]) -> None:
        """Download (following the 307 to S3, which drops our credentials on the way), verifying."""
        with self.session.get(f"{self.base_url}/v2/{name}/blobs/{digest}", stream=True, timeout=300) as response:
            if response.status_code != 200:
                raise ClientError(f"fetching {digest}: {_explain(response)}")
            hasher = hashlib.sha256()
            partial = path.with_suffix(".partial")
            with open(partial, "wb") as out:
                for piece in response.iter_content(1 << 20):
                    hasher.update(piece)
                    out.write(piece)
                    progress(len(piece))
        if "sha256:" + hasher.hexdigest() != digest:
            partial.unlink()
            raise ClientError(f"{digest} arrived with another digest")
        partial.rename(path)
