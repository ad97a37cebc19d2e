"""Signatures and trusted keys: storing atomic signatures after checking them, and the
namespace keyrings (Apache KEYS style) that decide whether a signer is trusted."""
import base64
import binascii
import json
import secrets
import time
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from pynamodb.exceptions import PutError

from chalicelib import audit, errors
from chalicelib.errors import RegistryError
from chalicelib.meta.models import RegistrySetting, Signature, SigningKey
from chalicelib.services import Services
from chalicelib.signing import gpg

ATOMIC_TYPE = "atomic container signature"
# Where the registry's own key is published (/keys/_registry/KEYS).
REGISTRY_NAMESPACE = "_registry"
_registry_fingerprint = None


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


class Policy:
    """A repository's signing settings: each on if set on its namespace or on the repository."""

    def __init__(self, repository: str):
        items = RegistrySetting.batch_get([f"ns:{namespace_of(repository)}", f"repo:{repository}"])
        items = list(items)
        self.verified = any(i.verified for i in items)
        self.auto_sign = any(i.auto_sign for i in items)


def set_policy(resource: str, verified: Optional[bool], auto_sign: Optional[bool]) -> RegistrySetting:
    key = ("repo:" if "/" in resource else "ns:") + resource
    try:
        setting = RegistrySetting.get(key)
    except RegistrySetting.DoesNotExist:
        setting = RegistrySetting(key)
    if verified is not None:
        setting.verified = verified
    if auto_sign is not None:
        setting.auto_sign = auto_sign
    setting.save()
    audit.record("setting.change", resource if "/" in resource else None, None, resource=resource,
                 verified=setting.verified, auto_sign=setting.auto_sign)
    return setting


def _repository_of(identity: str) -> str:
    """`host:port/ns/app:tag` -> `host:port/ns/app` (a colon after the last slash starts the tag)."""
    identity = identity.split("@", 1)[0]
    head, _, last = identity.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else identity


class VerifiedMode:
    """Whether a manifest may be served under verified mode: a stored signature by a key trusted
    for the namespace (or the registry's own key, where it signs automatically), for this digest,
    naming the image as requested; or a child of an index signed that way."""

    def __init__(self, services: Services, repository: str, policy: Policy):
        self._host = urlsplit(services.public_url()).netloc
        self._repository = repository
        namespaces = [namespace_of(repository)] + ([REGISTRY_NAMESPACE] if policy.auto_sign else [])
        self._trusted = {k.fingerprint for n in namespaces for k in SigningKey.query(n)}

    def _signed(self, digest: str, tag: Optional[str]) -> bool:
        wanted = f"{self._host}/{self._repository}"
        for signature in Signature.query(f"{self._repository}@{digest}"):
            if signature.signer not in self._trusted:
                continue
            if (signature.identity == f"{wanted}:{tag}") if tag else _repository_of(signature.identity) == wanted:
                return True
        return False

    def refusal(self, digest: str, tag: Optional[str], parents) -> Optional[str]:
        """None when the manifest may be served, else what is missing."""
        if self._signed(digest, tag):
            return None
        if any(self._signed(parent.digest, None) for parent in parents()):
            return None
        name = f"{self._host}/{self._repository}" + (f":{tag}" if tag else f"@{digest}")
        return (f"verified mode: no signature by a key trusted for {namespace_of(self._repository)} "
                f"vouches for {digest} as {name}")


def registry_key(services: Services) -> Optional[str]:
    """The fingerprint of the registry's own signing key, imported once per process and published
    under /keys/_registry; None when none is configured."""
    global _registry_fingerprint
    if _registry_fingerprint is None:
        armored = services.settings.registry_signing_key
        if armored is None and services.settings.registry_signing_key_secret:
            armored = services.secret(services.settings.registry_signing_key_secret).strip() or None
        if armored is None:
            return None
        fingerprint, public = gpg.load_secret_key(armored)
        if not SigningKey.count(REGISTRY_NAMESPACE, SigningKey.fingerprint == fingerprint):
            SigningService(services).add_keys(REGISTRY_NAMESPACE, public)
        _registry_fingerprint = fingerprint
    return _registry_fingerprint


def auto_sign(services: Services, repository: str, digest: str, tag: str) -> None:
    """Sign a tag push with the registry's key, under the registry's public name."""
    fingerprint = registry_key(services)
    if fingerprint is None:
        raise RegistryError(errors.INTERNAL, "automatic signing is on, but the registry has no signing key")
    identity = f"{urlsplit(services.public_url()).netloc}/{repository}:{tag}"
    payload = json.dumps({"critical": {"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": digest},
                                       "identity": {"docker-reference": identity}},
                          "optional": {"creator": "dockless registry", "timestamp": int(time.time())}}).encode()
    content = gpg.sign_opaque(payload, fingerprint)
    Signature(f"{repository}@{digest}", f"{digest}@registry-{secrets.token_hex(8)}", content=content,
              signer=fingerprint, identity=identity, trusted=True, created_at=services.clock()).save()
    audit.record("signature.add", repository, digest, signer=fingerprint, automatic=True)
