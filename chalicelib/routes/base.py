"""`/v2/` (API version check) and Docker's `_catalog` extension."""
from chalicelib import validate
from chalicelib.auth.service import PULL, AuthService, caller_of
from chalicelib.manifests import ManifestService
from chalicelib.routes.respond import json_response, link_next
from chalicelib.routes.request import query
from chalicelib.services import services


def ping(request):
    return json_response({})


def catalog(request):
    """Repositories in name order, only those the caller may pull."""
    limit = validate.page_size(query(request, "n"))
    auth, manifests = AuthService(services()), ManifestService(services())
    caller = caller_of(request.claims)
    names, last, more = [], query(request, "last"), True
    while more and len(names) < limit:
        page, more = manifests.catalog(limit, last)
        if not page:
            break
        last = page[-1]
        names.extend(n for n in page if PULL in auth.allowed_actions(caller, n))
    more = more or len(names) > limit
    names = names[:limit]
    headers = link_next("/v2/_catalog", {"n": limit, "last": names[-1]}) if more and names else {}
    return json_response({"repositories": names}, headers=headers)
