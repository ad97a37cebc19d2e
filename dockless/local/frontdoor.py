"""The local front door: an HTTP server that treats the Chalice app as the deployed front door
does (CloudFront -> API Gateway REST, Lambda proxy integration -> Lambda, with the Lambda@Edge
origin-response function of DESIGN.md §1a), so a test fails here wherever production would break.

What it reproduces, each from the decision in DESIGN.md §1a:
* threaded, with the app's per-thread request (chalicelib.runtime.application), and bodies sent with
  `Transfer-Encoding: chunked` de-chunked, as API Gateway hands Lambda a whole body (WHOLE). AWS
  does not document what API Gateway does with a chunked request body; `dockless check` proves it
  on an account (its chunked PATCH), and a front door started with `chunked_bodies=REFUSED`
  (`dockless serve --chunked-bodies refused`) answers 411 instead, as an account that refuses them
  would: pushes then need the gateway, as big layers do;
* request bodies above 10 MiB refused before the function runs (REQUEST_TOO_LARGE), and events
  above Lambda's 6 MiB payload refused (the function never runs);
* every request body base64-encoded, as API Gateway does with binary media types `*/*`
  (spec.GATEWAY_BINARY_MEDIA_TYPES; docker sends layer chunks with no Content-Type at all);
* an unknown path or method answered by the gateway (MISSING_AUTHENTICATION_TOKEN), not the app;
* 29 s integration timeout (INTEGRATION_TIMEOUT);
* response headers as API Gateway and then the origin-response function deliver them: the headers
  API Gateway remaps go to x-amzn-Remapped-<name>, except WWW-Authenticate and Content-Length,
  which the edge function puts back (a HEAD's length is the function's, not the empty body's);
* the viewer's Host replaced by the origin's, passed on as X-Forwarded-Host;
* the path percent-decoded before routing, so `%2F` separates segments as `/` does;
* the edge's blob gate (infra/edge/blob_gate.js, chalicelib/access/edge.py): a blob GET whose
  token's edge claim admits it never reaches the function; CloudFront would answer it from the
  bucket, this door answers 307 to the presigned URL of the key the claim names (no bytes pass
  here) and logs its request record with `served_by: "edge"` and no invocation.
Each refusal is the OCI error JSON that infra/ configures as the gateway response.
"""
import base64
import concurrent.futures
import http.server
import logging
import socketserver
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote

from chalice.config import Config
from chalice.local import LambdaEventConverter, LocalGateway, RouteMatcher

from chalicelib.access import edge
from chalicelib.oci import errors, spec
from chalicelib.oci.errors import ErrorCode, error_reply
from chalicelib.runtime.function_url import API_GATEWAY_DOOR, DOORS, FUNCTION_URL_DOOR
from chalicelib.runtime.observe import RequestRecord
from dockless.gateway.httpbody import ClientGone, MalformedBody, iter_body, send

LOG = logging.getLogger("dockless.local.frontdoor")

# Response headers API Gateway renames to x-amzn-Remapped-<name> (AWS "API Gateway known issues").
REMAPPED_BY_API_GATEWAY = ("authorization", "connection", "content-length", "date", "server",
                           "www-authenticate")
# What the Lambda@Edge origin-response function puts back (infra/edge), over API Gateway's own.
RESTORED_AT_THE_EDGE = ("www-authenticate", "content-length")
ORIGIN_HOST = "origin.execute-api.local"
# What the Via of an answer of the local blob gate says (deployed, the bucket's own answer passes).
LOCAL_GATE = "blob gate"
FUNCTION_URL_HOST = "origin.lambda-url.local"
# What the front door does with a chunked request body.
WHOLE, REFUSED = "whole", "refused"
CHUNKED_BODIES = (WHOLE, REFUSED)

Response = Tuple[int, List[Tuple[str, str]], bytes]


