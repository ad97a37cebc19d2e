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
import hashlib
import itertools
import json
import secrets
import time
from datetime import datetime
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.access.federation import star_match
from chalicelib.backend import Backend
from chalicelib.metadata import keys, queries
from chalicelib.metadata.models import BlobLink, Manifest, Signature, SigningKey, Tag, failed_conditions, transaction
from chalicelib.oci import errors, jsondoc, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.policy.settings import RepositorySettings
from chalicelib.signing import bundles, cosign, gpg, keyless, notation

ATOMIC_TYPE = "atomic container signature"
# Where the registry's own key is published (/keys/_registry/KEYS).
REGISTRY_NAMESPACE = "_registry"
_registry_fingerprint = None
_registry_cosign = None  # a cosign.PrivateKey, False once found to be none, None before it is read


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
    (COSIGN), a sigstore trusted root (keyless.ROOT), a keyless identity (keyless.IDENTITY), a
    notation trust store's root certificate (notation.STORES' values: a CA's, a TSA's or a signing
    authority's) or trusted identity (notation.IDENTITY)."""
    if key.algorithm in (keyless.ROOT, keyless.IDENTITY, notation.IDENTITY, *notation.STORES.values()):
        return key.algorithm
    return COSIGN if cosign.holds_public_keys(key.armored) else OPENPGP


def _item(namespace: str, fingerprint: str, text: str, uids: List[str], algorithm: str, length: int) -> SigningKey:
    """A trusted item other than an OpenPGP key: it signs (capabilities "s"), with no dates of its own."""
    return SigningKey(namespace, fingerprint, armored=text, uids=json.dumps(uids), algorithm=algorithm,
                      length=length, created=None, expires=None, capabilities="s")


def trust_scope(namespace: str, repositories: Optional[str]) -> Optional[str]:
    """The repositories a trusted item is for, as stored (a JSON list of full patterns), from
    `app,tools/*` (names within the namespace, `*` any run); None (not given): the whole namespace."""
    if repositories is None:
        return None
    patterns = [p.strip() for p in repositories.split(",")]
    bad = [p for p in patterns if not spec.TRUST_SCOPE_RE.fullmatch(p)]
    if bad or len(patterns) > spec.TRUST_SCOPES_MAX:
        raise RegistryError(errors.ADMIN_INVALID, f"repositories: 1 to {spec.TRUST_SCOPES_MAX} repository names "
                                                  f"within {namespace} (a-z 0-9 . _ - / and *), comma-separated; "
                                                  f"not {bad[:3]}")
    return json.dumps(sorted({f"{namespace}/{p}" for p in patterns}))


def applies_to(key: SigningKey, repository: str) -> bool:
    """Whether the namespace trusts `key` for `repository`."""
    return key.repositories is None or any(star_match(p, repository) for p in json.loads(key.repositories))


class Vouch(NamedTuple):
    """What a signature that verifies now with a trusted key vouches for."""
    signature: Signature
    fingerprint: str
    identity: str


