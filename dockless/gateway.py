"""`dockless gateway`: the registry API for docker, podman, skopeo, ctr and oras, with layer bytes
sent straight to the bucket.

Every request is forwarded to the upstream registry unchanged (headers, auth challenges, status,
body), except upload bodies. Clients send a layer as one PATCH (docker, podman, skopeo) or one PUT
(containerd) before they name its digest, and none of them can target a presigned URL. So the
gateway spools each upload body to a temporary file while hashing it; on the final
`PUT …?digest=` it checks the digest, asks the upstream's direct-upload extension for presigned
URLs (one PUT, or multipart parts in parallel), sends the file to S3, and completes the upload
with a body-less PUT. Memory stays bounded by PIECE_BYTES per transfer; the process never holds a
layer. Credentials are never stored: the client's Authorization header rides along on the calls
made for it.
"""
import hashlib
import http.client
import http.server
import json
import logging
import re
import socketserver
import tempfile
import threading
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

from chalicelib import errors, spec
from chalicelib.errors import ErrorCode, error_body
from dockless.bucket import BucketUploader, TransferFailed
from dockless.httpbody import iter_body, send

LOG = logging.getLogger("dockless.gateway")

# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
UPLOAD_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$")
UPLOADS_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")

Reply = Tuple[int, List[Tuple[str, str]], bytes]


class Spool:
    """An upload's bytes so far, in an unnamed temporary file, hashed as they arrive."""

    def __init__(self, directory: Optional[str]):
        self.file = tempfile.TemporaryFile(dir=directory)
        self.hasher = hashlib.sha256()
        self.size = 0
        self.lock = threading.Lock()

    def write(self, piece: bytes) -> None:
        self.file.write(piece)
        self.hasher.update(piece)
        self.size += len(piece)

    def digest(self) -> str:
        self.file.flush()
        return "sha256:" + self.hasher.hexdigest()

    def close(self) -> None:
        self.file.close()


