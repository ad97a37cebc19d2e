"""The containers/image signature API extension (docs/signature-protocols.md):

    GET /extensions/v2/<name>/signatures/<digest>  -> {"signatures": [{"schemaVersion": 2,
                                                       "type": "atomic", "name", "content"}]}
    PUT /extensions/v2/<name>/signatures/<digest>  one such object -> 201

and the public keys, Apache style:

    GET /keys/<namespace>            JSON: fingerprint, user ids, algorithm, creation, expiry, capabilities
    GET /keys/<namespace>/KEYS       every trusted OpenPGP key, ASCII-armoured (`curl … | gpg --import`)
    GET /keys/<namespace>/cosign.pub every trusted cosign public key, PEM (`cosign verify --key`)
    GET /keys/<namespace>/<FPR>.asc  one OpenPGP key; <FPR>.pub one cosign key; <FPR>.json a
                                     sigstore trusted root or keyless identity (JSON); <FPR>.crt
                                     a notation trust store's root certificate (PEM); <FPR>.txt
                                     a notation trusted identity (x509.subject: ...)

Each of the /keys answers takes `?repository=NAME`: then only what the namespace trusts for that
repository (an item added with `?repositories=app,tools/*` is trusted for those alone).
"""
from __future__ import annotations
import base64
import json

from chalice import Response

from chalicelib.oci import errors, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.registry.manifests import ManifestService
from chalicelib.routes.respond import empty, json_response
from chalicelib.signing import keyless, notation
from chalicelib.signing.service import COSIGN, OPENPGP, SigningService, applies_to, kind_of


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
    return {"fingerprint": key.fingerprint, "kind": kind_of(key), "uids": json.loads(key.uids),
            "algorithm": key.algorithm,
            "length": key.length, "created": key.created, "expires": key.expires,
            "capabilities": key.capabilities,
            "repositories": json.loads(key.repositories) if key.repositories else None}


def _trusted(call, namespace):
    """The namespace's trusted items; with `?repository=NAME`, those trusted for that repository."""
    found = SigningService(call.backend).keys(namespace)
    repository = call.query("repository")
    return found if repository is None else [k for k in found if applies_to(k, repository)]


def list_keys(call, namespace):
    return json_response({"namespace": namespace, "keys": [_key_document(k) for k in _trusted(call, namespace)]})


# What each published file holds: the kinds of trusted item, and how they are served.
_FILES = {"KEYS": (OPENPGP, "application/pgp-keys"), "cosign.pub": (COSIGN, "application/x-pem-file")}
_SUFFIXES = {"asc": (OPENPGP,), "pub": (COSIGN,), "json": (keyless.ROOT, keyless.IDENTITY), "crt": tuple(notation.STORES.values()),
             "txt": (notation.IDENTITY,)}
_TYPES = {OPENPGP: "application/pgp-keys", COSIGN: "application/x-pem-file", keyless.ROOT: "application/json",
          keyless.IDENTITY: "application/json", notation.ROOT: "application/x-pem-file",
          **{store: "application/x-pem-file" for store in notation.STORES.values()},
          notation.IDENTITY: "text/plain; charset=utf-8"}


def key_file(call, namespace, file):
    """KEYS: the namespace's OpenPGP keys; cosign.pub: its cosign public keys (PEM); <FPR>.asc,
    <FPR>.pub, <FPR>.json or <FPR>.crt: one of them, a trusted root, a keyless identity, or a
    notation root certificate."""
    found = _trusted(call, namespace)
    if file in _FILES:
        kind, content_type = _FILES[file]
        chosen = [k for k in found if kind_of(k) == kind]
    else:  # <FPR>.<suffix> (validate.key_file)
        stem, _, suffix = file.rpartition(".")
        chosen = [k for k in found if kind_of(k) in _SUFFIXES[suffix.lower()] and k.fingerprint == stem.upper()]
        if not chosen:
            raise RegistryError(errors.ADMIN_UNKNOWN, f"no key {file} for {namespace}")
        content_type = _TYPES[kind_of(chosen[0])]
    text = "".join(k.armored if k.armored.endswith("\n") else k.armored + "\n" for k in chosen)
    return Response(body=text, status_code=200, headers={"Content-Type": content_type})


def add_keys(call, namespace):
    added, warnings = SigningService(call.backend).add_keys(namespace, call.body().decode("utf-8", "replace"),
                                                           call.query("repositories"))
    return json_response({"keys": [_key_document(k) for k in added], "warnings": warnings}, status=201)


def remove_key(call, namespace, fingerprint):
    SigningService(call.backend).remove_key(namespace, fingerprint)
    return empty(204)
