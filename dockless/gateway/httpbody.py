"""The HTTP/1.1 plumbing the local front door and the gateway share: how a request's body is
framed, reading it piece by piece (docker and skopeo send layer PATCHes chunked), and writing a
whole response.

Framing follows RFC 9112 exactly and refuses the rest, since a proxy that reads a body
differently from the server behind it can be made to smuggle requests: `Transfer-Encoding` may
only be `chunked` and never comes with `Content-Length`; a length is decimal digits; a chunk size
is hex digits (no sign, no `0x`, no `_`), optionally followed by extensions, and every line ends
in CRLF.
"""
import re
from typing import Iterator, List, Optional, Tuple

PIECE_BYTES = 1024 * 1024
# The longest chunk-size line, trailer line or number of trailers read before the request is refused.
MAX_LINE_BYTES = 4096
MAX_TRAILERS = 32
CHUNKED = -1

_LENGTH = re.compile(rb"[0-9]{1,18}")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")


class MalformedBody(ValueError):
    """A body framed other than HTTP/1.1 allows: answered 400, and the connection closed."""


class ClientGone(Exception):
    """The client closed (or broke) the connection before its body ended: nobody to answer. Not an
    OSError, so that a proxy streaming the body on never mistakes it for its upstream failing."""


def framing(headers) -> int:
    """The body's length in bytes, or CHUNKED."""
    codings = [c.strip().lower() for value in headers.get_all("Transfer-Encoding") or () for c in value.split(",")]
    lengths = {v.strip() for value in headers.get_all("Content-Length") or () for v in value.split(",")}
    if codings:
        if lengths:
            raise MalformedBody("Transfer-Encoding and Content-Length together")
        if codings != ["chunked"]:
            raise MalformedBody(f"unsupported Transfer-Encoding {', '.join(codings)!r}")
        return CHUNKED
    if not lengths:
        return 0
    if len(lengths) != 1 or not _LENGTH.fullmatch(next(iter(lengths)).encode("latin-1", "replace")):
        raise MalformedBody(f"Content-Length {', '.join(sorted(lengths))!r} is not one decimal number")
    return int(next(iter(lengths)))


def has_body(headers) -> bool:
    return framing(headers) != 0


def iter_body(rfile, headers, piece_bytes: int = PIECE_BYTES, length: Optional[int] = None) -> Iterator[bytes]:
    """The body's bytes in pieces of at most `piece_bytes` (`length`: its framing, if known)."""
    length = framing(headers) if length is None else length
    if length == CHUNKED:
        yield from _iter_chunked(rfile, piece_bytes)
    else:
        yield from _read(rfile, length, piece_bytes, "the body")


def _read(rfile, count: int, piece_bytes: int, where: str) -> Iterator[bytes]:
    """Exactly `count` bytes, in pieces of at most `piece_bytes`."""
    while count > 0:
        try:
            piece = rfile.read(min(count, piece_bytes))
        except OSError as broken:
            raise ClientGone(f"the connection broke inside {where}: {broken}") from None
        if not piece:
            raise ClientGone(f"the client closed the connection inside {where}")
        count -= len(piece)
        yield piece


def _line(rfile, where: str) -> bytes:
    try:
        line = rfile.readline(MAX_LINE_BYTES + 1)
    except OSError as broken:
        raise ClientGone(f"the connection broke before {where}: {broken}") from None
    if not line:
        raise ClientGone(f"the client closed the connection before {where}")
    if len(line) > MAX_LINE_BYTES or not line.endswith(b"\r\n"):
        raise MalformedBody(f"{where} is not a line ending in CRLF")
    return line


def _iter_chunked(rfile, piece_bytes: int) -> Iterator[bytes]:
    while True:
        line = _line(rfile, "a chunk size")
        match = _CHUNK_LINE.fullmatch(line)
        if not match:
            raise MalformedBody(f"chunk size line {line[:40]!r} is not hex digits")
        size = int(match.group(1), 16)
        if size == 0:
            for _ in range(MAX_TRAILERS):
                if _line(rfile, "the trailers") == b"\r\n":
                    return
            raise MalformedBody(f"more than {MAX_TRAILERS} trailer lines")
        yield from _read(rfile, size, piece_bytes, "a chunk")
        if b"".join(_read(rfile, 2, 2, "a chunk's end")) != b"\r\n":
            raise MalformedBody("chunk data is not followed by CRLF")


def send(handler, status: int, headers: List[Tuple[str, str]], body: bytes, closing: bool = False) -> None:
    """Write a response through an http.server handler (no body for HEAD); `closing` ends the
    connection after it (the rest of what the client sent cannot be trusted to frame a request)."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    if closing:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
