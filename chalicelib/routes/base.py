"""`/v2/` (API version check) and Docker's `_catalog` extension."""
from chalicelib import validate
from chalicelib.manifests import ManifestService
from chalicelib.routes.respond import json_response, link_next
from chalicelib.routes.request import query
from chalicelib.services import services


def ping(request):
    return json_response({})


def catalog(request):
    limit = validate.page_size(query(request, "n"))
    names, more = ManifestService(services()).catalog(limit, query(request, "last"))
    headers = link_next("/v2/_catalog", {"n": limit, "last": names[-1]}) if more else {}
    return json_response({"repositories": names}, headers=headers)
