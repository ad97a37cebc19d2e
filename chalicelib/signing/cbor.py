"""The little of CBOR (RFC 8949) a COSE_Sign1 envelope needs (signing/notation.py): decoding
definite-length items (integers, byte and text strings, arrays, maps, tags, false/true/null) from
untrusted bytes, bounded in depth and by the bytes at hand, and encoding the Sig_structure a COSE
signature is made over. Anything else (indefinite lengths, floats, other simple values) is refused.
"""
from __future__ import annotations
from typing import Any, NamedTuple, Tuple

MAX_DEPTH = 16


class Tagged(NamedTuple):
    tag: int
    value: Any


class Malformed(ValueError):
    """Not CBOR this decoder reads."""


def _head(data: bytes, at: int) -> Tuple[int, int, int]:
    """(major type, argument, offset after the head)."""
    if at >= len(data):
        raise Malformed("truncated")
    major, info = data[at] >> 5, data[at] & 0x1F
    if info < 24:
        return major, info, at + 1
    if info > 27:
        raise Malformed("indefinite lengths and reserved values are not read")
    size = 1 << (info - 24)
    if at + 1 + size > len(data):
        raise Malformed("truncated")
    return major, int.from_bytes(data[at + 1:at + 1 + size], "big"), at + 1 + size


def _item(data: bytes, at: int, depth: int) -> Tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise Malformed("nested too deep")
    major, argument, at = _head(data, at)
    if major == 0:
        return argument, at
    if major == 1:
        return -1 - argument, at
    if major in (2, 3):
        end = at + argument
        if end > len(data):
            raise Malformed("a string runs past the end")
        chunk = data[at:end]
        if major == 2:
            return chunk, end
        try:
            return chunk.decode(), end
        except UnicodeDecodeError:
            raise Malformed("a text string is not UTF-8") from None
    if major == 4:
        if argument > len(data) - at:  # every item takes at least a byte
            raise Malformed("an array longer than its bytes")
        items = []
        for _ in range(argument):
            item, at = _item(data, at, depth + 1)
            items.append(item)
        return items, at
    if major == 5:
        if 2 * argument > len(data) - at:
            raise Malformed("a map longer than its bytes")
        found = {}
        for _ in range(argument):
            key, at = _item(data, at, depth + 1)
            if isinstance(key, (list, dict)):
                raise Malformed("a map key must be a number or a string")
            found[key], at = _item(data, at, depth + 1)
        return found, at
    if major == 6:
        value, at = _item(data, at, depth + 1)
        return Tagged(argument, value), at
    simple = {20: False, 21: True, 22: None}
    if argument in simple:
        return simple[argument], at
    raise Malformed("floats and other simple values are not read")


def decode(data: bytes) -> Any:
    """The one item `data` holds (no bytes after it)."""
    item, end = _item(data, 0, 0)
    if end != len(data):
        raise Malformed("bytes after the item")
    return item


def _encode_head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([major << 5 | info]) + argument.to_bytes(size, "big")
    raise ValueError("too long")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """COSE_Sign1's Sig_structure (RFC 9052 §4.4): ["Signature1", protected, external_aad (empty), payload]."""
    context = b"Signature1"
    return (_encode_head(4, 4) + _encode_head(3, len(context)) + context + _encode_head(2, len(protected)) + protected
            + _encode_head(2, 0) + _encode_head(2, len(payload)) + payload)
