"""Signatures and trusted keys: storing atomic signatures, the namespace keyrings (Apache KEYS
style), and the one decision of which stored signatures count.

A signature counts only if it verifies cryptographically, at the moment of the decision, with a
key trusted then (`Trust`). What is stored is the signature's bytes and what it claims; a
signature whose key is not yet known is kept (skopeo stores before the key is published) and
counts once its key is trusted, because it is verified again then. Removing a key stops its
signatures counting at once. Verifications are cached by the signature's bytes (gpg.py), so a
decision costs one DynamoDB query per namespace and, in a warm container, no gpg call.
"""
from __future__ import annotations
import base64
import binascii
import json
import secrets
import time
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.backend import Backend
from chalicelib.metadata import keys, queries
from chalicelib.metadata.models import BlobLink, Manifest, Signature, SigningKey, Tag, failed_conditions, transaction
from chalicelib.oci import errors, jsondoc, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.policy.settings import RepositorySettings
from chalicelib.signing import cosign, gpg, keyless

ATOMIC_TYPE = "atomic container signature"
# Where the registry's own key is published (/keys/_registry/KEYS).
REGISTRY_NAMESPACE = "_registry"
_registry_fingerprint = None


def atomic_payload(payload: bytes) -> Tuple[str, str]:
    """(docker-manifest-digest, docker-reference) of an atomic signature's payload."""
    document = jsondoc.parse_object(payload, errors.SIGNATURE_INVALID, "the signed payload")
    try:
        critical = document["critical"]
        identity = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (KeyError, TypeError) as missing:
        raise RegistryError(errors.SIGNATURE_INVALID, f"not an atomic container signature: {missing}") from None
    if kind != ATOMIC_TYPE or not isinstance(identity, str) or not isinstance(digest, str):
        raise RegistryError(errors.SIGNATURE_INVALID, f"critical.type must be {ATOMIC_TYPE!r}, with string "
                                                      "identity and digest")
    return digest, identity


OPENPGP, COSIGN = "openpgp", "cosign"


def kind_of(key: SigningKey) -> str:
    """What a namespace trusts with this item: an OpenPGP key (OPENPGP), a cosign public key
    (COSIGN), a sigstore trusted root (keyless.ROOT) or a keyless identity (keyless.IDENTITY)."""
    if key.algorithm in (keyless.ROOT, keyless.IDENTITY):
        return key.algorithm
    return COSIGN if cosign.holds_public_keys(key.armored) else OPENPGP


class Vouch(NamedTuple):
    """What a signature that verifies now with a trusted key vouches for."""
    signature: Signature
    fingerprint: str
    identity: str


