"""Paginated listings of a repository: tags and referrers."""
from chalicelib.oci import spec, validate
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import json_response, link_next


def tags(call, name):
    limit = validate.page_size(call.query("n"))
    page, more = ManifestService(call.backend).tags(name, limit, call.query("last"))
    headers = link_next(f"/v2/{name}/tags/list", {"n": limit, "last": page[-1]}) if more else {}
    return json_response({"name": name, "tags": page}, headers=headers)


def referrers(call, name, digest):
    validate.digest(digest)
    limit = validate.page_size(call.query("n"))
    artifact_type = call.query("artifactType")
    descriptors, more = ManifestService(call.backend).referrers(
        name, digest, artifact_type, limit, call.query("last"))
    headers = {spec.OCI_FILTERS_HEADER: "artifactType"} if artifact_type else {}
    if more:
        next_query = {"n": limit, "last": descriptors[-1]["digest"]}
        if artifact_type:
            next_query["artifactType"] = artifact_type
        headers.update(link_next(f"/v2/{name}/referrers/{digest}", next_query))
    index = {"schemaVersion": 2, "mediaType": spec.OCI_INDEX, "manifests": descriptors}
    return json_response(index, headers=headers, content_type=spec.OCI_INDEX)
