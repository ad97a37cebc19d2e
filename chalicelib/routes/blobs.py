"""Blobs: GET answers 307 to a presigned S3 URL (S3 supplies the bytes); HEAD answers from the
repository's link alone (digest, length, one read, no S3 call); DELETE removes the link."""
from chalicelib import spec, validate
from chalicelib.blobs import BlobService
from chalicelib.routes.respond import empty, redirect


def head(call, name, digest):
    link = BlobService(call.backend).link_for(name, validate.digest(digest))
    return empty(200, {"Content-Type": spec.OCTET_STREAM, "Content-Length": str(link.size),
                       spec.CONTENT_DIGEST_HEADER: link.digest})


def get(call, name, digest):
    url, link = BlobService(call.backend).presign_blob_get(name, validate.digest(digest))
    return redirect(url, {spec.CONTENT_DIGEST_HEADER: link.digest})


def delete(call, name, digest):
    validate.digest(digest)
    BlobService(call.backend).unlink(name, digest)
    return empty(202)