class Trust:
    """The keys trusted at the moment of a decision, and the signatures they verify."""

    def __init__(self, trusted: Iterable[SigningKey]):
        kinds: Dict[str, List[SigningKey]] = {OPENPGP: [], COSIGN: [], keyless.ROOT: [], keyless.IDENTITY: []}
        for key in trusted:
            kinds[kind_of(key)].append(key)
        self._keys = {key.fingerprint: key.armored for key in kinds[OPENPGP]}
        self._cosign_keys = {key.fingerprint: key.armored for key in kinds[COSIGN]}
        self._root_texts = [key.armored for key in kinds[keyless.ROOT]]
        self._identities = [keyless.parse_identity(key.armored) for key in kinds[keyless.IDENTITY]]

    @property
    def has_cosign_trust(self) -> bool:
        """Whether any cosign signature could count: a cosign key, or a keyless identity and a root."""
        return bool(self._cosign_keys) or bool(self._identities and self._root_texts)

    def _keyless_proof(self, entry: cosign.Entry) -> Optional[keyless.Proof]:
        if entry.certificate is None or entry.bundle is None or not self._root_texts:
            return None
        roots = []
        for text in self._root_texts:
            try:
                roots.append(keyless.root(text))
            except keyless.TrustRefused:
                continue  # checked when added: only a root stored by an older version could be refused
        return keyless.verify(entry.certificate, entry.bundle, entry.signature, entry.payload, roots)

    def cosign_signer(self, entry: cosign.Entry) -> Optional[str]:
        """The fingerprint of the trusted cosign key, or keyless identity, that made the entry's
        signature; None if nothing trusted did."""
        made_by = cosign.signer(entry, self._cosign_keys)
        if made_by is None and self._identities:
            identity = keyless.signer(self._keyless_proof(entry), self._identities)
            made_by = identity.fingerprint if identity is not None else None
        return made_by

    @classmethod
    def of(cls, *namespaces: str) -> "Trust":
        return cls(key for namespace in namespaces for key in SigningKey.query(namespace))

    @classmethod
    def of_repository(cls, repository: str) -> "Trust":
        """The keys trusted for a repository's namespace, and the registry's own. The registry
        signs only a push to a repository that signs automatically, under that repository's
        name, so its signatures stay trusted for what it signed after automatic signing is turned
        off; removing its key from `_registry` withdraws them (a rotation, a compromise)."""
        return cls.of(keys.namespace_of(repository), REGISTRY_NAMESPACE)

    def vouches(self, signatures: Iterable[Signature], digest: str) -> List[Vouch]:
        found = []
        for signature in signatures:
            try:
                checked = gpg.verify_opaque(signature.content, self._keys)
                signed_digest, identity = atomic_payload(checked.payload)
            except (ValueError, RegistryError):
                continue
            if checked.valid and checked.fingerprint in self._keys and signed_digest == digest:
                found.append(Vouch(signature, checked.fingerprint, identity))
        return found

    def cosign_listing(self, found: Iterable[cosign.Entry], digest: str) -> List[dict]:
        """Each cosign signature as shown: its format, the trusted key or identity that made it (or
        None), whether it counts for `digest`, the identity its payload claims, and for a keyless
        one the signer its certificate names (verified or not)."""
        listed = []
        for entry in found:
            claimed = cosign.claims(entry.payload) or ("", "")
            signer = self.cosign_signer(entry)
            listed.append({"format": "cosign-keyless" if entry.certificate else "cosign", "fingerprint": signer,
                           "trusted": signer is not None and claimed[0] == digest, "identity": claimed[1],
                           "certificate": keyless.named(entry.certificate) if entry.certificate else None})
        return listed

    def cosign_vouches(self, found: Iterable[cosign.Entry], digest: str) -> List[Tuple[str, str]]:
        """(signer, identity) of the cosign signatures a trusted key or identity made for `digest`."""
        return cosign.vouches(found, self.cosign_signer, digest) if self.has_cosign_trust else []


