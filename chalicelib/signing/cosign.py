"""cosign's signatures by key, as cosign and containers/image ("sigstore attachments") write them.

A signature of manifest `sha256:<hex>` is a manifest of the same repository tagged
`sha256-<hex>.sig` (spec.ATTACHED_TAG_RE): each of its layers of media type SIMPLE_SIGNING is a
payload naming the digest and the repository (`critical.image.docker-manifest-digest`,
`critical.identity.docker-reference`), with the signature of those exact bytes, base64, in the
layer's annotation SIGNATURE_ANNOTATION. A namespace trusts a cosign key by its PEM public key
(`dockless key add NAMESPACE cosign.pub`), kept beside its GPG keys and named by the SHA-256 of
its DER SubjectPublicKeyInfo. Keyless signatures (a certificate and a transparency-log bundle in
the layer's other annotations) are verified by signing/keyless.py.

Everything here reads untrusted bytes: a payload blob is used only if it hashes to the digest its
layer names and is at most MAX_PAYLOAD_BYTES, and a signature that does not verify counts as none.
`cryptography` is imported only when a key is read or a signature checked (never at cold start).
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
import re
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"  # keyless (signing/keyless.py)
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
TIMESTAMP_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"  # {"SignedRFC3161Timestamp": <base64 DER>}
COSIGN_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 64 * 1024
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----\s.*?-----END PUBLIC KEY-----", re.S)
# The registry's own cosign key: a PKCS#8 PEM private key beside its armoured GPG key in one secret.
PRIVATE_BLOCK = re.compile(r"-----BEGIN PRIVATE KEY-----\s.*?-----END PRIVATE KEY-----\s*", re.S)
# Verifications and payloads are cached by their bytes (content-addressed: they never change).
_payloads: Dict[str, bytes] = {}
_verdicts: Dict[Tuple[str, str, str], bool] = {}
CACHE_ENTRIES = 1024


class KeyRefused(ValueError):
    """Not a public key cosign signs with, said why."""


class PublicKeyInfo(NamedTuple):
    fingerprint: str
    pem: str
    algorithm: str
    length: int


def signature_tag(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.sig`, where cosign keeps its signatures."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"


def holds_public_keys(text: str) -> bool:
    return "-----BEGIN PUBLIC KEY-----" in text


def public_keys(text: str) -> List[PublicKeyInfo]:
    """Every PEM public key in `text` (what `cosign generate-key-pair` writes to cosign.pub):
    ECDSA on P-256, P-384 or P-521, RSA of 2048 bits or more, or Ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    found = []
    for block in PEM_BLOCK.findall(text):
        try:
            key = serialization.load_pem_public_key(block.encode())
        except ValueError as error:
            raise KeyRefused(f"not a PEM public key: {error}") from None
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1", "secp521r1"):
            algorithm, length = f"ecdsa-{key.curve.name}", key.curve.key_size
        elif isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            algorithm, length = "rsa", key.key_size
        elif isinstance(key, ed25519.Ed25519PublicKey):
            algorithm, length = "ed25519", 256
        else:
            raise KeyRefused("cosign keys are ECDSA (P-256, P-384, P-521), RSA of at least 2048 bits or Ed25519")
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        found.append(PublicKeyInfo(hashlib.sha256(der).hexdigest().upper(), pem, algorithm, length))
    if not found:
        raise KeyRefused("no PEM public key (-----BEGIN PUBLIC KEY-----) found")
    return found


def verifies_with(key, signature: bytes, data: bytes, sha256_of_data: bool = False) -> bool:
    """Whether `signature` is `key`'s (a cryptography public key) over exactly `data`: ECDSA with
    the curve's hash, RSA PKCS#1 v1.5 with SHA-256, or Ed25519. With `sha256_of_data`, `data` is
    the SHA-256 of what was signed (a sigstore message signature; not possible with Ed25519)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            digest = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}.get(key.curve.key_size)
            if digest is None:
                return False
            key.verify(signature, data, ec.ECDSA(Prehashed(hashes.SHA256()) if sha256_of_data else digest()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), Prehashed(hashes.SHA256()) if sha256_of_data
                       else hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey) and not sha256_of_data:
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _verifies(pem: str, signature: bytes, payload: bytes) -> bool:
    from cryptography.hazmat.primitives import serialization
    return verifies_with(serialization.load_pem_public_key(pem.encode()), signature, payload)


def verifies(pem: str, fingerprint: str, signature: bytes, payload: bytes) -> bool:
    """Whether `signature` is the key's over exactly `payload` (cached by their bytes)."""
    key = (fingerprint, base64.b64encode(signature).decode(), hashlib.sha256(payload).hexdigest())
    if key not in _verdicts:
        if len(_verdicts) >= CACHE_ENTRIES:
            _verdicts.clear()
        _verdicts[key] = _verifies(pem, signature, payload)
    return _verdicts[key]


def claims(payload: bytes) -> Optional[Tuple[str, str]]:
    """(docker-manifest-digest, docker-reference) of a simple-signing payload, or None."""
    try:
        critical = json.loads(payload)["critical"]
        if critical["type"] != COSIGN_TYPE:
            return None
        digest, identity = critical["image"]["docker-manifest-digest"], critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return None
    return (digest, identity) if isinstance(digest, str) and isinstance(identity, str) else None


