"""Blob uploads: POST (session, monolithic, mount), PATCH, GET status, PUT, DELETE."""
from chalicelib import errors, spec, validate
from chalicelib.auth.service import token_allows
from chalicelib.blobs import BlobService, upload_state_headers
from chalicelib.errors import RegistryError
from chalicelib.routes.request import body, content_range, query
from chalicelib.routes.respond import empty
from chalicelib.services import services
from chalicelib.urls import blob_url


def _created(name: str, digest: str):
    return empty(201, {"Location": blob_url(name, digest), spec.CONTENT_DIGEST_HEADER: digest})


def start(request, name):
    service = BlobService(services())
    mount, source = query(request, "mount"), query(request, "from")
    if mount and source:
        validate.digest(mount)
        validate.repository_name(source)
        # Mounting needs pull on the source; without it the request is an ordinary upload, as the
        # spec allows, and says nothing about whether the source has the blob.
        if token_allows(request.claims, "repository", source, "pull") and service.mount(name, source, mount):
            return _created(name, mount)
    digest = query(request, "digest")
    if digest is not None:
        validate.digest(digest)
        service.push_monolithic(name, digest, body(request))
        return _created(name, digest)
    return empty(202, upload_state_headers(service.start_upload(name)))


def status(request, name, upload_id):
    upload = BlobService(services()).load_upload(name, upload_id)
    return empty(204, upload_state_headers(upload))


def patch(request, name, upload_id):
    service = BlobService(services())
    upload = service.load_upload(name, upload_id)
    return empty(202, upload_state_headers(service.append(upload, body(request), content_range(request))))


def put(request, name, upload_id):
    digest = query(request, "digest")
    if not digest:
        raise RegistryError(errors.DIGEST_INVALID, "PUT completes an upload and needs ?digest=")
    validate.digest(digest)
    service = BlobService(services())
    upload = service.load_upload(name, upload_id)
    service.complete(upload, digest, body(request))
    return _created(name, digest)


def cancel(request, name, upload_id):
    service = BlobService(services())
    service.cancel(service.load_upload(name, upload_id))
    return empty(204)