class SigningService:
    def __init__(self, backend: Backend):
        self._backend = backend

    # --- keys ----------------------------------------------------------------------------------

    def keys(self, namespace: str) -> List[SigningKey]:
        return list(SigningKey.query(namespace))

    def add_keys(self, namespace: str, armored: str) -> Tuple[List[SigningKey], List[str]]:
        """Trust what `armored` holds for the namespace: OpenPGP keys (ASCII-armoured), cosign's
        PEM public keys (cosign.pub), a sigstore trusted root (its JSON), or a keyless identity
        (`{"issuer": URL, "subject": PATTERN}`); the last two together trust keyless signatures."""
        if cosign.holds_public_keys(armored):
            return self._add_cosign_keys(namespace, armored)
        if armored.lstrip().startswith("{"):
            return self._add_keyless_trust(namespace, armored)
        try:
            found = gpg.split_public_keys(armored)
        except gpg.KeyRefused as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        now, added, warnings = self._backend.clock(), [], []
        with transaction() as txn:
            for info in found:
                key = SigningKey(namespace, info.fingerprint, armored=info.armored, uids=json.dumps(info.uids),
                                 algorithm=info.algorithm, length=info.length, created=info.created,
                                 expires=info.expires, capabilities=info.capabilities, added_at=now)
                txn.save(key)
                self._backend.audit.record_in(txn, "key.add", None, info.fingerprint, namespace=namespace)
                added.append(key)
                if not info.primary_can_sign:
                    warnings.append(f"{info.fingerprint}: the primary key cannot sign; signatures made by its "
                                    "subkeys are rejected by older skopeo (Debian's 1.9)")
        return added, warnings

    def _add_cosign_keys(self, namespace: str, text: str) -> Tuple[List[SigningKey], List[str]]:
        try:
            found = cosign.public_keys(text)
        except cosign.KeyRefused as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        return self._add(namespace, COSIGN, [SigningKey(namespace, info.fingerprint, armored=info.pem, uids="[]",
                                                        algorithm=info.algorithm, length=info.length)
                                             for info in found])

    def _add_keyless_trust(self, namespace: str, text: str) -> Tuple[List[SigningKey], List[str]]:
        try:
            if keyless.is_trusted_root(text):
                parsed = keyless.parse_root(text)
                item = SigningKey(namespace, parsed.fingerprint, armored=text, uids="[]", algorithm=keyless.ROOT,
                                  length=len(parsed.authorities))
            else:
                identity = keyless.parse_identity(text)
                item = SigningKey(namespace, identity.fingerprint, armored=identity.document(),
                                  uids=json.dumps([f"{identity.subject} ({identity.issuer})"]),
                                  algorithm=keyless.IDENTITY, length=0)
        except keyless.TrustRefused as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        return self._add(namespace, item.algorithm, [item])

    def _add(self, namespace: str, kind: str, items: List[SigningKey]) -> Tuple[List[SigningKey], List[str]]:
        now = self._backend.clock()
        with transaction() as txn:
            for item in items:
                item.created, item.expires, item.capabilities, item.added_at = None, None, "s", now
                txn.save(item)
                self._backend.audit.record_in(txn, "key.add", None, item.fingerprint, namespace=namespace,
                                              format=kind)
        return items, []

    def remove_key(self, namespace: str, fingerprint: str) -> None:
        key = SigningKey(namespace, fingerprint.upper())
        try:
            with transaction() as txn:
                txn.delete(key, condition=SigningKey.fingerprint.exists())
                self._backend.audit.record_in(txn, "key.remove", None, key.fingerprint, namespace=namespace)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise RegistryError(errors.ADMIN_UNKNOWN, f"no key {fingerprint} for {namespace}") from None

    # --- verified mode -------------------------------------------------------------------------

    def verified_refusal(self, repository: str, digest: str, tag: Optional[str], parents,
                         settings: RepositorySettings, body=None) -> Optional[str]:
        """Verified mode's answer for serving this manifest under the repository's `settings`: None
        when it may be served (or the mode is off), else what is missing. A cosign signature
        artifact under its own tag is served (`body()` gives its bytes): it holds no image, and
        verifiers must read it. `parents()` lists the
        indexes that contain it."""
        if not settings.verified:
            return None
        if tag is not None and body is not None and spec.ATTACHED_TAG_RE.fullmatch(tag) \
                and cosign.is_signature_artifact(body()):
            return None
        return VerifiedMode(self._backend, repository).refusal(digest, tag, parents)

    # --- signatures ----------------------------------------------------------------------------

    def signatures(self, repository: str, digest: str) -> List[Signature]:
        return list(Signature.query(keys.image(repository, digest)))

    def store(self, repository: str, digest: str, document: dict) -> Signature:
        """Keep a signature of this digest unless it is malformed, for another digest, or
        verifiably bad. One whose key is unknown is kept; it counts once a trusted key verifies it."""
        if document.get("schemaVersion") != 2 or document.get("type") != "atomic":
            raise RegistryError(errors.SIGNATURE_INVALID, "schemaVersion must be 2 and type atomic")
        name = document.get("name")
        if not isinstance(name, str) or not name.startswith(f"{digest}@") or name == f"{digest}@":
            raise RegistryError(errors.SIGNATURE_INVALID, f"name must be {digest}@<id>")
        try:
            content = base64.b64decode(document.get("content") or "", validate=True)
            checked = gpg.verify_opaque(content, {k.fingerprint: k.armored for k in
                                                  self.keys(keys.namespace_of(repository)) if kind_of(k) == OPENPGP})
        except (binascii.Error, TypeError, ValueError) as error:
            raise RegistryError(errors.SIGNATURE_INVALID, f"not an OpenPGP signed message: {error}") from None
        signed_digest, identity = atomic_payload(checked.payload)
        if signed_digest != digest:
            raise RegistryError(errors.SIGNATURE_INVALID, f"the signature is for {signed_digest}, not {digest}")
        if checked.bad:
            raise RegistryError(errors.SIGNATURE_INVALID, f"the signature does not verify ({checked.status})")
        signature = Signature(keys.image(repository, digest), name, content=content,
                              signer=checked.fingerprint or checked.key_id, identity=identity,
                              created_at=self._backend.clock())
        try:
            with transaction() as txn:
                txn.save(signature, condition=Signature.name.does_not_exist())
                self._backend.audit.record_in(txn, "signature.add", repository, digest, signer=signature.signer,
                                verified=checked.valid)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise RegistryError(errors.SIGNATURE_EXISTS, {"name": name}) from None
        return signature


def _repository_of(identity: str) -> str:
    """`host:port/ns/app:tag` -> `host:port/ns/app` (a colon after the last slash starts the tag)."""
    identity = identity.split("@", 1)[0]
    head, _, last = identity.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else identity


