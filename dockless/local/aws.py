"""The local stack's AWS: a moto server (real S3, DynamoDB and Secrets Manager wire protocol, in
memory) behind two doors, so the local stack is as closed as a deployment.

* The internal door listens on 127.0.0.1 only and is never handed out. Every request must be
  signed (SigV4, header or query) with this run's secret key, which only the local stack's own
  clients hold (generated per run, kept in the process environment, never written): what IAM
  does for a deployment's DynamoDB and bucket.
* The public S3 door listens where clients can reach it (the stack's --host) and is what presigned
  URLs name. It accepts only requests presigned with that key, before they expire, and refuses
  the rest with S3's 403 AccessDenied: the bytes of a layer are readable only through a URL the
  registry signed after deciding the request. DynamoDB and Secrets Manager are not reachable
  through it, whatever --host is.

Both doors check `x-amz-checksum-sha256` on the bytes of every PUT, as S3 does, so a presigned
upload of other bytes than the ones signed for is refused (400 BadDigest) before moto stores it,
and a completed upload's URL cannot rewrite the blob.
"""
import base64
import calendar
import contextlib
import hashlib
import hmac
import logging
import tempfile
import threading
import time
from typing import Dict, Optional, Tuple
from urllib.parse import parse_qsl, quote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOG = logging.getLogger("dockless.local.aws")
ACCESS_KEY_ID = "dockless-local"
# A request's X-Amz-Date may differ from the door's clock by this much (S3 allows 15 minutes).
CLOCK_SKEW_SECONDS = 15 * 60
# Request bodies are kept in memory up to this size while checked, on disk beyond it.
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _headers_of(environ) -> Dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _auth_fields(value: str) -> Dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` as a dict."""
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256"):].split(","):
        name, _, field = part.strip().partition("=")
        fields[name] = field
    return fields


class Signatures:
    """Checks SigV4 signatures with the one key this run's clients sign with."""

    def __init__(self, secret_key: str, clock=time.time):
        self._credentials = Credentials(ACCESS_KEY_ID, secret_key)
        self._clock = clock

    def _scope(self, credential: str) -> Tuple[str, str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise Refused(403, "AuthorizationQueryParametersError", "malformed credential scope")
        if not hmac.compare_digest(parts[0], ACCESS_KEY_ID):
            raise Refused(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        return parts[1], parts[2], parts[3]

    def _check_time(self, stamp: str, expires: Optional[int] = None) -> None:
        try:
            signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise Refused(403, "AccessDenied", "X-Amz-Date is not a SigV4 timestamp") from None
        now = self._clock()
        if expires is not None:
            if not signed_at - CLOCK_SKEW_SECONDS <= now <= signed_at + expires:
                raise Refused(403, "AccessDenied", "Request has expired")
        elif abs(now - signed_at) > CLOCK_SKEW_SECONDS:
            raise Refused(403, "RequestTimeTooSkewed", "The difference between the request time and the "
                                                       "current time is too large.")

    def _compare(self, auth, request: AWSRequest, signature: str) -> None:
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):
            raise Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                        "the signature you provided.")

    def presigned(self, method: str, host: str, path: str, query: str, headers: Dict[str, str]) -> str:
        """Check a presigned (query-string) request; the service it was signed for."""
        params = parse_qsl(query, keep_blank_values=True)
        fields = dict(params)
        if fields.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "X-Amz-Signature" not in fields:
            raise Refused(403, "AccessDenied", "only requests presigned by the registry are accepted here")
        _, region, service = self._scope(fields.get("X-Amz-Credential", ""))
        try:
            expires = int(fields.get("X-Amz-Expires", ""))
        except ValueError:
            raise Refused(403, "AuthorizationQueryParametersError", "X-Amz-Expires is not a number") from None
        self._check_time(fields.get("X-Amz-Date", ""), expires)
        unsigned = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params
                            if k != "X-Amz-Signature")
        signed_names = fields.get("X-Amz-SignedHeaders", "host").split(";")
        request = AWSRequest(method=method, url=f"http://{host}{path}?{unsigned}",
                             headers={name: headers.get(name, "") for name in signed_names})
        request.context["timestamp"] = fields["X-Amz-Date"]
        self._compare(S3SigV4QueryAuth(self._credentials, service, region), request, fields["X-Amz-Signature"])
        return service

    def header_signed(self, method: str, host: str, raw_target: str, headers: Dict[str, str], body) -> str:
        """Check a request signed in its Authorization header; the service it was signed for."""
        fields = _auth_fields(headers.get("authorization", ""))
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256") or "Signature" not in fields:
            raise Refused(403, "AccessDenied", "requests must be signed (SigV4)")
        _, region, service = self._scope(fields.get("Credential", ""))
        self._check_time(headers.get("x-amz-date", ""))
        signed_names = fields.get("SignedHeaders", "").split(";")
        request = AWSRequest(method=method, url=f"http://{host}{raw_target}", data=body,
                             headers={name: headers.get(name, "") for name in signed_names})
        request.context["timestamp"] = headers["x-amz-date"]
        auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(self._credentials, service, region)
        self._compare(auth, request, fields["Signature"])
        return service


class Door:
    """A WSGI application in front of moto's: refuses what this door does not let through, checks
    PUT bodies against their declared SHA-256, and hands the rest to moto."""

    # moto's DynamoDB is not safe to call from several threads at once (a transaction deep-copies
    # the tables it touches while other requests change them: "dictionary changed size during
    # iteration"), where DynamoDB itself is: its requests go through one at a time.
    _dynamodb_lock = threading.Lock()

    def __init__(self, app, signatures: Signatures, presigned_only: bool, faults=None):
        from moto.core.model_instances import reset_model_data

        self._app, self._signatures, self._presigned_only = app, signatures, presigned_only
        self._faults = faults  # local/faults.py: what AWS answers when busy, at given rates
        self._forget_models = reset_model_data

    def __call__(self, environ, start_response):
        try:
            service = self._admit(environ)
        except Refused as refused:
            LOG.info("refused %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), refused.message)
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{refused.code}</Code>'
                    f"<Message>{refused.message}</Message></Error>").encode()
            start_response(f"{refused.status} {'Forbidden' if refused.status == 403 else 'Bad Request'}",
                           [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        fault = self._fault(service, environ)
        if fault is not None:
            status, headers, body = fault
            start_response(f"{status} {'Service Unavailable' if status == 503 else 'Bad Request'}", headers)
            return [body]
        try:
            if service == "dynamodb":
                with self._dynamodb_lock, self._holding(environ) as conflict:
                    if conflict is not None:
                        status, headers, body = conflict
                        start_response(f"{status} Bad Request", headers)
                        return [body]
                    return list(self._app(environ, start_response))
            return self._app(environ, start_response)
        finally:
            # moto keeps every model object it ever made for a dashboard this stack does not serve:
            # each item of the copy of the tables a transaction takes, each object a bucket held.
            # Forgotten after each request, a long-running stack holds what its tables and bucket do.
            self._forget_models()

    def _fault(self, service: str, environ):
        if self._faults is None:
            return None
        body = environ["wsgi.input"]
        answer = self._faults.answer(service, environ.get("HTTP_X_AMZ_TARGET", ""), body.read())
        body.seek(0)
        return answer

    def _holding(self, environ):
        """The items a DynamoDB request holds while it is in progress (local/faults.py's contention)."""
        if self._faults is None:
            return contextlib.nullcontext()
        body = environ["wsgi.input"]
        request = body.read()
        body.seek(0)
        return self._faults.holding(environ.get("HTTP_X_AMZ_TARGET", ""), request)

    def _admit(self, environ) -> str:
        """The service a request is for, if this door lets it through (else Refused)."""
        method = environ["REQUEST_METHOD"]
        headers = _headers_of(environ)
        host = headers.get("host", "")
        raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        path, _, query = raw_target.partition("?")
        body, sha256 = self._spooled_body(environ)
        if "X-Amz-Signature=" in query:
            service = self._signatures.presigned(method, host, path, query, headers)
        elif self._presigned_only:
            raise Refused(403, "AccessDenied", "only requests presigned by the registry are accepted here")
        else:
            body.seek(0)
            service = self._signatures.header_signed(method, host, raw_target, headers, body.read())
        if self._presigned_only and service != "s3":
            raise Refused(403, "AccessDenied", "only S3 is reachable here")
        if method == "PUT" and "x-amz-checksum-sha256" in headers:
            self._check_checksum(sha256, headers["x-amz-checksum-sha256"])
        body.seek(0)
        environ["wsgi.input"] = body
        return service

    @staticmethod
    def _check_checksum(sha256, declared: str) -> None:
        """As S3 does: the bytes (hashed as they arrived) must hash to the x-amz-checksum-sha256
        the request carries."""
        if base64.b64encode(sha256.digest()).decode() != declared:
            raise Refused(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")

    @staticmethod
    def _spooled_body(environ) -> tuple:
        """The request body, read once into a file the door and moto can both read, and hashed
        as it arrives."""
        spooled, hasher = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES), hashlib.sha256()
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        source = environ["wsgi.input"]
        while remaining > 0:
            piece = source.read(min(remaining, 1 << 20))
            if not piece:
                break
            spooled.write(piece)
            hasher.update(piece)
            remaining -= len(piece)
        environ["CONTENT_LENGTH"] = str(spooled.tell())
        spooled.seek(0)
        return spooled, hasher


# moto keeps each S3 object's bytes in memory up to this size (its default: 5 MiB), the rest in a
# temporary file: a long-lived stack's memory would grow with every layer pushed. Larger objects
# go to disk, each holding a file descriptor while it exists.
OBJECT_BYTES_IN_MEMORY = 64 * 1024


def _keep_objects_on_disk() -> None:
    """Objects above OBJECT_BYTES_IN_MEMORY in temporary files, and as many open files as the
    system allows this process (one per such object)."""
    import os
    import resource
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(OBJECT_BYTES_IN_MEMORY))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass  # the system's own limit stands


class LocalAws:
    """moto behind the internal door (127.0.0.1) and the public S3 door (`host`)."""

    def __init__(self, host: str, secret_key: str, internal_port: int = 0, public_port: int = 0,
                 ssl_context=None, faults=None):
        self.host, self.secret_key, self._ssl_context, self.faults = host, secret_key, ssl_context, faults
        self._ports = (internal_port, public_port)
        self._servers = []

    def start(self) -> None:
        _keep_objects_on_disk()
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        moto = DomainDispatcherApplication(create_backend_app)
        signatures = Signatures(self.secret_key)
        for bind, port, presigned_only in (("127.0.0.1", self._ports[0], False), (self.host, self._ports[1], True)):
            door = Door(moto, signatures, presigned_only, faults=None if presigned_only else self.faults)
            server = make_server(bind, port, door, threaded=True,
                                 request_handler=MotoRequestHandler,
                                 ssl_context=self._ssl_context if presigned_only else None)
            server.block_on_close = False  # closing never waits for threads held by idle keep-alive clients
            threading.Thread(target=server.serve_forever, name="local-aws", daemon=True).start()
            self._servers.append(server)

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    def public_url(self, hostname: str) -> str:
        """The public door as clients name it (the registry's own host name)."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{hostname}:{self._servers[1].server_address[1]}"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

