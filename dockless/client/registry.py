"""The one HTTP client of every `dockless` command that talks to a registry: push and pull (the
OCI distribution API for manifests and existence checks, the direct-upload extension for blob bytes
through dockless/client/bucket.py, presigned S3 URLs for downloads), sign and verify, and the
administration API. Every refusal becomes a ClientError whose text `explain` writes from the
registry's error body; the command line turns it into one error line and exit code 1."""
import hashlib
from pathlib import Path
from typing import Callable, Collection, Iterator, Optional

import requests

from chalicelib.oci import spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.formats import ParsedManifest, parse_manifest
from dockless.client import logins
from dockless.client.answers import did_not_answer, explain
from dockless.client.auth import RegistryAuth
from dockless.client.bucket import ApiAnswer, BucketUploader, FileSlice, RegistryRefused, TransferFailed

ADMIN = "/dockless/admin/v1"


class ClientError(Exception):
    pass


class RegistryClient:
    def __init__(self, base_url: str, session: Optional[requests.Session] = None,
                 bucket: Optional[BucketUploader] = None, username: Optional[str] = None,
                 password: Optional[str] = None, refresh_token: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.auth = RegistryAuth(username, password, refresh_token)
        self.bucket = bucket or BucketUploader()

    @classmethod
    def logged_in(cls, registry: Optional[str]) -> "RegistryClient":
        """A client with the refresh token `dockless login` stored for `registry` (default: the last)."""
        url, entry = logins.stored(registry)
        return cls(url, username=entry["username"], refresh_token=entry["refresh_token"])

    @classmethod
    def of(cls, url: str, username: Optional[str] = None, password: Optional[str] = None) -> "RegistryClient":
        """The client every command uses: with the credentials given (-u/--password, or
        DOCKLESS_USERNAME/DOCKLESS_PASSWORD), else those `dockless login` stored for the registry,
        else anonymous."""
        if username or password:
            return cls(url, username=username, password=password)
        try:
            return cls.logged_in(url)
        except ValueError:
            return cls(url)

    def request(self, method: str, path: str, expect: Collection[int], what: str, **options) -> requests.Response:
        """One call of the registry (`path` under its URL, or a whole URL it gave); a status outside `expect`, or no answer, is a ClientError
        saying what was being done and what the registry said."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        try:
            response = self.session.request(method, url, timeout=options.pop("timeout", 60), **options)
        except requests.RequestException as error:
            raise ClientError(f"{what}: {did_not_answer(self.base_url, error)}") from None
        if response.status_code not in expect:
            raise ClientError(f"{what}: {explain(response)}")
        return response

    def admin(self, method: str, path: str, document=None, params=None):
        """A call of the administration API: its JSON answer, or None for an empty one."""
        response = self.request(method, ADMIN + path, range(200, 300), f"{method} {ADMIN}{path}",
                                json=document, params=params)
        return response.json() if response.content else None

    def _call_api(self, method: str, path: str, document: dict) -> ApiAnswer:
        response = self.session.request(method, self.base_url + path, json=document, timeout=60)
        try:
            return ApiAnswer(response.status_code, response.json(), response)
        except ValueError:
            return ApiAnswer(response.status_code, response.text[:200], response)

    def will_push(self, name: str) -> None:
        """Ask for push with the first token, as docker does: a token of pull alone (what a HEAD's
        challenge names) would be refused, and audited, at the first upload of every thread."""
        self.session.auth.want(f"repository:{name}:pull,push")

    def has_blob(self, name: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{name}/blobs/{digest}", (200, 307, 404), f"checking {digest}",
                                allow_redirects=False)
        return response.status_code != 404

    def upload_blob(self, name: str, digest: str, fd: int, offset: int, size: int,
                    progress: Callable[[int], None]) -> None:
        """Straight to the bucket through the direct-upload extension; to a registry without it
        (404 or 405 for the extension's route), the bytes go in the standard upload's PUT."""
        started = self.request("POST", f"/v2/{name}/blobs/uploads/", (202,), f"starting the upload of {digest}")
        upload_id = started.headers.get(spec.UPLOAD_UUID_HEADER, "")
        try:
            self.bucket.upload(self._call_api, name, upload_id, digest, fd, offset, size, progress)
        except RegistryRefused as refused:
            if not _lacks_extension(refused.answer):
                raise ClientError(f"uploading {digest}: {explain(refused.answer.whole)}") from None
            self._put_whole(started.headers.get("Location", ""), digest, FileSlice(fd, offset, size, progress))
            return
        except TransferFailed as failure:
            raise ClientError(f"uploading {digest} to the bucket: {failure}") from None
        self.request("PUT", f"/v2/{name}/blobs/uploads/{upload_id}", (201,), f"completing the upload of {digest}",
                     params={"digest": digest})

    def _put_whole(self, location: str, digest: str, body: FileSlice) -> None:
        """The standard upload's last step with every byte in it, at the session's Location."""
        separator = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{separator}digest={digest}", (201,),
                     f"uploading {digest}", data=body, timeout=300,
                     headers={"Content-Type": spec.OCTET_STREAM, "Content-Length": str(len(body))})

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        response = self.request("PUT", f"/v2/{name}/manifests/{reference}", (201,),
                                f"pushing the manifest {reference}", data=body, headers={"Content-Type": media_type})
        return response.headers[spec.CONTENT_DIGEST_HEADER]

    def get_manifest(self, name: str, reference: str) -> ParsedManifest:
        """The manifest a reference names, checked as the registry checks a push: whatever a
        registry sends, its digests and media types are well-formed before anything uses them."""
        validate.reference(reference)
        what = f"the manifest {reference}"
        with self.request("GET", f"/v2/{name}/manifests/{reference}", (200,), f"fetching {what}", stream=True,
                          headers={"Accept": spec.MANIFEST_ACCEPT}) as response:
            body = b"".join(limited(response, spec.MANIFEST_MAX_BYTES, what))
        try:
            manifest = parse_manifest(body, response.headers.get("Content-Type"))
        except RegistryError as invalid:
            raise ClientError(f"the registry sent an invalid manifest for {reference}: {invalid.detail}") from None
        if validate.is_digest(reference) and manifest.digest != reference:
            raise ClientError(f"the manifest {reference} arrived with digest {manifest.digest}")
        return manifest

    def fetch_blob(self, name: str, digest: str, size: int, path: Path, progress: Callable[[int], None]) -> None:
        """Download to `path` (following the 307 to S3, which drops our credentials on the way),
        at most the `size` bytes its descriptor says, verifying; nothing is left at `path` or
        beside it unless the bytes match."""
        validate.digest(digest)
        partial = path.with_name(path.name + ".partial")
        try:
            with self.request("GET", f"/v2/{name}/blobs/{digest}", (200,), f"fetching {digest}", stream=True,
                              timeout=300) as response:
                hasher = hashlib.sha256()
                with open(partial, "wb") as out:
                    for piece in limited(response, size, digest, exact=True):
                        hasher.update(piece)
                        out.write(piece)
                        progress(len(piece))
            if "sha256:" + hasher.hexdigest() != digest:
                raise ClientError(f"{digest} arrived with another digest")
            partial.rename(path)
        finally:
            partial.unlink(missing_ok=True)


def limited(response: requests.Response, most: int, what: str, exact: bool = False) -> Iterator[bytes]:
    """A streamed answer's body, refused as soon as it says or sends more than `most` bytes (a
    hostile registry's answer is never read whole first); with `exact`, fewer is refused too."""
    said = response.headers.get("Content-Length", "")
    if said.isdigit() and int(said) > most:
        raise ClientError(f"{what} is {said} bytes, more than the {most} expected")
    received = 0
    for piece in response.iter_content(64 * spec.KiB):
        received += len(piece)
        if received > most:
            raise ClientError(f"{what} sent more than the {most} bytes expected")
        yield piece
    if exact and received != most:
        raise ClientError(f"{what} ended after {received} of its {most} bytes")


def _lacks_extension(answer: ApiAnswer) -> bool:
    """A registry without the direct-upload extension answers its route as an unknown route."""
    if answer.status not in (404, 405):
        return False
    try:
        return answer.document["errors"][0]["code"] != "BLOB_UPLOAD_UNKNOWN"
    except (TypeError, KeyError, IndexError):
        return True
