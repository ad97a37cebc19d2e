"""Blobs: GET answers 307 to a presigned S3 URL (S3 supplies the bytes); HEAD answers from the
repository's link alone (digest, length, one read with the namespace's settings, no S3 call);
DELETE removes the link. A blob a cache namespace does not hold yet is copied in from its
upstream first on GET, and answered from the upstream's HEAD on HEAD (chalicelib/pullthrough/proxy.py)."""
from chalicelib.oci import spec, validate
from chalicelib.registry.blobs import BlobService
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import empty, redirect


def head(call, name, digest):
    link, elsewhere = BlobService(call.backend).served(name, validate.digest(digest), call.access.readable, head=True)
    if link is None:
        return redirect(elsewhere, {spec.CONTENT_DIGEST_HEADER: digest})
    return empty(200, {"Content-Type": spec.OCTET_STREAM, "Content-Length": str(link.size),
                       spec.CONTENT_DIGEST_HEADER: link.digest})


def get(call, name, digest):
    link, elsewhere = BlobService(call.backend).served(name, validate.digest(digest), call.access.readable)
    url = elsewhere or call.backend.objects.presign_get(link.location)
    return redirect(url, {spec.CONTENT_DIGEST_HEADER: digest})


def delete(call, name, digest):
    ManifestService(call.backend).delete_blob(name, validate.digest(digest))
    return empty(202)
