"""Reading what a request carries: query parameters, body, JSON body, Content-Range."""
from typing import Optional, Tuple

from chalicelib import jsondoc, protocol
from chalicelib.errors import ErrorCode


def query(request, name: str) -> Optional[str]:
    params = request.query_params or {}
    return params.get(name)


def body(request) -> bytes:
    return request.raw_body or b""


def json_object(request, error: ErrorCode, what: str = "the body") -> dict:
    """The body as one JSON object (an empty body is an empty object), or the route's error."""
    return jsondoc.parse_object(body(request) or b"{}", error, what)


def content_range(request) -> Optional[Tuple[int, int]]:
    """PATCH's Content-Range `<start>-<end>` (inclusive), or None for a streamed chunk."""
    return protocol.content_range(request.headers.get("content-range"))
