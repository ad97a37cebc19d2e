"""`/v2/` (API version check) and Docker's `_catalog` extension."""
from chalicelib.oci import validate
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import json_response, link_next


def ping(call):
    return json_response({})


def catalog(call):
    """Repositories in name order, only those the caller may pull."""
    limit = validate.page_size(call.query("n"))
    manifests = ManifestService(call.backend)
    names, last, more = [], call.query("last"), True
    while more and len(names) < limit:
        page, more = manifests.catalog(limit, last)
        if not page:
            break
        last = page[-1]
        names.extend(call.access.readable(page))
    more = more or len(names) > limit
    names = names[:limit]
    headers = link_next("/v2/_catalog", {"n": limit, "last": names[-1]}) if more and names else {}
    return json_response({"repositories": names}, headers=headers)
