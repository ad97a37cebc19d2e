"""Signatures and trusted keys: storing atomic signatures after checking them, and the
namespace keyrings (Apache KEYS style) that decide whether a signer is trusted."""
import base64
import binascii
import json
from typing import List, Tuple

from pynamodb.exceptions import PutError

from chalicelib import audit, errors
from chalicelib.errors import RegistryError
from chalicelib.meta.models import Signature, SigningKey
from chalicelib.services import Services
from chalicelib.signing import gpg

ATOMIC_TYPE = "atomic container signature"


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


class SigningService:
    def __init__(self, services: Services):
        self._services = services

    # --- keys ----------------------------------------------------------------------------------

    def keys(self, namespace: str) -> List[SigningKey]:
        return list(SigningKey.query(namespace))

    def add_keys(self, namespace: str, armored: str) -> Tuple[List[SigningKey], List[str]]:
        try:
            found = gpg.inspect_public_keys(armored)
        except gpg.KeyError_ as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        now, added, warnings = self._services.clock(), [], []
        for info in found:
            key = SigningKey(namespace, info.fingerprint, armored=armored, uids=json.dumps(info.uids),
                             algorithm=info.algorithm, length=info.length, created=info.created,
                             expires=info.expires, capabilities=info.capabilities, added_at=now)
            key.save()
            audit.record("key.add", None, info.fingerprint, namespace=namespace)
            added.append(key)
            if not info.primary_can_sign:
                warnings.append(f"{info.fingerprint}: the primary key cannot sign; signatures made by its "
                                "subkeys are rejected by older skopeo (Debian's 1.9)")
        return added, warnings

    def remove_key(self, namespace: str, fingerprint: str) -> None:
        SigningKey(namespace, fingerprint.upper()).delete()
        audit.record("key.remove", None, fingerprint, namespace=namespace)

    # --- signatures ----------------------------------------------------------------------------

    def signatures(self, repository: str, digest: str) -> List[Signature]:
        return list(Signature.query(f"{repository}@{digest}"))

    def store(self, repository: str, digest: str, document: dict) -> Signature:
        if document.get("schemaVersion") != 2 or document.get("type") != "atomic":
            raise RegistryError(errors.SIGNATURE_INVALID, "schemaVersion must be 2 and type atomic")
        name = document.get("name")
        if not isinstance(name, str) or not name.startswith(f"{digest}@") or name == f"{digest}@":
            raise RegistryError(errors.SIGNATURE_INVALID, f"name must be {digest}@<id>")
        try:
            content = base64.b64decode(document.get("content") or "", validate=True)
        except (binascii.Error, TypeError):
            raise RegistryError(errors.SIGNATURE_INVALID, "content must be base64") from None
        keys = self.keys(namespace_of(repository))
        try:
            checked = gpg.verify_opaque(content, [k.armored for k in keys])
            payload = json.loads(checked.payload)
            critical = payload["critical"]
            identity = critical["identity"]["docker-reference"]
            signed_digest = critical["image"]["docker-manifest-digest"]
        except (ValueError, KeyError, TypeError) as error:
            raise RegistryError(errors.SIGNATURE_INVALID, f"not an atomic container signature: {error}") from None
        if critical.get("type") != ATOMIC_TYPE:
            raise RegistryError(errors.SIGNATURE_INVALID, f"critical.type must be {ATOMIC_TYPE!r}")
        if signed_digest != digest:
            raise RegistryError(errors.SIGNATURE_INVALID, f"the signature is for {signed_digest}, not {digest}")
        if not checked.intact:
            raise RegistryError(errors.SIGNATURE_INVALID, f"the signature does not verify ({checked.status})")
        known = checked.fingerprint in {k.fingerprint for k in keys}
        signature = Signature(f"{repository}@{digest}", name, content=content,
                              signer=checked.fingerprint or checked.key_id, identity=identity,
                              trusted=known and checked.valid, created_at=self._services.clock())
        try:
            signature.save(condition=Signature.name.does_not_exist())
        except PutError:
            raise RegistryError(errors.SIGNATURE_EXISTS, {"name": name}) from None
        audit.record("signature.add", repository, digest, signer=signature.signer, trusted=signature.trusted)
        return signature
