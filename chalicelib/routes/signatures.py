"""The containers/image signature API extension (docs/signature-protocols.md):

    GET /extensions/v2/<name>/signatures/<digest>  -> {"signatures": [{"schemaVersion": 2,
                                                       "type": "atomic", "name", "content"}]}
    PUT /extensions/v2/<name>/signatures/<digest>  one such object -> 201

and the public keys, Apache style:

    GET /keys/<namespace>            JSON: fingerprint, user ids, algorithm, creation, expiry, capabilities
    GET /keys/<namespace>/KEYS       every trusted key, ASCII-armoured (`curl … | gpg --import`)
    GET /keys/<namespace>/<FPR>.asc  one key
"""
from __future__ import annotations
import base64
import json

from chalice import Response

from chalicelib.oci import errors, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import empty, json_response
from chalicelib.signing.service import SigningService


def get_signatures(call, name, digest):
    validate.digest(digest)
    ManifestService(call.backend).get(name, digest)
    found = SigningService(call.backend).signatures(name, digest)
    return json_response({"signatures": [
        {"schemaVersion": 2, "type": "atomic", "name": s.name, "content": base64.b64encode(s.content).decode()}
        for s in found]})


def put_signature(call, name, digest):
    validate.digest(digest)
    ManifestService(call.backend).get(name, digest)
    document = call.json_object(errors.SIGNATURE_INVALID, "a signature")
    SigningService(call.backend).store(name, digest, document)
    return empty(201)


def _key_document(key) -> dict:
    return {"fingerprint": key.fingerprint, "uids": json.loads(key.uids), "algorithm": key.algorithm,
            "length": key.length, "created": key.created, "expires": key.expires,
            "capabilities": key.capabilities}


def list_keys(call, namespace):
    return json_response({"namespace": namespace,
                          "keys": [_key_document(k) for k in SigningService(call.backend).keys(namespace)]})


def key_file(call, namespace, file):
    keys = SigningService(call.backend).keys(namespace)
    if file != "KEYS":
        keys = [k for k in keys if f"{k.fingerprint}.asc" == file.upper().replace(".ASC", ".asc")]
        if not keys:
            raise RegistryError(errors.ADMIN_UNKNOWN, f"no key {file} for {namespace}")
    text = "".join(k.armored if k.armored.endswith("\n") else k.armored + "\n" for k in keys)
    return Response(body=text, status_code=200, headers={"Content-Type": "application/pgp-keys"})


def add_keys(call, namespace):
    added, warnings = SigningService(call.backend).add_keys(namespace, call.body().decode("utf-8", "replace"))
    return json_response({"keys": [_key_document(k) for k in added], "warnings": warnings}, status=201)


def remove_key(call, namespace, fingerprint):
    SigningService(call.backend).remove_key(namespace, fingerprint)
    return empty(204)