# What a signature artifact's layers may be: simple-signing payloads (.sig), in-toto attestations
# in DSSE envelopes (.att), sigstore bundles and notation envelopes (referrers). Anything else is an
# image like any other.
ARTIFACT_LAYERS = frozenset({SIMPLE_SIGNING, "application/vnd.dsse.envelope.v1+json",
                             "application/jose+json", "application/cose"})  # the last two: notation's
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle"  # ".v0.3+json", "+json;version=0.2": a prefix


def is_signature_artifact(body: bytes) -> bool:
    """Whether a manifest holds only signatures or attestations (no layer a runtime unpacks)."""
    try:
        layers = json.loads(body).get("layers")
    except (ValueError, AttributeError):
        return False
    return isinstance(layers, list) and bool(layers) and all(
        isinstance(layer, dict) and isinstance(layer.get("mediaType"), str)
        and (layer["mediaType"] in ARTIFACT_LAYERS or layer["mediaType"].startswith(BUNDLE_TYPE)) for layer in layers)


class Entry(NamedTuple):
    """One layer of a `.sig` manifest: the payload's bytes and the signature over them; for a
    keyless signature also its certificate (PEM), transparency-log bundle (JSON) and RFC 3161
    timestamp (JSON), as the layer's annotations hold them (signing/keyless.py)."""
    payload: bytes
    signature: bytes
    certificate: Optional[str] = None
    bundle: Optional[str] = None
    timestamp: Optional[str] = None  # `cosign sign --timestamp-server-url`'s, JSON


def entries(document: dict, read_blob) -> List[Entry]:
    """The signed payloads of a `.sig` manifest `document`; `read_blob(digest)` gives a blob's
    bytes (or None). A layer that is not simple signing, too big, unreadable, not its digest's
    bytes or without a base64 signature is left out."""
    found = []
    layers = document.get("layers") if isinstance(document, dict) else None
    for layer in layers if isinstance(layers, list) else ():
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
        digest, size = layer.get("digest"), layer.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or not isinstance(size, int) \
                or size > MAX_PAYLOAD_BYTES or not isinstance(annotations.get(SIGNATURE_ANNOTATION), str):
            continue
        try:
            signature = base64.b64decode(annotations[SIGNATURE_ANNOTATION], validate=True)
        except binascii.Error:
            continue
        payload = _payload(digest, read_blob)
        if payload is not None:
            found.append(Entry(payload, signature, *(_text(annotations.get(name)) for name in (
                CERTIFICATE_ANNOTATION, BUNDLE_ANNOTATION, TIMESTAMP_ANNOTATION))))
    return found


def _text(value) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _payload(digest: str, read_blob) -> Optional[bytes]:
    if digest not in _payloads:
        data = read_blob(digest)
        if data is None or len(data) > MAX_PAYLOAD_BYTES or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return None
        if len(_payloads) >= CACHE_ENTRIES:
            _payloads.clear()
        _payloads[digest] = data
    return _payloads[digest]


def signer(entry: Entry, trusted: Dict[str, str]) -> Optional[str]:
    """The fingerprint of the trusted key (fingerprint -> PEM) that made the entry's signature, or None."""
    return next((fingerprint for fingerprint, pem in trusted.items()
                 if verifies(pem, fingerprint, entry.signature, entry.payload)), None)


def vouches(found: Iterable[Entry], signed_by: Callable[[Entry], Optional[str]],
            digest: str) -> List[Tuple[str, str]]:
    """(signer, identity) of each entry whose payload names `digest` and `signed_by` finds a
    trusted signer for (a key's fingerprint, a keyless identity's)."""
    vouched = []
    for entry in found:
        claimed = claims(entry.payload)
        made_by = signed_by(entry) if claimed is not None and claimed[0] == digest else None
        if made_by is not None:
            vouched.append((made_by, claimed[1]))
    return vouched


def payload_for(digest: str, identity: str) -> bytes:
    """The simple-signing payload `cosign sign` makes for `identity` (`host/repo`) at `digest`."""
    return json.dumps({"critical": {"identity": {"docker-reference": identity},
                                    "image": {"docker-manifest-digest": digest}, "type": COSIGN_TYPE},
                       "optional": {"creator": "dockless registry"}}, sort_keys=True).encode()


def generate_private_key() -> str:
    """A new ECDSA P-256 key (what `cosign generate-key-pair` makes), unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


class PrivateKey(NamedTuple):
    fingerprint: str
    public_pem: str
    key: object  # a cryptography ECDSA P-256 private key

    def sign(self, payload: bytes) -> bytes:
        """ECDSA with SHA-256, DER-encoded: what cosign writes, base64, in SIGNATURE_ANNOTATION."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        return self.key.sign(payload, ec.ECDSA(hashes.SHA256()))


def private_key(text: str) -> Optional[PrivateKey]:
    """The ECDSA P-256 PEM private key in `text`, if any (ValueError for any other key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    found = PRIVATE_BLOCK.search(text)
    if found is None:
        return None
    key = serialization.load_pem_private_key(found.group(0).encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the registry's cosign key must be an ECDSA P-256 key")
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return PrivateKey(public_keys(public)[0].fingerprint, public, key)
