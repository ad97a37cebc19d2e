"""Validation of names, tags, digests and references against the spec's grammars (oci/spec.py).

Each function returns the value it accepts or raises the spec's error; nothing is written before
these run.
"""
from __future__ import annotations
from typing import List, Optional

from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError


def _name_refused(detail: str, message: str) -> RegistryError:
    return RegistryError(errors.NAME_INVALID, detail, message=f"invalid repository name: {message}")


def repository_name(name: str) -> str:
    if len(name) > spec.NAME_MAX_LENGTH:
        raise _name_refused(f"{len(name)} characters", f"at most {spec.NAME_MAX_LENGTH} characters")
    if not spec.NAME_RE.fullmatch(name):
        raise _name_refused(f"{name!r} does not match {spec.NAME_RE.pattern}",
                            "use lowercase letters and digits, separated by '.', '_', '__' or '-', in "
                            "components joined by '/' (e.g. team/app)")
    components = name.split("/")
    if len(components) > spec.NAME_MAX_COMPONENTS:
        raise _name_refused(f"{len(components)} components", f"at most {spec.NAME_MAX_COMPONENTS} components")
    reserved = spec.NAME_RESERVED_COMPONENTS.intersection(components)
    if reserved:
        raise _name_refused(f"path components {sorted(reserved)} are reserved for registry routes",
                            f"{', '.join(sorted(reserved))} cannot be a component: reserved for registry routes")
    return name


def repository_path(components: List[str]) -> str:
    """A name from the path components a route captured: each one a component, never a slash
    that arrived percent-encoded inside one."""
    if any("/" in component for component in components):
        raise _name_refused("a path component holds a slash", "no encoded slash (%2F) inside a component")
    return repository_name("/".join(components))


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


def _matching(pattern, error: errors.ErrorCode, what: str):
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise RegistryError(error, f"{value[:100]!r} is not {what}")
        return value
    return check


# Path parameters that name our own things: a value that cannot exist is refused before any read
# (an empty or over-long key would be a DynamoDB error, not an answer).
upload_id = _matching(spec.UPLOAD_ID_RE, errors.BLOB_UPLOAD_UNKNOWN, "an upload session id")
namespace = _matching(spec.NAMESPACE_RE, errors.NAME_INVALID, "a namespace")
principal = _matching(spec.PRINCIPAL_NAME_RE, errors.ADMIN_UNKNOWN, "a user, robot or team name")
credential_id = _matching(spec.CREDENTIAL_ID_RE, errors.ADMIN_UNKNOWN, "a credential id")
trust_id = _matching(spec.TRUST_ID_RE, errors.ADMIN_UNKNOWN, "a trust id")
webhook_id = _matching(spec.WEBHOOK_ID_RE, errors.ADMIN_UNKNOWN, "a webhook id (wh_<16 hex>)")
delivery_id = _matching(spec.DELIVERY_ID_RE, errors.ADMIN_UNKNOWN, "a delivery id (as the delivery log names it)")
fingerprint = _matching(spec.FINGERPRINT_RE, errors.ADMIN_UNKNOWN, "a key fingerprint")
mirror_rule = _matching(spec.MIRROR_RULE_RE, errors.ADMIN_INVALID, "a mirror rule's name (a-z 0-9 . _ -)")
advisory_id = _matching(spec.ADVISORY_ID_RE, errors.ADMIN_INVALID, "an advisory id (A-Z a-z 0-9 . _ : -)")


def key_file(value: str) -> str:
    """KEYS, cosign.pub, or one item: <fingerprint>.asc (OpenPGP), <fingerprint>.pub (cosign),
    <fingerprint>.json (a sigstore trusted root or a keyless identity), <fingerprint>.crt (a
    notation root certificate) or <fingerprint>.txt (a notation trusted identity)."""
    stem, _, suffix = value.rpartition(".")
    if value not in ("KEYS", "cosign.pub") and not (suffix.lower() in ("asc", "pub", "json", "crt", "txt")
                                                    and spec.FINGERPRINT_RE.fullmatch(stem)):
        raise RegistryError(errors.ADMIN_UNKNOWN, f"{value[:100]!r} is not KEYS, cosign.pub, <fingerprint>.asc, "
                                                  "<fingerprint>.pub, <fingerprint>.json, <fingerprint>.crt or <fingerprint>.txt")
    return value


def history_cursor(value: str) -> str:
    """`last` of a history page: the `at` of the event that ended the previous page."""
    if not spec.HISTORY_CURSOR_RE.fullmatch(value):
        raise RegistryError(errors.PAGINATION_NUMBER_INVALID, f"last={value[:100]!r} is not a history cursor",
                            message="invalid history cursor: pass `last` as the Link header gave it")
    return value


def page_size(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return spec.PAGE_DEFAULT
    if not raw.isdigit():
        raise RegistryError(errors.PAGINATION_NUMBER_INVALID, f"n={raw!r} is not a whole number")
    return min(int(raw), spec.PAGE_MAX)
