"""What a handler is given: the request, the backend it runs on, and what the caller may do.

`dispatch` builds one `Call` per request after the access check; handlers read the request through
it (query parameters, body, JSON body, Content-Range) and never look up globals or credentials.
"""
from __future__ import annotations
import dataclasses
from typing import Optional, Tuple

from chalicelib.access.decision import Access
from chalicelib.backend import Backend
from chalicelib.oci import jsondoc, protocol
from chalicelib.oci.errors import ErrorCode


@dataclasses.dataclass(frozen=True)
class Call:
    request: object  # chalice.app.Request
    backend: Backend
    access: Access

    def query(self, name: str) -> Optional[str]:
        return (self.request.query_params or {}).get(name)

    def header(self, name: str) -> Optional[str]:
        return self.request.headers.get(name)

    def body(self) -> bytes:
        return self.request.raw_body or b""

    def json_object(self, error: ErrorCode, what: str = "the body") -> dict:
        """The body as one JSON object (an empty body is an empty object), or the route's error."""
        return jsondoc.parse_object(self.body() or b"{}", error, what)

    def content_range(self) -> Optional[Tuple[int, int]]:
        """PATCH's Content-Range `<start>-<end>` (inclusive), or None for a streamed chunk."""
        return protocol.content_range(self.header("content-range"))

    def url(self, path: str) -> str:
        """An absolute URL under the registry's public URL (Location headers)."""
        return self.backend.public_url() + path
