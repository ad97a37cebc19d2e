"""Blobs: HEAD and GET answer 307 to a presigned S3 URL (S3 supplies the bytes and the exact
Content-Length); DELETE removes the repository's link."""
from chalicelib import spec, validate
from chalicelib.blobs import BlobService
from chalicelib.routes.respond import empty, redirect
from chalicelib.services import services


def _redirect(name: str, digest: str, operation: str):
    validate.digest(digest)
    url, link = BlobService(services()).presigned_url(name, digest, operation)
    return redirect(url, {spec.CONTENT_DIGEST_HEADER: link.digest})


def head(request, name, digest):
    return _redirect(name, digest, "head_object")


def get(request, name, digest):
    return _redirect(name, digest, "get_object")


def delete(request, name, digest):
    validate.digest(digest)
    BlobService(services()).unlink(name, digest)
    return empty(202)