class Trust:
    """The keys trusted at the moment of a decision, and the signatures they verify."""

    def __init__(self, trusted: Iterable[SigningKey]):
        kinds: Dict[str, List[SigningKey]] = {kind: [] for kind in (OPENPGP, COSIGN, keyless.ROOT, keyless.IDENTITY,
                                                                    notation.IDENTITY, *notation.STORES.values())}
        for key in trusted:
            kinds[kind_of(key)].append(key)
        self._keys = {key.fingerprint: key.armored for key in kinds[OPENPGP]}
        self._cosign_keys = {key.fingerprint: key.armored for key in kinds[COSIGN]}
        self._root_texts = [key.armored for key in kinds[keyless.ROOT]]
        self._identities = [keyless.parse_identity(key.armored) for key in kinds[keyless.IDENTITY]]
        self.notation_stores = notation.TrustStores.by_kind(
            {kind: [notation.Root(key.fingerprint, key.armored, "".join(json.loads(key.uids))) for key in kinds[kind]]
             for kind in notation.STORES.values()})
        self._notation_identities = [notation.parse_identity(key.armored) for key in kinds[notation.IDENTITY]]

    @property
    def has_cosign_trust(self) -> bool:
        """Whether any cosign signature could count: a cosign key, or a keyless identity and a root."""
        return bool(self._cosign_keys) or bool(self._identities and self._root_texts)

    def _roots(self) -> List[keyless.TrustedRoot]:
        roots = []
        for text in self._root_texts:
            try:
                roots.append(keyless.root(text))
            except keyless.TrustRefused:
                continue  # checked when added: only a root stored by an older version could be refused
        return roots

    def _keyless_proof(self, entry: cosign.Entry) -> Optional[keyless.Proof]:
        if entry.certificate is None or entry.bundle is None or not self._root_texts:
            return None
        return keyless.verify(entry, self._roots())

    def bundle_signer(self, bundle: bundles.Bundle) -> Optional[str]:
        """The fingerprint of the trusted cosign key, or keyless identity, that made a sigstore
        bundle's signature; None if nothing trusted did."""
        return bundles.signer(bundle, self._cosign_keys, self._roots() if self._identities else [], self._identities)

    def notation_signer(self, envelope: notation.Envelope, digest: str, now: datetime) -> Optional[str]:
        """The fingerprint of the trust store's root behind a notation signature for `digest` that
        is valid at `now`, or None."""
        return notation.verify(envelope, self.notation_stores, digest, now.timestamp(), self._notation_identities)

    def notation_listing(self, found: Iterable[notation.Envelope], digest: str, now: datetime) -> List[dict]:
        """Each notation signature as cosign_listing shows a `.sig` signature."""
        listed = []
        for envelope in found:
            signer = self.notation_signer(envelope, digest, now)
            listed.append({"format": "notation", "fingerprint": signer, "trusted": signer is not None,
                           "identity": envelope.target or "", "certificate": notation.named(envelope)})
        return listed

    def bundle_listing(self, found: Iterable[bundles.Bundle], digest: str) -> List[dict]:
        """Each sigstore bundle as cosign_listing shows a `.sig` signature."""
        listed = []
        for bundle in found:
            signer = self.bundle_signer(bundle)
            pem = bundles.certificate_pem(bundle)
            listed.append({"format": "sigstore-bundle", "fingerprint": signer,
                           "trusted": signer is not None and bundle.vouched_digest == digest,
                           "identity": bundle.vouched_digest or "(an attestation, not a signature)",
                           "certificate": keyless.named(pem) if pem else None})
        return listed

    def cosign_signer(self, entry: cosign.Entry) -> Optional[str]:
        """The fingerprint of the trusted cosign key, or keyless identity, that made the entry's
        signature; None if nothing trusted did."""
        made_by = cosign.signer(entry, self._cosign_keys)
        if made_by is None and self._identities:
            identity = keyless.signer(self._keyless_proof(entry), self._identities)
            made_by = identity.fingerprint if identity is not None else None
        return made_by

    @classmethod
    def of_repository(cls, repository: str) -> "Trust":
        """The keys its namespace trusts for a repository, and the registry's own. The registry
        signs only a push to a repository that signs automatically, under that repository's
        name, so its signatures stay trusted for what it signed after automatic signing is turned
        off; removing its key from `_registry` withdraws them (a rotation, a compromise)."""
        namespace = keys.namespace_of(repository)
        return cls([key for key in SigningKey.query(namespace) if applies_to(key, repository)]
                   + list(SigningKey.query(REGISTRY_NAMESPACE)))

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

    def add_keys(self, namespace: str, armored: str, repositories: Optional[str] = None
                 ) -> Tuple[List[SigningKey], List[str]]:
        """Trust what `armored` holds for the namespace, or only for the `repositories` given
        (`app,tools/*`: names within it, `*` any run; `trust_scope`): OpenPGP keys
        (ASCII-armoured), cosign's PEM public keys (cosign.pub), a sigstore trusted root (its JSON),
        or a keyless identity (`{"issuer": URL, "subject": PATTERN}`); the last two together trust
        keyless signatures. For notation: root certificates (PEM; after a line
        `notation.truststore: tsa` or `... signingAuthority`, that trust store's), or a trusted
        identity (`x509.subject: ...`). One transaction: all of it, or nothing."""
        scope = trust_scope(namespace, repositories)
        kind, items, warnings = self._read_trust(namespace, armored)
        now = self._backend.clock()
        with transaction() as txn:
            for item in items:
                item.added_at, item.repositories = now, scope
                txn.save(item)
                detail = {"format": kind} if kind != OPENPGP else {}
                if scope is not None:
                    detail["repositories"] = json.loads(scope)
                self._backend.audit.record_in(txn, "key.add", None, item.fingerprint, namespace=namespace, **detail)
        return items, warnings

    def _read_trust(self, namespace: str, armored: str) -> Tuple[str, List[SigningKey], List[str]]:
        """(kind, the items, warnings) that `armored` holds: see add_keys. Refused: INVALID."""
        try:
            if cosign.holds_public_keys(armored):
                return COSIGN, [_item(namespace, info.fingerprint, info.pem, [], info.algorithm, info.length)
                                for info in cosign.public_keys(armored)], []
            if armored.lstrip().startswith("{"):
                return self._keyless_item(namespace, armored)
            if armored.lstrip().startswith(notation.STORE_MARK):
                store, _, certificates = armored.lstrip()[len(notation.STORE_MARK):].partition("\n")
                if store.strip() not in notation.STORES:
                    raise notation.Refused(f"notation's trust stores are {', '.join(notation.STORES)}")
                return self._notation_roots(namespace, certificates, notation.STORES[store.strip()])
            if notation.holds_certificates(armored):
                return self._notation_roots(namespace, armored, notation.ROOT)
            if armored.strip().startswith(notation.SUBJECT_PREFIX):
                identity = notation.parse_identity(armored)
                return notation.IDENTITY, [_item(namespace, identity.fingerprint, identity.text, [identity.text],
                                                 notation.IDENTITY, 0)], []
            found = gpg.split_public_keys(armored)
        except (cosign.KeyRefused, keyless.TrustRefused, notation.Refused, gpg.KeyRefused) as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        warnings = [f"{info.fingerprint}: the primary key cannot sign; signatures made by its subkeys are rejected "
                    "by older skopeo (Debian's 1.9)" for info in found if not info.primary_can_sign]
        return OPENPGP, [SigningKey(namespace, info.fingerprint, armored=info.armored, uids=json.dumps(info.uids),
                                    algorithm=info.algorithm, length=info.length, created=info.created,
                                    expires=info.expires, capabilities=info.capabilities) for info in found], warnings

    @staticmethod
    def _keyless_item(namespace: str, text: str) -> Tuple[str, List[SigningKey], List[str]]:
        if keyless.is_trusted_root(text):
            parsed = keyless.parse_root(text)
            return keyless.ROOT, [_item(namespace, parsed.fingerprint, text, [], keyless.ROOT,
                                        len(parsed.authorities))], []
        identity = keyless.parse_identity(text)
        return keyless.IDENTITY, [_item(namespace, identity.fingerprint, identity.document(),
                                        [f"{identity.subject} ({identity.issuer})"], keyless.IDENTITY, 0)], []

    @staticmethod
    def _notation_roots(namespace: str, text: str, kind: str) -> Tuple[str, List[SigningKey], List[str]]:
        return kind, [_item(namespace, root.fingerprint, root.pem, [root.subject], kind, 0)
                      for root in notation.roots(text)], []

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
        if body is not None and (tag is None or spec.ATTACHED_TAG_RE.fullmatch(tag)) \
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
        if self._trust.has_cosign_trust:
            # A cosign payload names the repository, with or without the tag it was signed as.
            found = cosign_entries(self._backend, self._repository, digest)
            if any(identity == wanted or (tag is not None and identity == f"{wanted}:{tag}")
                   or (tag is None and _repository_of(identity) == wanted)
                   for _, identity in self._trust.cosign_vouches(found, digest)):
                return True
            # A bundle names the digest alone; it is one of this repository's referrers of it.
            if any(bundle.vouched_digest == digest and self._trust.bundle_signer(bundle) is not None
                   for bundle in bundle_entries(self._backend, self._repository, digest)):
                return True
        # A notation signature too: its payload names the digest, and it refers to it here.
        return bool(self._trust.notation_stores) and any(
            self._trust.notation_signer(envelope, digest, self._backend.clock()) is not None
            for envelope in notation_entries(self._backend, self._repository, digest))

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

    return cosign.entries(document, lambda layer: _small_blob(backend, repository, layer, cosign.MAX_PAYLOAD_BYTES))


