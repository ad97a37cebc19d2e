"""Validation of names, tags, digests and references against the spec's grammars (spec.py).

Each function returns the value it accepts or raises the spec's error; nothing is written before
these run.
"""
from typing import Optional

from chalicelib import errors, spec
from chalicelib.errors import RegistryError


def repository_name(name: str) -> str:
    if len(name) > spec.NAME_MAX_LENGTH:
        raise RegistryError(errors.NAME_INVALID, f"name is longer than {spec.NAME_MAX_LENGTH} characters")
    if not spec.NAME_RE.fullmatch(name):
        raise RegistryError(errors.NAME_INVALID, f"{name!r} does not match {spec.NAME_RE.pattern}")
    reserved = spec.NAME_RESERVED_COMPONENTS.intersection(name.split("/"))
    if reserved:
        raise RegistryError(errors.NAME_INVALID,
                            f"path components {sorted(reserved)} are reserved for registry routes")
    return name


def digest(value: str, error: errors.ErrorCode = errors.DIGEST_INVALID) -> str:
    if not spec.DIGEST_RE.fullmatch(value):
        raise RegistryError(error, f"{value!r} is not a digest")
    algorithm, encoded = value.split(":", 1)
    if algorithm != spec.SUPPORTED_DIGEST_ALGORITHM:
        raise RegistryError(error, f"digest algorithm {algorithm!r} is not supported; use sha256")
    if not spec.SHA256_HEX_RE.fullmatch(encoded):
        raise RegistryError(error, "a sha256 digest is 64 lowercase hex characters")
    return value


def is_digest(reference: str) -> bool:
    return ":" in reference


def tag(value: str) -> str:
    if not spec.TAG_RE.fullmatch(value):
        raise RegistryError(errors.TAG_INVALID, f"{value!r} does not match {spec.TAG_RE.pattern}")
    return value


def reference(value: str) -> str:
    """A manifest reference: a digest or a tag."""
    if is_digest(value):
        return digest(value)
    return tag(value)


def page_size(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return spec.PAGE_DEFAULT
    if not raw.isdigit():
        raise RegistryError(errors.PAGINATION_NUMBER_INVALID, f"n={raw!r} is not a whole number")
    return min(int(raw), spec.PAGE_MAX)
