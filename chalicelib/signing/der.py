"""Reading DER (X.690's distinguished encoding) one element at a time, for what `cryptography`
does not parse: an RFC 3161 timestamp's CMS structure (signing/timestamps.py).

`Element` is one tag-length-value, with the bytes it spans (`raw`, what a signature covers) and
its content; `children()` reads a constructed element's content as a sequence of elements. Only
what DER allows is read: single-byte tags, definite lengths in their shortest form, nothing past
the end. Anything else raises DerError, which callers treat as "verifies as nothing".
"""
from __future__ import annotations
from datetime import datetime, timezone
from typing import List, NamedTuple

# Universal tags
INTEGER, OCTET_STRING, OID, SEQUENCE, SET, GENERALIZED_TIME = 0x02, 0x04, 0x06, 0x30, 0x31, 0x18
BOOLEAN = 0x01
MAX_LENGTH_BYTES = 4  # a length needs at most four bytes here: nothing read is 4 GiB


class DerError(ValueError):
    """Not DER, or not the structure expected."""


class Element(NamedTuple):
    tag: int
    raw: bytes  # the whole element: tag, length and content
    content: bytes

    def children(self) -> List["Element"]:
        if not self.tag & 0x20:
            raise DerError(f"tag {self.tag:#x} is not constructed")
        return elements(self.content)

    def context(self, number: int) -> bool:
        """Whether this is the context-specific tag [number] (constructed or not)."""
        return self.tag & 0xDF == 0x80 | number

    def expect(self, tag: int) -> "Element":
        if self.tag != tag:
            raise DerError(f"tag {self.tag:#x} where {tag:#x} belongs")
        return self

    def integer(self) -> int:
        self.expect(INTEGER)
        if not self.content:
            raise DerError("an empty INTEGER")
        return int.from_bytes(self.content, "big", signed=True)

    def oid(self) -> str:
        content = self.expect(OID).content
        if not content or content[-1] & 0x80:
            raise DerError("a truncated OBJECT IDENTIFIER")
        arcs, value = [], 0
        for byte in content:
            value = value << 7 | byte & 0x7F
            if not byte & 0x80:
                arcs.append(value)
                value = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])

    def generalized_time(self) -> float:
        """Unix seconds of a GeneralizedTime in DER's form: YYYYMMDDHHMMSS[.fraction]Z."""
        text = self.expect(GENERALIZED_TIME).content.decode("ascii", "replace")
        whole, _, fraction = text[:-1].partition(".")
        if not text.endswith("Z") or len(whole) != 14 or not whole.isdigit() or (fraction and not fraction.isdigit()):
            raise DerError(f"{text[:40]!r} is not a DER GeneralizedTime")
        moment = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp()
        return moment + (float(f"0.{fraction}") if fraction else 0.0)


def read(data: bytes) -> Element:
    """The one element `data` is (nothing may follow it)."""
    element, end = _element(data, 0)
    if end != len(data):
        raise DerError(f"{len(data) - end} bytes after the element")
    return element


def elements(data: bytes) -> List[Element]:
    found, at = [], 0
    while at < len(data):
        element, at = _element(data, at)
        found.append(element)
    return found


def _element(data: bytes, at: int):
    if at + 2 > len(data):
        raise DerError("truncated")
    tag, first = data[at], data[at + 1]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not used here")
    start = at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > MAX_LENGTH_BYTES or start + count > len(data):
            raise DerError("an indefinite or oversized length")
        length = int.from_bytes(data[start:start + count], "big")
        if length < 0x80 or data[start] == 0:
            raise DerError("a length not in its shortest form")
        start += count
    end = start + length
    if end > len(data):
        raise DerError("a length past the end")
    return Element(tag, data[at:end], data[start:end]), end
