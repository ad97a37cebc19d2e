"""Blobs: GET answers 307 to a presigned S3 URL (S3 supplies the bytes); HEAD answers from the
repository's link alone (digest, length, one read, no S3 call); DELETE removes the link."""
from chalicelib import spec, validate
from chalicelib.blobs import BlobService
from chalicelib.routes.respond import empty, redirect
from chalicelib.services import services


def head(request, name, digest):
    link = BlobService(services()).link_for(name, validate.digest(digest))
    return empty(200, {"Content-Type": spec.OCTET_STREAM, "Content-Length": str(link.size),
                       spec.CONTENT_DIGEST_HEADER: link.digest})


def get(request, name, digest):
    url, link = BlobService(services()).presign_blob_get(name, validate.digest(digest))
    return redirect(url, {spec.CONTENT_DIGEST_HEADER: link.digest})


def delete(request, name, digest):
    validate.digest(digest)
    BlobService(services()).unlink(name, digest)
    return empty(202)
