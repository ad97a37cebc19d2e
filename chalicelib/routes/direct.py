"""The direct-upload extension (`/dockless/v1/`): presigned S3 URLs for an open upload session,
so layer bytes go from the client to the bucket and never through the API. Completion is the
standard `PUT /v2/<name>/blobs/uploads/<id>?digest=` with no body.

    POST /dockless/v1/<name>/uploads/<id>/direct  {"digest": "sha256:…", "size": N}
      -> {"mode": "single", "url", "method": "PUT", "headers": {Content-Length, x-amz-checksum-sha256}}
      -> {"mode": "multipart", "part_size", "part_count", "max_parts_per_request"}
    POST /dockless/v1/<name>/uploads/<id>/parts   {"parts": [{"number": n, "sha256": "<base64>"}]}
      -> {"parts": [{"number", "url", "method": "PUT", "headers"}]}

Each URL is signed for its exact Content-Length and x-amz-checksum-sha256, so S3 itself refuses
bytes that do not match.
"""
from chalicelib.oci import errors, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.registry.blobs import BlobService
from chalicelib.routes.respond import json_response


def open_upload(call, name, upload_id):
    document = call.json_object(errors.BLOB_UPLOAD_INVALID)
    digest, size = document.get("digest"), document.get("size")
    if not isinstance(digest, str):
        raise RegistryError(errors.DIGEST_INVALID, "digest is required")
    validate.digest(digest)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(errors.SIZE_INVALID, "size must be a non-negative integer")
    service = BlobService(call.backend)
    upload, standing = service.load_for_link(name, upload_id, digest)
    return json_response(service.open_direct(upload, digest, size, standing))


def part_urls(call, name, upload_id):
    parts = call.json_object(errors.BLOB_UPLOAD_INVALID).get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise RegistryError(errors.BLOB_UPLOAD_INVALID, "parts must be a list of objects")
    service = BlobService(call.backend)
    return json_response({"parts": service.part_urls(service.load_upload(name, upload_id), parts)})
