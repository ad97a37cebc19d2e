"""JSON from clients, parsed by one function: every request body (manifests, signatures, the
direct-upload and administration APIs) and every signed payload.

Bounded in size and nesting (Python's parser recurses, so a deeply nested document would
otherwise end the request with a RecursionError), UTF-8 only, without NaN or Infinity, and
without duplicate keys (parsers disagree on which value wins, so a document that means two
things to two programs is refused). Each caller names the error its route answers with.
"""
from __future__ import annotations
import json
from typing import Any, Optional

from chalicelib.oci import errors, spec
from chalicelib.oci.errors import ErrorCode, RegistryError


def _no_duplicates(pairs):
    document = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest (iteratively: the document may be deep)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def parse(data: bytes, error: ErrorCode, what: str, max_bytes: int = spec.API_MAX_BODY_BYTES) -> Any:
    """The document `data` holds, or RegistryError(error) saying what is wrong with it."""
    if len(data) > max_bytes:
        raise RegistryError(errors.TOO_LARGE, {"limit_bytes": max_bytes})
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                              parse_constant=_no_constant)
    except RecursionError:
        document = None
        problem: Optional[str] = f"nested deeper than {spec.JSON_MAX_DEPTH} levels"
    except (UnicodeDecodeError, ValueError) as failure:
        raise RegistryError(error, f"{what} is not UTF-8 JSON: {failure}") from None
    else:
        problem = None if _depth(document) <= spec.JSON_MAX_DEPTH else \
            f"nested deeper than {spec.JSON_MAX_DEPTH} levels"
    if problem:
        raise RegistryError(error, f"{what} is {problem}")
    return document


def parse_object(data: bytes, error: ErrorCode, what: str, max_bytes: int = spec.API_MAX_BODY_BYTES) -> dict:
    """Like parse, for a document that must be one JSON object."""
    document = parse(data, error, what, max_bytes)
    if not isinstance(document, dict):
        raise RegistryError(error, f"{what} must be a JSON object")
    return document
