"""`dockless gateway`: the registry API for docker, podman, skopeo, ctr and oras, with layer bytes
sent straight to the bucket.

Every request is forwarded to the upstream registry as it came (headers, auth challenges, status,
body, streamed both ways), except the bodies of upload sessions opened through this gateway.
Clients send a layer as one PATCH (docker, podman, skopeo) or one PUT (containerd) before they
name its digest, and none of them can target a presigned URL. So for a session it saw opened (the
upstream answered 202 to a POST it forwarded), the gateway spools the body to an unnamed temporary
file while hashing it; on the final `PUT …?digest=` it checks the digest, asks the upstream's
direct-upload extension for presigned URLs (one PUT, or multipart parts in parallel), sends the
file to S3 and completes the upload with a body-less PUT. Memory stays bounded by PIECE_BYTES per
transfer; the process never holds a layer, and credentials are never stored.

What keeps it from being a free disk for strangers (DESIGN.md §5):
* it spools only for a session opened through it, for the same repository and the same principal
  (the `sub` of the bearer token; the upstream checks the token itself on every call);
* a body it will not spool goes upstream as a stream, under the front door's size limit; when the
  upstream would refuse the caller anyway, the gateway asks it first (a body-less status request
  with the caller's credentials) and passes that answer on, challenge included;
* spools are deleted when the client disconnects, the session completes or is cancelled, or after
  SPOOL_IDLE_SECONDS without use, and their total is bounded (503 above it);
* whatever the upstream answers while the gateway handles an upload (401, 403, 404, 400, 413,
  416 …) reaches the client as the upstream wrote it; only an unreachable upstream or its 5xx is
  the gateway's own 502.
"""
import base64
import dataclasses
import hashlib
import http.client
import http.server
import json
import logging
import re
import socketserver
import ssl
import tempfile
import threading
import time
from typing import Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

from chalicelib.oci import errors, protocol, spec
from chalicelib.oci.errors import RegistryError, error_reply
from dockless.gateway import httpbody
from dockless.client.bucket import ApiAnswer, BucketUploader, RegistryRefused, TransferFailed
from dockless.gateway.httpbody import CHUNKED, ClientGone, MalformedBody, send

LOG = logging.getLogger("dockless.gateway.server")

# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, never forwarded; nor are the framing
# headers, which the gateway writes itself, or Expect, which it has already answered.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect"}
UPLOAD_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$")
UPLOADS_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")
# Bytes spooled at once across all sessions, unless --spool-limit says otherwise.
SPOOL_LIMIT_BYTES = 64 * spec.GiB
# A session's spool is deleted after this long without a request (clients PATCH and PUT at once).
SPOOL_IDLE_SECONDS = 600
# How much of a body the gateway reads and drops to answer a refusal cleanly; beyond it, it closes.
DRAIN_LIMIT_BYTES = spec.FRONT_DOOR_MAX_BODY_BYTES

Reply = Tuple[int, List[Tuple[str, str]], bytes]


def principal_of(headers) -> Optional[str]:
    """Who a bearer token says the caller is (its `sub`), read without verifying it: the gateway
    only keeps sessions apart; the upstream verifies the token on every call made with it."""
    value = headers.get("Authorization") or ""
    if value[:7].lower() != "bearer ":
        return None
    try:
        claims = value[7:].strip().split(".")[1]
        subject = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))).get("sub")
    except (IndexError, ValueError, AttributeError, RecursionError):
        return None
    return subject if isinstance(subject, str) and subject else None


