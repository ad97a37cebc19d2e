"""A registry client for `dockless push` and `dockless pull`: the OCI distribution API for
manifests and existence checks, the direct-upload extension for blob bytes (dockless/bucket.py),
and presigned S3 URLs (followed redirects) for downloads."""
import hashlib
from pathlib import Path
from typing import Callable, Optional

import requests

from chalicelib import spec, validate
from chalicelib.errors import RegistryError
from chalicelib.formats import ParsedManifest, parse_manifest
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

    def get_manifest(self, name: str, reference: str) -> ParsedManifest:
        """The manifest a reference names, checked as the registry checks a push: whatever a
        registry sends, its digests and media types are well-formed before anything uses them."""
        validate.reference(reference)
        response = self.session.get(f"{self.base_url}/v2/{name}/manifests/{reference}",
                                    headers={"Accept": MANIFEST_ACCEPT}, timeout=60)
        if response.status_code != 200:
            raise ClientError(f"fetching the manifest {reference}: {_explain(response)}")
        try:
            manifest = parse_manifest(response.content, response.headers.get("Content-Type"))
        except RegistryError as invalid:
            raise ClientError(f"the registry sent an invalid manifest for {reference}: {invalid.detail}") from None
        if validate.is_digest(reference) and manifest.digest != reference:
            raise ClientError(f"the manifest {reference} arrived with digest {manifest.digest}")
        return manifest

    def fetch_blob(self, name: str, digest: str, path: Path, progress: Callable[[int], None]) -> None:
        """Download to `path` (following the 307 to S3, which drops our credentials on the way),
        verifying; nothing is left at `path` or beside it unless the bytes match."""
        validate.digest(digest)
        partial = path.with_name(path.name + ".partial")
        try:
            with self.session.get(f"{self.base_url}/v2/{name}/blobs/{digest}", stream=True, timeout=300) as response:
                if response.status_code != 200:
                    raise ClientError(f"fetching {digest}: {_explain(response)}")
                hasher = hashlib.sha256()
                with open(partial, "wb") as out:
                    for piece in response.iter_content(1 << 20):
                        hasher.update(piece)
                        out.write(piece)
                        progress(len(piece))
            if "sha256:" + hasher.hexdigest() != digest:
                raise ClientError(f"{digest} arrived with another digest")
            partial.rename(path)
        finally:
            partial.unlink(missing_ok=True)