def _small_blob(backend: Backend, repository: str, digest: str, limit: int) -> Optional[bytes]:
    """A blob the repository links, if it is at most `limit` bytes (its bytes are checked by the caller)."""
    try:
        link = BlobLink.get(repository, digest)
    except DoesNotExist:
        return None
    return backend.objects.get(link.location) if link.size <= limit else None


REFERRERS_READ = 16  # signature referrers read per decision and format: a flood of them costs no more


def _referrer_layers(backend: Backend, repository: str, digest: str, artifact_type: str, layer_type,
                     limit: int) -> List[Tuple[str, bytes]]:
    """(media type, bytes) of each layer `layer_type(mediaType)` accepts, of at most `limit` bytes,
    of the repository's referrers of `digest` whose artifactType starts with `artifact_type`."""
    found = []
    referrers = Manifest.by_subject.query(keys.image(repository, digest), filter_condition=(
        Manifest.deleted_at.does_not_exist() & Manifest.artifact_type.startswith(artifact_type)))
    for manifest in itertools.islice(referrers, REFERRERS_READ):
        try:
            layers = json.loads(queries.manifest_body(backend.objects, manifest)).get("layers") or []
        except (ValueError, AttributeError):
            continue
        for layer in layers if isinstance(layers, list) else ():
            if not isinstance(layer, dict) or not layer_type(layer.get("mediaType")) \
                    or not isinstance(layer.get("digest"), str):
                continue
            data = _small_blob(backend, repository, layer["digest"], limit)
            if data is not None and "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]:
                found.append((layer["mediaType"], data))
    return found


