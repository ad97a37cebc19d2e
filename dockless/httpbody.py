"""Reading an HTTP/1.1 request body from a server socket, piece by piece, whether it comes with a
Content-Length or `Transfer-Encoding: chunked` (docker and skopeo send layer PATCHes chunked)."""
from typing import Iterator

PIECE_BYTES = 1024 * 1024


def iter_body(rfile, headers, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        yield from _iter_chunked(rfile, piece_bytes)
        return
    remaining = int(headers.get("Content-Length") or 0)
    while remaining > 0:
        piece = rfile.read(min(remaining, piece_bytes))
        if not piece:
            raise ConnectionError("the client closed the connection inside the body")
        remaining -= len(piece)
        yield piece


def _iter_chunked(rfile, piece_bytes: int) -> Iterator[bytes]:
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        while size > 0:
            piece = rfile.read(min(size, piece_bytes))
            if not piece:
                raise ConnectionError("the client closed the connection inside a chunk")
            size -= len(piece)
            yield piece
        rfile.readline()