class FrontDoor:
    def __init__(self, app, timeout_seconds: float = spec.FRONT_DOOR_TIMEOUT_SECONDS,
                 max_body_bytes: int = spec.FRONT_DOOR_MAX_BODY_BYTES,
                 max_event_bytes: int = spec.LAMBDA_MAX_EVENT_BYTES, chunked_bodies: str = WHOLE,
                 door: str = API_GATEWAY_DOOR):
        if chunked_bodies not in CHUNKED_BODIES:
            raise ValueError(f"chunked bodies are {' or '.join(CHUNKED_BODIES)}, not {chunked_bodies!r}")
        if door not in DOORS:
            raise ValueError(f"the door is {' or '.join(DOORS)}, not {door!r}")
        self.app, self.door = app, door
        self.chunked_bodies = chunked_bodies
        self.timeout_seconds = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.max_event_bytes = max_event_bytes
        self._gateway = LocalGateway(app, Config(chalice_stage="local", config_from_disk={}))
        self._routes = RouteMatcher(list(app.routes))
        self._gateway.event_converter = _EveryBodyBinary(self._routes)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="lambda")
        # The blob gate (set by the local stack once its storage is up): the edge secret, and how
        # the bucket's URL for a key is made.
        self.edge_secret: Optional[bytes] = None
        self.presign_get: Optional[Callable[[str], str]] = None

    def refuse(self, error: ErrorCode, detail=None) -> Response:
        """As a deployment's gateway responses answer (infra/stack.py), headers included."""
        return error_reply(error, detail)

    def too_large(self) -> Response:
        return self.refuse(errors.FRONT_DOOR_TOO_LARGE,
                           {"limit_bytes": self.max_body_bytes, "advice": spec.BIG_BLOB_ADVICE})

    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Response:
        headers = {key.lower(): value for key, value in headers.items()}
        key = None if self.presign_get is None else edge.admits(
            self.edge_secret, headers.get("authorization", ""), method, path.partition("?")[0], time.time())
        if key is not None:
            return self._from_the_bucket(method, path.partition("?")[0], headers, key)
        if self.door == FUNCTION_URL_DOOR:  # its events of payload format 2.0 (chalicelib/runtime/function_url.py)
            return self._through_function_url(method, path, headers, body)
        path = _as_api_gateway_routes(path)
        if len(body) > self.max_body_bytes:
            return self.too_large()
        if not self._known_route(method, path):
            return self.refuse(errors.ROUTE_UNKNOWN, {"method": method, "path": path.split("?")[0]})
        if "host" in headers:
            headers["x-forwarded-host"] = headers["host"]
        headers["host"] = ORIGIN_HOST
        if self._event_bytes(path, headers, body) > self.max_event_bytes:
            return self.refuse(errors.FRONT_DOOR_FAILED,
                               {"reason": "request larger than the function's 6 MB payload",
                                "advice": spec.BIG_BLOB_ADVICE})
        try:
            result = self._invoke(self._gateway.handle_request, method, path, headers, body or None)
        except concurrent.futures.TimeoutError:
            return self.refuse(errors.FRONT_DOOR_TIMEOUT, {"timeout_seconds": self.timeout_seconds})
        except Exception:  # noqa: BLE001 - an uncaught error in the function is a 502 at the gateway
            LOG.exception("function failed: %s %s", method, path)
            return self.refuse(errors.FRONT_DOOR_FAILED)
        return self._deliver(method, result)

    def _from_the_bucket(self, method: str, path: str, headers: Dict[str, str], key: str) -> Response:
        """A blob GET the edge admitted: the bucket's answer for `key`, through a redirect here."""
        digest = "sha256:" + edge.BLOB_PATH_RE.fullmatch(path).group("hex")
        record = RequestRecord(str(uuid.uuid4()), method, path, "/v2/{name}/blobs/{digest}", {}, 0)
        url = self.presign_get(key)
        claims = edge.bearer_claims(headers.get("authorization", "")) or {}
        record.finish(307, invocations=0, served_by="edge", principal=claims.get("sub") or None)
        return 307, [("Location", url), ("Content-Length", "0"), (spec.CONTENT_DIGEST_HEADER, digest),
                     ("Via", f"1.1 dockless-local.cloudfront.net (CloudFront {LOCAL_GATE})")], b""

    def _through_function_url(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> Response:
        """As CloudFront and the function's URL deliver a request (and the edge function the URL's
        own refusals: infra/edge/restore_headers.py): an event of payload format 2.0, the raw path
        and query, the cookies apart, the body base64; the answer's headers as the function gave them."""
        if self._event_bytes(target, headers, body) > self.max_event_bytes:  # no 10 MB gateway: Lambda's 6 MB
            return self.refuse(errors.FRONT_DOOR_TOO_LARGE,
                               {"limit_bytes": self.max_event_bytes, "advice": spec.BIG_BLOB_ADVICE})
        path, _, query = target.partition("?")
        if "host" in headers:
            headers["x-forwarded-host"] = headers["host"]
        headers["host"] = FUNCTION_URL_HOST
        cookies = [piece.strip() for piece in headers.pop("cookie", "").split(";") if piece.strip()]
        request_id = str(uuid.uuid4())
        event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
                 "headers": headers, "requestContext": {
                     "requestId": request_id, "routeKey": "$default", "stage": "$default", "domainName": FUNCTION_URL_HOST,
                     "http": {"method": method, "path": unquote(path), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                              "userAgent": headers.get("user-agent", "")}},
                 "body": base64.b64encode(body).decode() if body else None, "isBase64Encoded": bool(body)}
        if cookies:
            event["cookies"] = cookies
        try:
            result = self._invoke(self.app, event, _LambdaContext(request_id))
        except concurrent.futures.TimeoutError:  # Lambda ends the function; the URL answers 502
            return self.refuse(errors.FRONT_DOOR_FAILED, {"reason": "the function timed out"})
        except Exception:  # noqa: BLE001 - an uncaught error in the function is the URL's 502
            LOG.exception("function failed: %s %s", method, path)
            return self.refuse(errors.FRONT_DOOR_FAILED)
        answer = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result.get("body", "").encode()
        delivered = [(name, value) for name, value in result["headers"].items() if name != "content-length"]
        delivered += [("Set-Cookie", cookie) for cookie in result.get("cookies", [])]
        length = result["headers"].get("content-length") if method == "HEAD" else str(len(answer))
        delivered += [("Content-Length", length or "0"), ("x-amzn-RequestId", request_id),
                      ("Via", "1.1 dockless-local.cloudfront.net (CloudFront)")]
        return result["statusCode"], delivered, b"" if method == "HEAD" else answer

    def _invoke(self, function, *args):
        """Run the function in a worker and wait for it for the door's timeout, counted from when it
        starts: Lambda runs each request at once (its concurrency is far above this pool's), so a
        wait for a free worker here is no time of the request's (it is no queue AWS has)."""
        started = threading.Event()

        def run():
            started.set()
            return function(*args)

        future = self._pool.submit(run)
        started.wait()
        return future.result(timeout=self.timeout_seconds)

    def _known_route(self, method: str, path: str) -> bool:
        try:
            match = self._routes.match_route(path)
        except ValueError:
            return False
        return method in self.app.routes[match.route]

    @staticmethod
    def _event_bytes(path: str, headers: Dict[str, str], body: bytes) -> int:
        """About what the Lambda event weighs: the base64 body, the path and the headers."""
        encoded = (len(body) + 2) // 3 * 4
        return encoded + len(path) + sum(len(k) + len(v) + 6 for k, v in headers.items()) + 1024

    @staticmethod
    def _deliver(method: str, result: dict) -> Response:
        body = result.get("body") or b""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        if method == "HEAD":
            body = b""
        delivered: List[Tuple[str, str]] = []
        merged = [(k, v) for k, v in (result.get("headers") or {}).items()]
        merged += [(k, v) for k, values in (result.get("multiValueHeaders") or {}).items() for v in values]
        restored = set()
        for name, value in merged:
            lowered = name.lower()
            if lowered in RESTORED_AT_THE_EDGE:
                restored.add(lowered)
                delivered.append((name, str(value)))
            elif lowered in REMAPPED_BY_API_GATEWAY:
                delivered.append((f"x-amzn-Remapped-{name}", str(value)))
            else:
                delivered.append((name, str(value)))
        if "content-length" not in restored:  # API Gateway's own, from the body (0 for HEAD)
            delivered.append(("Content-Length", str(len(body))))
        delivered.append(("x-amzn-RequestId", str(uuid.uuid4())))
        delivered.append(("Via", "1.1 dockless-local.cloudfront.net (CloudFront)"))
        return result["statusCode"], delivered, body


