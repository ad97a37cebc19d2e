"""The containers/image signature API extension (docs/signature-protocols.md):

    GET /extensions/v2/<name>/signatures/<digest>  -> {"signatures": [{"schemaVersion": 2,
                                                       "type": "atomic", "name", "content"}]}
    PUT /extensions/v2/<name>/signatures/<digest>  one such object -> 201

and the public keys, Apache style:

    GET /keys/<namespace>            JSON: fingerprint, user ids, algorithm, creation, expiry, capabilities
    GET /keys/<namespace>/KEYS       every trusted key, ASCII-armoured (`curl … | gpg --import`)
    GET /keys/<namespace>/<FPR>.asc  one key
"""
import base64
import json

from chalice import Response

from chalicelib import errors, validate
from chalicelib.errors import RegistryError
from chalicelib.manifests import ManifestService
from chalicelib.routes.request import body, json_object
from chalicelib.routes.respond import empty, json_response
from chalicelib.services import services
from chalicelib.signing.service import SigningService


def get_signatures(request, name, digest):
    validate.digest(digest)
    ManifestService(services()).get(name, digest)
    found = SigningService(services()).signatures(name, digest)
    return json_response({"signatures": [
        {"schemaVersion": 2, "type": "atomic", "name": s.name, "content": base64.b64encode(s.content).decode()}
        for s in found]})


def put_signature(request, name, digest):
    validate.digest(digest)
    ManifestService(services()).get(name, digest)
    document = json_object(request, errors.SIGNATURE_INVALID, "a signature")
    SigningService(services()).store(name, digest, document)
    return empty(201)


def _key_document(key) -> dict:
    return {"fingerprint": key.fingerprint, "uids": json.loads(key.uids), "algorithm": key.algorithm,
            "length": key.length, "created": key.created, "expires": key.expires,
            "capabilities": key.capabilities}


def list_keys(request, namespace):
    return json_response({"namespace": namespace,
                          "keys": [_key_document(k) for k in SigningService(services()).keys(namespace)]})


def key_file(request, namespace, file):
    keys = SigningService(services()).keys(namespace)
    if file != "KEYS":
        keys = [k for k in keys if f"{k.fingerprint}.asc" == file.upper().replace(".ASC", ".asc")]
        if not keys:
            raise RegistryError(errors.ADMIN_UNKNOWN, f"no key {file} for {namespace}")
    text = "".join(k.armored if k.armored.endswith("\n") else k.armored + "\n" for k in keys)
    return Response(body=text, status_code=200, headers={"Content-Type": "application/pgp-keys"})


def add_keys(request, namespace):
    added, warnings = SigningService(services()).add_keys(namespace, body(request).decode("utf-8", "replace"))
    return json_response({"keys": [_key_document(k) for k in added], "warnings": warnings}, status=201)


def remove_key(request, namespace, fingerprint):
    SigningService(services()).remove_key(namespace, fingerprint)
    return empty(204)
