"""Reading what a request carries: query parameters, body, JSON body, Content-Range."""
import re
from typing import Optional, Tuple

from chalicelib import errors, jsondoc
from chalicelib.errors import ErrorCode, RegistryError

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


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
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.fullmatch(raw.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RegistryError(errors.RANGE_INVALID, f"Content-Range {raw!r} is not <start>-<end>")
    return int(match.group(1)), int(match.group(2))
