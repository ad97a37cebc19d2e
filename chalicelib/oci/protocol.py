"""Pieces of the distribution protocol that both sides speak: the API (Lambda) and the programs in
front of it (the gateway, the local front door). Kept free of AWS imports, so the gateway stays
small in memory.
"""
from __future__ import annotations
import re
from typing import Dict, Optional, Tuple

from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d{1,18})-(\d{1,18})(?:/(?:\d{1,18}|\*))?")


def content_range(raw: Optional[str]) -> Optional[Tuple[int, int]]:
    """PATCH's Content-Range `<start>-<end>` (inclusive), or None for a streamed chunk."""
    if raw is None:
        return None
    match = _CONTENT_RANGE.fullmatch(raw.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RegistryError(errors.RANGE_INVALID, f"Content-Range {raw!r} is not <start>-<end>")
    return int(match.group(1)), int(match.group(2))


def check_chunk(chunk_range: Optional[Tuple[int, int]], received: int, length: int) -> None:
    """A chunk must start where the upload ends and be as long as its Content-Range says."""
    if chunk_range is None:
        return
    start, end = chunk_range
    if start != received:
        raise RegistryError(errors.RANGE_INVALID, f"chunk starts at {start}, but the upload has {received} bytes")
    if end - start + 1 != length:
        raise RegistryError(errors.RANGE_INVALID, f"Content-Range covers {end - start + 1} bytes, "
                                                  f"the body has {length}")


def upload_state_headers(location: str, upload_id: str, received: int) -> Dict[str, str]:
    """Location, Range and Docker-Upload-UUID: where an upload continues and what it holds."""
    return {"Location": location, "Range": f"0-{max(received - 1, 0)}", spec.UPLOAD_UUID_HEADER: upload_id}