def _as_api_gateway_routes(target: str) -> str:
    """The request target as API Gateway routes it: the path percent-decoded before it is split
    into segments (an encoded slash separates segments like a plain one), and each path parameter
    handed to the function decoded. Chalice's matcher splits the raw path and keeps parameters
    as they are, so the decoded path goes to it, with the characters that would end or escape a
    path there ('%', '?', '#') written as literals the app's grammars then refuse."""
    path, mark, query = target.partition("?")
    decoded = unquote(path).replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return decoded + mark + query


class _LambdaContext:
    def __init__(self, request_id: str):
        self.aws_request_id = request_id
        self.function_name = "dockless-local"


class _EveryBodyBinary(LambdaEventConverter):
    def __init__(self, routes: RouteMatcher):
        super().__init__(routes, list(spec.GATEWAY_BINARY_MEDIA_TYPES))

    def _is_binary(self, headers) -> bool:
        return True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front_door: FrontDoor

    def log_message(self, format, *args):  # noqa: A002 - the request log is the app's, not this
        LOG.debug(format, *args)

    def _serve(self):
        try:
            body, refused = self._read_body()
        except MalformedBody as error:
            send(self, *self.front_door.refuse(errors.MALFORMED_REQUEST, str(error)), closing=True)
            return
        except ClientGone as gone:  # nobody left to answer
            LOG.info("%s %s: %s", self.command, self.path, gone)
            self.close_connection = True
            return
        if refused:
            status, headers, payload = self.front_door.too_large()
        elif self.front_door.chunked_bodies == REFUSED and "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            status, headers, payload = self.front_door.refuse(errors.FRONT_DOOR_LENGTH_REQUIRED,
                                                              {"advice": spec.BIG_BLOB_ADVICE})
        else:
            status, headers, payload = self.front_door.handle(
                self.command, self.path, dict(self.headers.items()), body)
        send(self, status, headers, payload)

    def _read_body(self) -> Tuple[bytes, bool]:
        """The whole body, or (b"", True) when it is above the limit: then the rest is read and
        dropped, without holding it, so the client sees the refusal rather than a broken pipe."""
        limit = self.front_door.max_body_bytes
        pieces, total = [], 0
        for piece in iter_body(self.rfile, self.headers):
            total += len(piece)
            if total > limit:
                pieces.clear()
            else:
                pieces.append(piece)
        return (b"", True) if total > limit else (b"".join(pieces), False)

    def __getattr__(self, name: str):
        """Every method reaches the routing (http.server would answer one it has no do_<METHOD> for
        with 501; API Gateway answers an unknown method as an unknown route)."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    # Closing never waits for request threads: one held by an idle keep-alive client would block it.
    block_on_close = False
    allow_reuse_address = True
    # A burst of clients (fifty pushes at once) is queued, not dropped at connect (the default is 5).
    request_queue_size = 128


def make_server(front_door: FrontDoor, host: str, port: int) -> http.server.HTTPServer:
    handler = type("FrontDoorHandler", (_Handler,), {"front_door": front_door})
    return _Server((host, port), handler)

