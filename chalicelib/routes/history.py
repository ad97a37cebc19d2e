"""Tag history, restore and diff: the registry's own extension under `/dockless/v1/`.

    GET  /dockless/v1/<name>/history[?tag=T][&n=&last=]  {"name", "history": [event, …]} newest first;
                                                         Link: rel="next" while more follow
    POST /dockless/v1/<name>/tags/<tag>/restore          {"digest": "sha256:…"} | {"at": "<ISO time>"}
                                                         -> 201, Docker-Content-Digest, Location
    GET  /dockless/v1/<name>/diff?from=REF&to=REF        platforms, config and layer changes

An event: time, tag, action (push | move | delete | restore | expire), from and to digests, actor,
request id, and `at` (the cursor `last` takes); to a caller who may push, also the credential id and
client address (a public repository's readers see who, not from where).
"""
from __future__ import annotations
import datetime

from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.urls import manifest_path
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import empty, json_response, link_next


def history(call, name):
    limit = validate.page_size(call.query("n"))
    tag = call.query("tag")
    if tag is not None:
        validate.tag(tag)
    last = call.query("last")
    if last is not None:
        validate.history_cursor(last)
    events, more = ManifestService(call.backend).history(name, tag, limit, last,
                                                         where_from=call.access.holds(spec.PUSH, name))
    headers = {}
    if more:
        headers = link_next(f"/dockless/v1/{name}/history", {"n": limit, "last": events[-1]["at"],
                                                              **({"tag": tag} if tag else {})})
    return json_response({"name": name, "history": events}, headers=headers)


def restore(call, name, tag):
    document = call.json_object(errors.RESTORE_INVALID)
    digest, at = document.get("digest"), document.get("at")
    if (digest is None) == (at is None):
        raise RegistryError(errors.RESTORE_INVALID, 'give "digest" or "at", not both')
    when = None
    if digest is not None:
        if not isinstance(digest, str):
            raise RegistryError(errors.RESTORE_INVALID, "digest is a string")
        validate.digest(digest)
    else:
        when = _time(at)
    restored = ManifestService(call.backend).restore(name, tag, digest, when)
    return empty(201, {"Location": call.url(manifest_path(name, restored)), spec.CONTENT_DIGEST_HEADER: restored})


def _time(value) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RegistryError(errors.RESTORE_INVALID, f"at={value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def diff(call, name):
    before, after = call.query("from"), call.query("to")
    if not before or not after:
        raise RegistryError(errors.MANIFEST_UNKNOWN, "give from= and to=, each a tag or digest")
    return json_response(ManifestService(call.backend).diff(name, before, after,
                                                             may_push=call.access.allows(spec.PUSH, name)))