def bundle_entries(backend: Backend, repository: str, digest: str) -> List[bundles.Bundle]:
    """The sigstore bundles among the repository's referrers of `digest` (signing/bundles.py)."""
    found = (bundles.parse(data) for _, data in _referrer_layers(backend, repository, digest, cosign.BUNDLE_TYPE,
                                                                 bundles.is_bundle, bundles.MAX_BUNDLE_BYTES))
    return [bundle for bundle in found if bundle is not None]


def notation_entries(backend: Backend, repository: str, digest: str) -> List[notation.Envelope]:
    """The notation signatures (JWS or COSE) among the repository's referrers of `digest` (signing/notation.py)."""
    found = (notation.parse_any(media_type, data) for media_type, data in _referrer_layers(
        backend, repository, digest, notation.ARTIFACT_TYPE, lambda media_type: media_type in (notation.JWS, notation.COSE),
        notation.MAX_ENVELOPE_BYTES))
    return [envelope for envelope in found if envelope is not None]


def _registry_keys(backend: Backend) -> Optional[str]:
    """The registry's own keys: its armoured GPG secret key and, beside it, its cosign key (PEM)."""
    text = backend.settings.registry_signing_key
    if text is None and backend.settings.registry_signing_key_secret:
        text = backend.secret(backend.settings.registry_signing_key_secret).strip() or None
    return text


def registry_key(backend: Backend) -> Optional[str]:
    """The fingerprint of the registry's own signing key, imported once per process and published
    under /keys/_registry; None when none is configured."""
    global _registry_fingerprint
    if _registry_fingerprint is None:
        text = _registry_keys(backend)
        armored = cosign.PRIVATE_BLOCK.sub("", text).strip() if text else None
        if not armored:
            return None
        fingerprint, public = gpg.load_secret_key(armored)
        if not SigningKey.count(REGISTRY_NAMESPACE, SigningKey.fingerprint == fingerprint):
            SigningService(backend).add_keys(REGISTRY_NAMESPACE, public)
        _registry_fingerprint = fingerprint
    return _registry_fingerprint


def registry_cosign_key(backend: Backend) -> Optional[cosign.PrivateKey]:
    """The registry's own cosign key (ECDSA P-256), loaded once per process, its public half
    trusted and published under /keys/_registry/cosign.pub; None when its secret holds none
    (remembered too: a registry without one does not read its secret at every signed push)."""
    global _registry_cosign
    if _registry_cosign is None:
        text = _registry_keys(backend)
        found = cosign.private_key(text) if text else None
        if found is not None and not SigningKey.count(REGISTRY_NAMESPACE, SigningKey.fingerprint == found.fingerprint):
            SigningService(backend).add_keys(REGISTRY_NAMESPACE, found.public_pem)
        _registry_cosign = found or False
    return _registry_cosign or None


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
