"""Manifests by tag or digest. GET and HEAD answer with Docker-Content-Digest, Content-Type and the
manifest's Content-Length (the deployed front door's edge function keeps that length on a HEAD,
DESIGN.md §1a); a reference that cannot name a manifest is MANIFEST_UNKNOWN, as in the reference
registry, and only a PUT to an invalid tag is TAG_INVALID."""
from chalice import Response

from chalicelib import audit, errors, spec, validate
from chalicelib.auth.service import token_allows
from chalicelib.errors import RegistryError
from chalicelib.signing.service import Policy, VerifiedMode
from chalicelib.manifests import ManifestService
from chalicelib.routes.request import body
from chalicelib.routes.respond import empty
from chalicelib.services import services
from chalicelib.urls import manifest_url


def _check_verified(request, service: ManifestService, name: str, reference: str, digest: str) -> None:
    """Verified mode: refuse what no trusted signature vouches for. A token with push on the
    repository is exempt (signing an existing image reads it first)."""
    policy = Policy(name)
    if not policy.verified or token_allows(request.claims, "repository", name, "push"):
        return
    tag = None if validate.is_digest(reference) else reference
    reason = VerifiedMode(services(), name, policy).refusal(digest, tag, lambda: service.parents(name, digest))
    if reason:
        audit.record("verified.refused", name, reference, outcome=audit.DENIED, digest=digest)
        raise RegistryError(errors.DENIED, reason, message=reason)


def _found(request, name, reference) -> tuple:
    service = ManifestService(services())
    manifest = service.find(name, reference)
    _check_verified(request, service, name, reference, manifest.digest)
    headers = {"Content-Type": manifest.media_type, "Content-Length": str(manifest.size),
               spec.CONTENT_DIGEST_HEADER: manifest.digest}
    return service, manifest, headers


def head(request, name, reference):
    _, _, headers = _found(request, name, reference)
    return Response(body="", status_code=200, headers=headers)


def get(request, name, reference):
    service, manifest, headers = _found(request, name, reference)
    audit.record("manifest.pull", name, reference, digest=manifest.digest)
    return Response(body=service.body(manifest).decode("utf-8"), status_code=200, headers=headers)


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
    ManifestService(services()).delete(name, reference)
    return empty(202)
