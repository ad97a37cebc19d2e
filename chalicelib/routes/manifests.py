"""Manifests by tag or digest. GET and HEAD answer with Docker-Content-Digest, Content-Type and the
manifest's Content-Length (the deployed front door's edge function keeps that length on a HEAD,
DESIGN.md §1a); a reference that cannot name a manifest is MANIFEST_UNKNOWN, as in the reference
registry, and only a PUT to an invalid tag is TAG_INVALID. Verified mode, automatic signing and the
transaction a push writes are ManifestService's."""
from __future__ import annotations
from chalice import Response

from chalicelib.lifecycle.retention import record_pull
from chalicelib.oci import spec, validate
from chalicelib.oci.spec import PUSH
from chalicelib.oci.urls import manifest_path
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import empty


def _served(call, name, reference) -> tuple:
    service = ManifestService(call.backend)
    manifest = service.serve(name, reference, may_push=call.access.allows(PUSH, name))
    headers = {"Content-Type": manifest.media_type, "Content-Length": str(manifest.size),
               spec.CONTENT_DIGEST_HEADER: manifest.digest}
    if service.warning:
        headers["Warning"] = service.warning
    return service, manifest, headers


def head(call, name, reference):
    _, _, headers = _served(call, name, reference)
    return Response(body="", status_code=200, headers=headers)


def get(call, name, reference):
    service, manifest, headers = _served(call, name, reference)
    record_pull(call.backend, name, reference, manifest)
    return Response(body=service.body(manifest).decode("utf-8"), status_code=200, headers=headers)


def put(call, name, reference):
    validate.reference(reference)
    manifest = ManifestService(call.backend).put(name, reference, call.body(), call.header("content-type"))
    headers = {"Location": call.url(manifest_path(name, manifest.digest)),
               spec.CONTENT_DIGEST_HEADER: manifest.digest}
    if manifest.subject:
        headers[spec.OCI_SUBJECT_HEADER] = manifest.subject
    return empty(201, headers)


def delete(call, name, reference):
    ManifestService(call.backend).delete(name, reference)
    return empty(202)
