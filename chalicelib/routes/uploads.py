"""Blob uploads: POST (session, monolithic, mount), PATCH, GET status, PUT, DELETE."""
from __future__ import annotations
from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.spec import PULL
from chalicelib.oci.urls import blob_path
from chalicelib.registry.blobs import BlobService
from chalicelib.routes.respond import empty


def _created(call, name: str, digest: str):
    return empty(201, {"Location": call.url(blob_path(name, digest)), spec.CONTENT_DIGEST_HEADER: digest})


def start(call, name):
    service = BlobService(call.backend)
    mount, source = call.query("mount"), call.query("from")
    if mount and source:
        validate.digest(mount)
        # Mounting needs pull on the source (the route's also_pull); without it the request is an
        # ordinary upload, as the spec allows, and says nothing about whether the source has the blob.
        if call.access.allows(PULL, validate.repository_name(source)) and service.mount(name, source, mount):
            return _created(call, name, mount)
    digest = call.query("digest")
    if digest is not None:
        validate.digest(digest)
        service.push_monolithic(name, digest, call.body())
        return _created(call, name, digest)
    return empty(202, service.state_headers(service.start_upload(name)))


def status(call, name, upload_id):
    service = BlobService(call.backend)
    return empty(204, service.state_headers(service.load_upload(name, upload_id)))


def patch(call, name, upload_id):
    service = BlobService(call.backend)
    upload = service.load_upload(name, upload_id)
    return empty(202, service.state_headers(service.append(upload, call.body(), call.content_range())))


def put(call, name, upload_id):
    digest = call.query("digest")
    if not digest:
        raise RegistryError(errors.DIGEST_INVALID, "PUT completes an upload and needs ?digest=")
    validate.digest(digest)
    service = BlobService(call.backend)
    upload, standing = service.load_for_link(name, upload_id, digest)
    service.complete(upload, digest, call.body(), standing)
    return _created(call, name, digest)


def cancel(call, name, upload_id):
    service = BlobService(call.backend)
    service.cancel(service.load_upload(name, upload_id))
    return empty(204)
