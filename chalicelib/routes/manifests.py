"""Manifests by tag or digest. HEAD answers 307 to a presigned S3 HEAD, so the exact
Content-Length comes from S3 whatever the front door does to a HEAD response's headers."""
from chalice import Response

from chalicelib import audit, spec, validate
from chalicelib.manifests import ManifestService
from chalicelib.routes.request import body
from chalicelib.routes.respond import empty, redirect
from chalicelib.services import services
from chalicelib.urls import manifest_url


def head(request, name, reference):
    validate.reference(reference)
    service = ManifestService(services())
    digest = service.digest_for(name, reference)
    return redirect(service.presigned_head(digest), {spec.CONTENT_DIGEST_HEADER: digest})


def get(request, name, reference):
    validate.reference(reference)
    service = ManifestService(services())
    manifest = service.get(name, service.digest_for(name, reference))
    audit.record("manifest.pull", name, reference, digest=manifest.digest)
    return Response(body=service.body(manifest).decode("utf-8"), status_code=200,
                    headers={"Content-Type": manifest.media_type,
                             spec.CONTENT_DIGEST_HEADER: manifest.digest})


def put(request, name, reference):
    validate.reference(reference)
    manifest = ManifestService(services()).put(name, reference, body(request),
                                               request.headers.get("content-type"))
    headers = {"Location": manifest_url(name, manifest.digest),
               spec.CONTENT_DIGEST_HEADER: manifest.digest}
    if manifest.subject:
        headers[spec.OCI_SUBJECT_HEADER] = manifest.subject
    return empty(201, headers)


def delete(request, name, reference):
    validate.reference(reference)
    ManifestService(services()).delete(name, reference)
    return empty(202)
