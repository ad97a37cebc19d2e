"""Every error the registry answers with, declared once: code, message, HTTP status.

Codes are the distribution-spec's ("Error Codes"), plus the few that distribution itself adds
(TAG_INVALID, RANGE_INVALID, PAGINATION_NUMBER_INVALID). Handlers only raise
`RegistryError(BLOB_UNKNOWN, detail=...)`; `dispatch` in `routes/dispatch.py` turns it into the
spec's body `{"errors": [{"code", "message", "detail"}]}`.
"""
from __future__ import annotations
import json
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.oci import spec


class ErrorCode(NamedTuple):
    code: str
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry (expired, cancelled, "
                                                       "or another repository's): push again", 404)
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry: push its config, "
                             "layers and child manifests to this repository first", 400)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry: check the name, or push "
                                         "to create it", 404)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
TOO_LARGE = ErrorCode("SIZE_INVALID", "request body too large for the registry API: push large layers through "
                                       "`dockless gateway` or with `dockless push`", 413)
TAG_INVALID = ErrorCode("TAG_INVALID", "manifest tag did not match URI: a tag is 1 to 128 letters, digits, "
                                       "'_', '.' or '-', not starting with '.' or '-'", 400)
RANGE_INVALID = ErrorCode("RANGE_INVALID", "invalid content range: send chunks in order, each starting where "
                                           "the upload ends", 416)
PAGINATION_NUMBER_INVALID = ErrorCode("PAGINATION_NUMBER_INVALID", "invalid number of results requested: n "
                                                                   "is a whole number", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
# An immutable tag (policy/settings.py) asked to move or go away: docker prints "denied: <message>".
TAG_IMMUTABLE = ErrorCode("DENIED", "the tag is immutable", 403)
# A push past the namespace's storage quota (chalicelib/lifecycle/quota.py): docker prints "denied: <message>".
QUOTA_EXCEEDED = ErrorCode("DENIED", "quota exceeded", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
INTERNAL = ErrorCode("UNKNOWN", "internal error", 500)
# DynamoDB or S3 throttled the registry, or its writes kept conflicting, past the retries
# (runtime/retries.py): a 503 with Retry-After, to run the command again.
STORAGE_BUSY = ErrorCode("TOOMANYREQUESTS", "the registry's storage is busy: retry shortly", 503)
# The signature extension (containers/image docs/signature-protocols.md).
SIGNATURE_INVALID = ErrorCode("SIGNATURE_INVALID", "invalid signature", 400)
SIGNATURE_EXISTS = ErrorCode("SIGNATURE_EXISTS", "a signature with this name exists", 409)
# A restore request without a digest or time it can use.
RESTORE_INVALID = ErrorCode("RESTORE_INVALID", "invalid restore request", 400)
# The token endpoint: a request it will not answer (OAuth2's invalid_request).
TOKEN_REQUEST_INVALID = ErrorCode("INVALID_REQUEST", "invalid token request", 400)
# The administration API (/dockless/admin/v1/): not OCI routes, same error body.
ADMIN_INVALID = ErrorCode("INVALID", "invalid administration request", 400)
ADMIN_UNKNOWN = ErrorCode("NOT_FOUND", "no such user, robot, team or credential", 404)
ADMIN_CONFLICT = ErrorCode("CONFLICT", "already exists", 409)
JOB_RUNNING = ErrorCode("CONFLICT", "a run of this job is under way: try again once it has ended", 409)
# What the front door answers before (or instead of) the function. Deployed, these are API
# Gateway's customised gateway responses (infra/); locally, dockless.local.frontdoor answers them.
ROUTE_UNKNOWN = ErrorCode("NOT_FOUND", "no registry endpoint for this method and path", 404)
FRONT_DOOR_TOO_LARGE = ErrorCode("SIZE_INVALID", "request body larger than the front door accepts: push large "
                                                  "layers through `dockless gateway` or with `dockless push`", 413)
FRONT_DOOR_LENGTH_REQUIRED = ErrorCode("SIZE_INVALID", "the front door takes no chunked request body: send "
                                       "Content-Length, or push through the gateway", 411)
FRONT_DOOR_FAILED = ErrorCode("UNKNOWN", "the registry function failed or refused the request", 502)
FRONT_DOOR_BYPASSED = ErrorCode("DENIED", "requests must come through the registry's front door", 403)
FRONT_DOOR_TIMEOUT = ErrorCode("UNAVAILABLE", "the registry did not answer in time", 504)
MALFORMED_REQUEST = ErrorCode("BAD_REQUEST", "malformed HTTP request", 400)
# `dockless gateway`'s own refusal: its spool (upload bodies on their way to the bucket) is full.
GATEWAY_SPOOL_FULL = ErrorCode("UNAVAILABLE", "the gateway's spool is full: retry later, or start it with a "
                                              "larger --spool-limit", 503)


class RegistryError(Exception):
    """Raised by handlers and services; answered as the spec's error JSON."""

    def __init__(self, error: ErrorCode, detail: Any = None, headers: Optional[Dict[str, str]] = None,
                 status: Optional[int] = None, message: Optional[str] = None):
        super().__init__(f"{error.code}: {detail if detail is not None else error.message}")
        self.error = error
        self.detail = detail
        self.headers = headers or {}
        # Docker's token spec answers a token that lacks an action with 401 + insufficient_scope,
        # while the body says DENIED, which docker shows as "denied: requested access …".
        self.status = status or error.status
        # Clients print the message, not the detail: a refusal that must explain itself sets it.
        self.message = message

    def body(self) -> str:
        return error_body(self.error, self.detail, self.message)


def error_body(error: ErrorCode, detail: Any = None, message: Optional[str] = None) -> str:
    """The spec's error body. Clients print the message, not the detail, so a detail written as a
    sentence joins the message unless the refusal wrote its own."""
    if message is None and isinstance(detail, str):
        message = f"{error.message}: {detail}"
    entry: Dict[str, Any] = {"code": error.code, "message": message or error.message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]})


def error_reply(error: ErrorCode, detail: Any = None, message: Optional[str] = None,
                headers: Sequence[Tuple[str, str]] = ()) -> Tuple[int, List[Tuple[str, str]], bytes]:
    """A whole refusal as the programs in front of the API write it (status, headers, body), with
    the headers every registry answer carries."""
    body = error_body(error, detail, message).encode()
    return error.status, [("Content-Type", spec.JSON), ("Content-Length", str(len(body))),
                          (spec.API_VERSION_HEADER, spec.API_VERSION), (spec.SIGNATURES_HEADER, "1"),
                          ("Cache-Control", spec.CACHE_CONTROL), *headers], body
