"""The HTTP/1.1 plumbing the local front door and the gateway share: reading a request body piece
by piece, whether it comes with a Content-Length or `Transfer-Encoding: chunked` (docker and
skopeo send layer PATCHes chunked), and writing a whole response."""
from typing import Iterator, List, Tuple

PIECE_BYTES = 1024 * 1024


def iter_body(rfile, headers, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        yield from _iter_chunked(rfile, piece_bytes)
        return
    yield from _read(rfile, int(headers.get("Content-Length") or 0), piece_bytes, "the body")


def _read(rfile, count: int, piece_bytes: int, where: str) -> Iterator[bytes]:
    """Exactly `count` bytes, in pieces of at most `piece_bytes`."""
    while count > 0:
        piece = rfile.read(min(count, piece_bytes))
        if not piece:
            raise ConnectionError(f"the client closed the connection inside {where}")
        count -= len(piece)
        yield piece


def _iter_chunked(rfile, piece_bytes: int) -> Iterator[bytes]:
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield from _read(rfile, size, piece_bytes, "a chunk")
        rfile.readline()


def send(handler, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
    """Write a response through an http.server handler (no body for HEAD)."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