class VerifiedMode:
    """Whether a manifest may be served under verified mode: a signature that verifies now with a
    key trusted for the namespace or the registry's own key (Trust.of_repository), for this
    digest, naming the image as requested; or a child of an index signed that way. A signature is
    an atomic one (GPG, the signature extension) or cosign's (signing/cosign.py, the `.sig` tag),
    read only when the namespace trusts a cosign key."""

    def __init__(self, backend: Backend, repository: str):
        self._backend = backend
        self._host = urlsplit(backend.public_url()).netloc
        self._repository = repository
        self._trust = Trust.of_repository(repository)

    def _signed(self, digest: str, tag: Optional[str]) -> bool:
        wanted = f"{self._host}/{self._repository}"
        signatures = Signature.query(keys.image(self._repository, digest))
        if any((vouch.identity == f"{wanted}:{tag}") if tag else _repository_of(vouch.identity) == wanted
               for vouch in self._trust.vouches(signatures, digest)):
            return True
        if not self._trust.has_cosign_trust:
            return False
        # A cosign payload names the repository, with or without the tag it was signed as.
        found = cosign_entries(self._backend, self._repository, digest)
        return any(identity == wanted or (tag is not None and identity == f"{wanted}:{tag}")
                   or (tag is None and _repository_of(identity) == wanted)
                   for _, identity in self._trust.cosign_vouches(found, digest))

    def refusal(self, digest: str, tag: Optional[str], parents) -> Optional[str]:
        """None when the manifest may be served, else what is missing."""
        if self._signed(digest, tag):
            return None
        if any(self._signed(parent.digest, None) for parent in parents()):
            return None
        name = f"{self._host}/{self._repository}" + (f":{tag}" if tag else f"@{digest}")
        return (f"verified mode: no signature by a key trusted for {keys.namespace_of(self._repository)} "
                f"vouches for {digest} as {name}")


def cosign_entries(backend: Backend, repository: str, digest: str) -> List[cosign.Entry]:
    """The payloads and signatures of the repository's `.sig` manifest for `digest`, if any."""
    try:
        tag = Tag.get(repository, keys.tag_sort_key(cosign.signature_tag(digest)))
        manifest = Manifest.get(repository, tag.digest)
    except DoesNotExist:
        return []
    if manifest.deleted_at is not None:
        return []
    try:
        document = json.loads(queries.manifest_body(backend.objects, manifest))
    except ValueError:
        return []

    def blob(layer: str) -> Optional[bytes]:
        try:
            link = BlobLink.get(repository, layer)
        except DoesNotExist:
            return None
        return backend.objects.get(link.location) if link.size <= cosign.MAX_PAYLOAD_BYTES else None
    return cosign.entries(document, blob)


def registry_key(backend: Backend) -> Optional[str]:
    """The fingerprint of the registry's own signing key, imported once per process and published
    under /keys/_registry; None when none is configured."""
    global _registry_fingerprint
    if _registry_fingerprint is None:
        armored = backend.settings.registry_signing_key
        if armored is None and backend.settings.registry_signing_key_secret:
            armored = backend.secret(backend.settings.registry_signing_key_secret).strip() or None
        if armored is None:
            return None
        fingerprint, public = gpg.load_secret_key(armored)
        if not SigningKey.count(REGISTRY_NAMESPACE, SigningKey.fingerprint == fingerprint):
            SigningService(backend).add_keys(REGISTRY_NAMESPACE, public)
        _registry_fingerprint = fingerprint
    return _registry_fingerprint


def registry_signature(backend: Backend, repository: str, digest: str, tag: str) -> Signature:
    """The registry's own signature of a tag push, under the registry's public name: made before
    the push is written, so the caller writes both in one transaction."""
    fingerprint = registry_key(backend)
    if fingerprint is None:
        message = (f"automatic signing is on for {repository}, but the registry has no signing key: "
                   "an admin must give it one or turn automatic signing off")
        raise RegistryError(errors.DENIED, message, message=message)
    identity = f"{urlsplit(backend.public_url()).netloc}/{repository}:{tag}"
    payload = json.dumps({"critical": {"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": digest},
                                       "identity": {"docker-reference": identity}},
                          "optional": {"creator": "dockless registry", "timestamp": int(time.time())}}).encode()
    return Signature(keys.image(repository, digest), f"{digest}@registry-{secrets.token_hex(8)}",
                     content=gpg.sign_opaque(payload, fingerprint), signer=fingerprint, identity=identity,
                     created_at=backend.clock())