class Spool:
    """An upload's bytes so far, in an unnamed temporary file, hashed as they arrive."""

    def __init__(self, directory: Optional[str]):
        self.file = tempfile.TemporaryFile(dir=directory)
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, piece: bytes) -> None:
        self.file.write(piece)
        self.hasher.update(piece)
        self.size += len(piece)

    def mark(self) -> tuple:
        return self.size, self.hasher.copy()

    def rewind(self, mark: tuple) -> None:
        """Forget what was written since `mark` (a chunk that turned out wrong)."""
        self.size, self.hasher = mark[0], mark[1]
        self.file.flush()
        self.file.truncate(self.size)
        self.file.seek(self.size)

    def digest(self) -> str:
        self.file.flush()
        return "sha256:" + self.hasher.hexdigest()

    def close(self) -> None:
        self.file.close()


@dataclasses.dataclass
class Session:
    """An upload session opened through this gateway."""
    name: str
    upload_id: str
    principal: str
    spool: Optional[Spool] = None
    last_used: float = dataclasses.field(default_factory=time.monotonic)
    busy: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class SpoolFull(Exception):
    pass


class Gateway:
    def __init__(self, upstream: str, spool_dir: Optional[str] = None, spool_limit_bytes: int = SPOOL_LIMIT_BYTES,
                 idle_seconds: float = SPOOL_IDLE_SECONDS):
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self.spool_dir = spool_dir
        self.spool_limit_bytes, self.idle_seconds = spool_limit_bytes, idle_seconds
        self.public_url = ""  # set once the server knows its port
        self._sessions: Dict[str, Session] = {}
        self._spooled = 0
        self._lock = threading.Lock()
        self.bucket = BucketUploader()
        threading.Thread(target=self._reap_idle, name="spool-reaper", daemon=True).start()

    # --- sessions and their spools -------------------------------------------------------------

    def open_session(self, name: str, upload_id: str, headers) -> None:
        principal = principal_of(headers)
        if principal:
            with self._lock:
                self._sessions[upload_id] = Session(name, upload_id, principal)

    def claim(self, name: str, upload_id: str, headers) -> Optional[Session]:
        """The session, if it was opened through here for this repository by this principal."""
        with self._lock:
            session = self._sessions.get(upload_id)
            if session is None or session.name != name or session.principal != principal_of(headers):
                return None
            session.busy += 1
            return session

    def release(self, session: Session) -> None:
        with self._lock:
            session.busy -= 1
            session.last_used = time.monotonic()

    def end_session(self, upload_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(upload_id, None)
            if session and session.spool:
                self._spooled -= session.spool.size
        if session and session.spool:
            session.spool.close()

    def spool_write(self, session: Session, piece: bytes) -> None:
        with self._lock:
            if self._spooled + len(piece) > self.spool_limit_bytes:
                raise SpoolFull()
            self._spooled += len(piece)
        try:
            session.spool.write(piece)
        except OSError:  # the disk is full: as good as the limit
            raise SpoolFull() from None

    def spool_rewind(self, session: Session, mark: tuple) -> None:
        with self._lock:
            self._spooled -= session.spool.size - mark[0]
        session.spool.rewind(mark)

    @property
    def spooled_bytes(self) -> int:
        return self._spooled

    def _reap_idle(self) -> None:
        while True:
            time.sleep(min(60.0, self.idle_seconds / 2))
            self.reap_idle(time.monotonic())

    def reap_idle(self, now: float) -> int:
        with self._lock:
            idle = [s.upload_id for s in self._sessions.values()
                    if not s.busy and now - s.last_used > self.idle_seconds]
        for upload_id in idle:
            self.end_session(upload_id)
        return len(idle)

    # --- talking to the upstream ---------------------------------------------------------------

    def forward(self, method: str, target: str, headers, body: Iterable[bytes] = (), length: int = 0) -> Reply:
        """Send a request upstream (the body as a stream: `length` bytes, or CHUNKED) and read the
        whole answer (the API's answers are small: blob bytes never come from it)."""
        connection = (http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection)(
            self._netloc, timeout=300)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            if length == CHUNKED:
                sent["Transfer-Encoding"] = "chunked"
                connection.request(method, target, body=iter(body), headers=sent, encode_chunked=True)
            else:
                if length or method in ("POST", "PUT", "PATCH"):
                    sent["Content-Length"] = str(length)
                connection.request(method, target, body=iter(body) if length else None, headers=sent)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as failure:
            LOG.warning("upstream %s unreachable: %s", self.upstream, failure)
            return error_reply(errors.FRONT_DOOR_FAILED, {"reason": f"the registry API cannot be reached: {failure}"})
        finally:
            connection.close()
        reply_headers = [(k, self._rewrite(k, v)) for k, v in response.getheaders()
                         if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")]
        declared = response.getheader("Content-Length")
        reply_headers.append(("Content-Length", declared if method == "HEAD" and declared else str(len(payload))))
        return response.status, reply_headers, payload

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

    def _call_api(self, auth: dict):
        def call(method: str, path: str, document: dict) -> ApiAnswer:
            reply = self.forward(method, path, {**auth, "Content-Type": spec.JSON}, [json.dumps(document).encode()],
                                 len(json.dumps(document).encode()))
            try:
                return ApiAnswer(reply[0], json.loads(reply[2]), reply)
            except ValueError:
                return ApiAnswer(reply[0], reply[2][:200], reply)
        return call

    def finish(self, session: Session, query: str, headers) -> Reply:
        """Verify the spooled bytes, send them to the bucket, complete the upload upstream."""
        digest = parse_qs(query).get("digest", [""])[0]
        spool = session.spool
        actual = spool.digest()
        upload_path = f"/v2/{session.name}/blobs/uploads/{session.upload_id}"
        auth = _auth_only(headers)
        if digest != actual:
            self.forward("DELETE", upload_path, auth)
            return error_reply(errors.DIGEST_INVALID, {"expected": digest, "actual": actual})
        try:
            self.bucket.upload(self._call_api(auth), session.name, session.upload_id, digest, spool.file.fileno(), 0,
                               spool.size)
        except RegistryRefused as refused:
            if refused.answer.status < 500:
                return refused.answer.whole  # the API's own answer: 401 and its challenge, 404, 413 …
            return error_reply(errors.FRONT_DOOR_FAILED, {"reason": str(refused)})
        except TransferFailed as failure:
            return error_reply(errors.FRONT_DOOR_FAILED, {"reason": str(failure)})
        complete_headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-range")}
        return self.forward("PUT", f"{upload_path}?{query}", complete_headers)


def _auth_only(headers) -> dict:
    value = headers.get("Authorization")
    return {"Authorization": value} if value else {}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gateway: Gateway

    def log_message(self, format, *args):  # noqa: A002
        LOG.debug(format, *args)

    def _serve(self):
        try:
            length = httpbody.framing(self.headers)
        except MalformedBody as error:
            send(self, *error_reply(errors.MALFORMED_REQUEST, str(error)), closing=True)
            return
        path, _, query = self.path.partition("?")
        upload, uploads = UPLOAD_PATH.match(path), UPLOADS_PATH.match(path)
        closing = False
        try:
            if uploads and self.command == "POST":
                reply = self._start(uploads["name"], query, length)
            elif upload and self.command in ("PATCH", "PUT"):
                reply = self._upload(upload["name"], upload["upload_id"], query, length)
            elif upload and self.command == "GET":
                reply = self._status(upload["name"], upload["upload_id"], length)
            else:
                reply = self._forward(length)
                if upload and self.command == "DELETE" and reply[0] < 300:
                    self.gateway.end_session(upload["upload_id"])
        except _Refused as refused:
            reply, closing = refused.reply, refused.closing
        except (ClientGone, MalformedBody) as failure:
            LOG.info("%s %s: %s", self.command, path, failure)
            self.close_connection = True
            if isinstance(failure, MalformedBody):
                send(self, *error_reply(errors.MALFORMED_REQUEST, str(failure)), closing=True)
            return
        send(self, *reply, closing=closing)

    # --- bodies --------------------------------------------------------------------------------

    def _body(self, length: int) -> Iterable[bytes]:
        return httpbody.iter_body(self.rfile, self.headers, length=length)

    def _bounded(self, length: int) -> Iterable[bytes]:
        """The body as a stream; a chunked one is cut off past the front door's limit."""
        seen = 0
        for piece in self._body(length):
            seen += len(piece)
            if seen > spec.FRONT_DOOR_MAX_BODY_BYTES:
                raise _Refused(_too_large(), closing=True)
            yield piece

    def _answer_unread(self, reply: Reply, length: int) -> Reply:
        """Answer without taking the body: read and drop it if small (so the client, still
        sending, sees the answer), else answer and close the connection."""
        if length != CHUNKED and length > DRAIN_LIMIT_BYTES:
            raise _Refused(reply, closing=True)
        dropped = 0
        for piece in self._body(length):
            dropped += len(piece)
            if dropped > DRAIN_LIMIT_BYTES:
                raise _Refused(reply, closing=True)
        return reply

    def _forward(self, length: int) -> Reply:
        """The request upstream as it came, under the front door's size limit."""
        if length != CHUNKED and length > spec.FRONT_DOOR_MAX_BODY_BYTES:
            return self._answer_unread(_too_large(), length)
        return self.gateway.forward(self.command, self.path, self.headers, self._bounded(length), length)

    # --- the upload protocol -------------------------------------------------------------------

    def _start(self, name: str, query: str, length: int) -> Reply:
        params = parse_qs(query)
        if "digest" in params and length:
            return self._monolithic(name, params, length)
        reply = self._forward(length)
        if reply[0] == 202:
            self._opened(name, reply)
        return reply

    def _opened(self, name: str, reply: Reply) -> Optional[str]:
        upload_id = dict((k.lower(), v) for k, v in reply[1]).get(spec.UPLOAD_UUID_HEADER.lower())
        if upload_id:
            self.gateway.open_session(name, upload_id, self.headers)
        return upload_id

    def _monolithic(self, name: str, params: dict, length: int) -> Reply:
        """POST ?digest= with the blob: open a session upstream (the caller's credentials decide
        whether it may), then finish it as a PUT would."""
        opening = {k: v[0] for k, v in params.items() if k != "digest"}
        target = f"/v2/{name}/blobs/uploads/" + (f"?{urlencode(opening)}" if opening else "")
        reply = self.gateway.forward("POST", target, self.headers)
        upload_id = self._opened(name, reply) if reply[0] == 202 else None
        if upload_id is None:
            return self._answer_unread(reply, length)  # a challenge, a refusal, or a mount that worked
        return self._upload(name, upload_id, urlencode({"digest": params["digest"][0]}), length, put=True)

    def _upload(self, name: str, upload_id: str, query: str, length: int, put: bool = False) -> Reply:
        put = put or self.command == "PUT"
        session = self.gateway.claim(name, upload_id, self.headers)
        if session is None:
            return self._not_ours(name, upload_id, length)
        ended = put  # a PUT ends the session, whatever its outcome
        try:
            with session.lock:
                if length:
                    self._spool(session, length)
                if not put:
                    return self._state(session, 202)
                if session.spool is None:
                    # Bytes that went to the bucket some other way (`dockless push`): complete as it is.
                    return self._forward(length)
                return self.gateway.finish(session, query, self.headers)
        except (ClientGone, MalformedBody):
            ended = True  # the client went away mid-body: nothing to resume
            raise
        finally:
            self.gateway.release(session)
            if ended:
                self.gateway.end_session(upload_id)

    def _spool(self, session: Session, length: int) -> None:
        received = session.spool.size if session.spool else 0
        try:
            chunk_range = protocol.content_range(self.headers.get("Content-Range"))
            if chunk_range is not None and length != CHUNKED:
                protocol.check_chunk(chunk_range, received, length)
        except RegistryError as refused:
            raise _Refused(self._answer_unread(self._with_state(error_reply(
                refused.error, refused.detail), session), length)) from None
        if session.spool is None:
            session.spool = Spool(self.gateway.spool_dir)
        mark = session.spool.mark()
        try:
            for piece in self._body(length):
                self.gateway.spool_write(session, piece)
        except SpoolFull:
            self.gateway.spool_rewind(session, mark)
            raise _Refused(error_reply(errors.GATEWAY_SPOOL_FULL, {
                "spooled_bytes": self.gateway.spooled_bytes, "limit_bytes": self.gateway.spool_limit_bytes},
                headers=[("Retry-After", "60")]), closing=True) from None
        if chunk_range is not None and length == CHUNKED:
            try:
                protocol.check_chunk(chunk_range, received, session.spool.size - received)
            except RegistryError as refused:
                self.gateway.spool_rewind(session, mark)
                raise _Refused(self._with_state(error_reply(refused.error, refused.detail), session)) from None

    def _not_ours(self, name: str, upload_id: str, length: int) -> Reply:
        """An upload request for a session this gateway may not spool for: if the upstream refuses
        this caller there, its answer (a challenge, 404 …) goes back at once; otherwise the request
        goes upstream as it is, under the front door's limits."""
        if not length:
            return self._forward(length)
        probe = self.gateway.forward("GET", f"/v2/{name}/blobs/uploads/{upload_id}", _auth_only(self.headers))
        if probe[0] != 204:
            return self._answer_unread(probe, length)
        return self._forward(length)

    def _status(self, name: str, upload_id: str, length: int) -> Reply:
        session = self.gateway.claim(name, upload_id, self.headers)
        if session is None:
            return self._forward(length)
        try:
            if session.spool is None:
                return self._forward(length)
            return self._state(session, 204)
        finally:
            self.gateway.release(session)

    def _state_headers(self, session: Session) -> List[Tuple[str, str]]:
        location = f"{self.gateway.public_url}/v2/{session.name}/blobs/uploads/{session.upload_id}"
        received = session.spool.size if session.spool else 0
        return list(protocol.upload_state_headers(location, session.upload_id, received).items())

    def _state(self, session: Session, status: int) -> Reply:
        return status, self._state_headers(session) + [(spec.API_VERSION_HEADER, spec.API_VERSION),
                                                       ("Content-Length", "0")], b""

    def _with_state(self, reply: Reply, session: Session) -> Reply:
        return reply[0], reply[1] + self._state_headers(session), reply[2]

    def __getattr__(self, name: str):
        """Every method is served (http.server would answer one it has no do_<METHOD> for with 501)."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


class _Refused(Exception):
    """An answer decided while reading a request; `closing` when the rest of its body is unread."""

    def __init__(self, reply: Reply, closing: bool = False):
        super().__init__(reply[0])
        self.reply, self.closing = reply, closing


def _too_large() -> Reply:
    return error_reply(errors.FRONT_DOOR_TOO_LARGE, {"limit_bytes": spec.FRONT_DOOR_MAX_BODY_BYTES,
                                                     "advice": spec.BIG_BLOB_ADVICE})


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    # Closing never waits for request threads: one held by an idle keep-alive client would block it.
    block_on_close = False
    allow_reuse_address = True
    # A burst of clients (fifty pushes at once) is queued, not dropped at connect (the default is 5).
    request_queue_size = 128


def make_server(gateway: Gateway, host: str, port: int, public_url: Optional[str] = None,
                ssl_context: Optional[ssl.SSLContext] = None):
    """The gateway's HTTP server (HTTPS with `ssl_context`); clients reach it at `public_url`."""
    server = _Server((host, port), type("GatewayHandler", (_Handler,), {"gateway": gateway}))
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if ssl_context is not None else "http"
    gateway.public_url = (public_url or f"{scheme}://localhost:{server.server_address[1]}").rstrip("/")
    return server