class Gateway:
    def __init__(self, upstream: str, spool_dir: Optional[str] = None):
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self.spool_dir = spool_dir
        self.public_url = ""  # set once the server knows its port
        self._spools: Dict[str, Spool] = {}
        self._lock = threading.Lock()
        self.bucket = BucketUploader()

    # --- forwarding ----------------------------------------------------------------------------

    def forward(self, method: str, target: str, headers, body: bytes = b"") -> Reply:
        connection = (http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection)(
            self._netloc, timeout=300)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            if body or method in ("POST", "PUT", "PATCH"):
                sent["Content-Length"] = str(len(body))
            connection.request(method, target, body=body or None, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            reply_headers = [(k, self._rewrite(k, v)) for k, v in response.getheaders()
                             if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")]
            if method != "HEAD" or response.getheader("Content-Length") is None:
                reply_headers.append(("Content-Length", str(len(payload))))
            else:
                reply_headers.append(("Content-Length", response.getheader("Content-Length")))
            return response.status, reply_headers, payload
        finally:
            connection.close()

    def _rewrite(self, name: str, value: str) -> str:
        """Keep clients talking to the gateway: a Location into the registry API (an absolute URL
        under the upstream's public URL, whatever host that is) becomes ours. Redirects elsewhere
        (presigned S3 URLs) pass unchanged."""
        if name.lower() != "location":
            return value
        parts = urlsplit(value)
        if parts.scheme and parts.path.startswith("/v2/"):
            return self.public_url + value[len(f"{parts.scheme}://{parts.netloc}"):]
        return value

    def _call_api(self, method: str, path: str, document: dict, auth: dict = None):
        status, _, body = self.forward(method, path, {**(auth or {}), "Content-Type": spec.JSON},
                                       json.dumps(document).encode())
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body[:200]

    # --- uploads -------------------------------------------------------------------------------

    def spool_for(self, upload_id: str, create: bool) -> Optional[Spool]:
        with self._lock:
            spool = self._spools.get(upload_id)
            if spool is None and create:
                spool = self._spools[upload_id] = Spool(self.spool_dir)
            return spool

    def drop_spool(self, upload_id: str) -> None:
        with self._lock:
            spool = self._spools.pop(upload_id, None)
        if spool:
            spool.close()

    def finish(self, name: str, upload_id: str, query: str, headers, spool: Spool) -> Reply:
        """Verify the spooled bytes, send them to the bucket, complete the upload upstream."""
        digest = parse_qs(query).get("digest", [""])[0]
        actual = spool.digest()
        upload_path = f"/v2/{name}/blobs/uploads/{upload_id}"
        if digest != actual:
            self.forward("DELETE", upload_path, _auth_only(headers))
            return refusal(errors.DIGEST_INVALID, {"expected": digest, "actual": actual})
        auth = _auth_only(headers)
        call_api = lambda method, path, document: self._call_api(method, path, document, auth)  # noqa: E731
        try:
            self.bucket.upload(call_api, name, upload_id, digest, spool.file.fileno(), 0, spool.size)
        except TransferFailed as failure:
            return refusal(errors.FRONT_DOOR_FAILED, {"reason": str(failure)})
        complete_headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-range")}
        return self.forward("PUT", f"{upload_path}?{query}", complete_headers)


def refusal(error: ErrorCode, detail=None) -> Reply:
    body = error_body(error, detail).encode()
    return error.status, [("Content-Type", spec.JSON), ("Content-Length", str(len(body))),
                          (spec.API_VERSION_HEADER, spec.API_VERSION), (spec.SIGNATURES_HEADER, "1")], body


def _auth_only(headers) -> dict:
    value = headers.get("Authorization")
    return {"Authorization": value} if value else {}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gateway: Gateway

    def log_message(self, format, *args):  # noqa: A002
        LOG.debug(format, *args)

    def _serve(self):
        path, _, query = self.path.partition("?")
        upload = UPLOAD_PATH.match(path)
        uploads = UPLOADS_PATH.match(path)
        if upload and self.command == "PATCH":
            reply = self._patch(upload["name"], upload["upload_id"])
        # A body-less PUT with nothing spooled completes a session whose bytes went to the
        # bucket some other way (`dockless push`): it is forwarded as it is.
        elif upload and self.command == "PUT" and (self._has_body() or self.gateway.spool_for(
                upload["upload_id"], False)):
            reply = self._put(upload["name"], upload["upload_id"], query)
        elif upload and self.command == "GET" and self.gateway.spool_for(upload["upload_id"], False):
            reply = self._status(upload["name"], upload["upload_id"])
        elif uploads and self.command == "POST" and "digest" in parse_qs(query) and self._has_body():
            reply = self._monolithic(uploads["name"], query)
        else:
            body = b"".join(iter_body(self.rfile, self.headers))
            if upload and self.command == "DELETE":
                self.gateway.drop_spool(upload["upload_id"])
            reply = self.gateway.forward(self.command, self.path, self.headers, body)
        send(self, *reply)

    def _has_body(self) -> bool:
        return int(self.headers.get("Content-Length") or 0) > 0 or "chunked" in self.headers.get(
            "Transfer-Encoding", "").lower()

    def _upload_state(self, name: str, upload_id: str, spool: Spool) -> List[Tuple[str, str]]:
        """Location, Range and Docker-Upload-UUID of a session whose bytes the gateway holds."""
        return [("Location", f"{self.gateway.public_url}/v2/{name}/blobs/uploads/{upload_id}"),
                ("Range", f"0-{max(spool.size - 1, 0)}"), (spec.UPLOAD_UUID_HEADER, upload_id)]

    def _accepted(self, status: int, name: str, upload_id: str, spool: Spool) -> Reply:
        headers = self._upload_state(name, upload_id, spool)
        return status, headers + [(spec.API_VERSION_HEADER, spec.API_VERSION), ("Content-Length", "0")], b""

    def _spool_body(self, spool: Spool) -> None:
        for piece in iter_body(self.rfile, self.headers):
            spool.write(piece)

    def _patch(self, name: str, upload_id: str) -> Reply:
        spool = self.gateway.spool_for(upload_id, True)
        with spool.lock:
            start = _range_start(self.headers.get("Content-Range"))
            if start is not None and start != spool.size:
                b"".join(iter_body(self.rfile, self.headers))
                status, headers, body = refusal(errors.RANGE_INVALID,
                                                f"chunk starts at {start}, the upload has {spool.size} bytes")
                return status, headers + self._upload_state(name, upload_id, spool), body
            self._spool_body(spool)
            return self._accepted(202, name, upload_id, spool)

    def _status(self, name: str, upload_id: str) -> Reply:
        return self._accepted(204, name, upload_id, self.gateway.spool_for(upload_id, False))

    def _put(self, name: str, upload_id: str, query: str) -> Reply:
        spool = self.gateway.spool_for(upload_id, True)
        try:
            with spool.lock:
                self._spool_body(spool)
                return self.gateway.finish(name, upload_id, query, self.headers, spool)
        finally:
            self.gateway.drop_spool(upload_id)

    def _monolithic(self, name: str, query: str) -> Reply:
        """POST ?digest= with the blob: open a session upstream, then finish it as a PUT would."""
        spool = Spool(self.gateway.spool_dir)
        try:
            self._spool_body(spool)
            params = {k: v[0] for k, v in parse_qs(query).items() if k != "digest"}
            target = f"/v2/{name}/blobs/uploads/" + (f"?{urlencode(params)}" if params else "")
            status, headers, body = self.gateway.forward("POST", target, self.headers)
            upload_id = dict((k.lower(), v) for k, v in headers).get(spec.UPLOAD_UUID_HEADER.lower())
            if status != 202 or not upload_id:
                return status, headers, body
            return self.gateway.finish(name, upload_id, query, self.headers, spool)
        finally:
            spool.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def _range_start(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    match = re.fullmatch(r"(?:bytes[ =])?(\d+)-\d+(?:/.*)?", value.strip())
    return int(match.group(1)) if match else None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(gateway: Gateway, host: str, port: int, public_url: Optional[str] = None):
    server = _Server((host, port), type("GatewayHandler", (_Handler,), {"gateway": gateway}))
    gateway.public_url = (public_url or f"http://localhost:{server.server_address[1]}").rstrip("/")
    return server
