"""Building responses: JSON bodies, redirects and the spec's error body."""
from __future__ import annotations
import json
from typing import Dict, Optional
from urllib.parse import urlencode

from chalice import Response

from chalicelib.oci import spec
from chalicelib.oci.errors import RegistryError


def json_response(document, status: int = 200, headers: Optional[Dict[str, str]] = None,
                  content_type: str = spec.JSON) -> Response:
    return Response(body=json.dumps(document), status_code=status,
                    headers={"Content-Type": content_type, **(headers or {})})


def empty(status: int, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(body="", status_code=status, headers=dict(headers or {}))


def redirect(url: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """307: the client repeats the same method (GET or HEAD) at the presigned URL."""
    return empty(307, {"Location": url, **(headers or {})})


def error(exc: RegistryError) -> Response:
    return Response(body=exc.body(), status_code=exc.status,
                    headers={"Content-Type": spec.JSON, **exc.headers})


def link_next(path: str, query: dict) -> Dict[str, str]:
    """The spec's pagination header: `Link: <url>; rel="next"` (a relative URL, as distribution)."""
    return {"Link": f'<{path}?{urlencode(query)}>; rel="next"'}
