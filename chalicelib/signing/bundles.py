"""Sigstore bundles attached to an image as OCI referrers (cosign's BUNDLE_SPEC; what `cosign
sign --new-bundle-format` pushes): a manifest whose `subject` is the image, `artifactType` a
bundle media type (`application/vnd.dev.sigstore.bundle.v0.3+json`, or the older
`application/vnd.dev.sigstore.bundle+json;version=0.2`, cosign.BUNDLE_TYPE is their prefix), and
one layer holding the bundle's JSON (protobuf-specs' Bundle):

    {"mediaType": ..., "verificationMaterial": {
         "certificate": {"rawBytes": <DER>}              (v0.3; v0.1/0.2: "x509CertificateChain")
         or "publicKey": {"hint": ...},                 (signed by key)
         "tlogEntries": [{"logIndex": "7", "logId": {"keyId": <base64>}, "integratedTime": "...",
                          "inclusionPromise": {"signedEntryTimestamp": <base64>},
                          "canonicalizedBody": <base64>, ...}]},
     "dsseEnvelope": {"payload": <base64>, "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": <base64>}]}
     or "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": <base64>},
                             "signature": <base64>}}

What a bundle vouches for (`vouched_digest`): a DSSE envelope holding an in-toto statement of
predicate type COSIGN_SIGN (cosign's signature: other predicates are attestations, not
signatures) whose subject names the digest; or a message signature whose message digest is the
image's digest (a signature over the manifest's bytes). The signature is over the DSSE
pre-authentication encoding of the payload, or over the manifest. It counts when a trusted cosign
key makes it, or, keyless, when a log entry whose SET verifies (a `dsse` or `hashedrekord` entry
naming this signature and certificate) dates it and the certificate is trusted then
(signing/keyless.py) for a trusted identity. Bundles logged without a SET (Rekor v2's entries,
proved by an inclusion proof and a signed checkpoint alone) are not verified yet: they count as no
signature.
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
from typing import Dict, List, NamedTuple, Optional

from chalicelib.signing import keyless
from chalicelib.signing.cosign import BUNDLE_TYPE, verifies_with

COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENTS = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
MAX_BUNDLE_BYTES = 64 * 1024


class LogEntry(NamedTuple):
    entry: dict  # what the SET signs: body, integratedTime, logIndex, logID (hex)
    promise: bytes


class Bundle(NamedTuple):
    """A bundle's signature, what it is over, and how to check who made it."""
    signature: bytes
    signed: bytes  # the DSSE pre-authentication encoding, or the SHA-256 of the signed message
    prehashed: bool
    vouched_digest: Optional[str]  # `sha256:<hex>` this signature is for, or None (an attestation)
    certificate: Optional[bytes]  # DER, for a keyless signature
    entries: tuple  # LogEntry
    dsse_payload: Optional[bytes]
    text: str  # the bundle's own bytes, for caching verdicts


def is_bundle(media_type) -> bool:
    return isinstance(media_type, str) and media_type.startswith(BUNDLE_TYPE)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _number(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ValueError(f"not a number: {value!r}")
    return int(value)


def _entries(material: dict) -> tuple:
    found = []
    for entry in material.get("tlogEntries") or []:
        try:
            found.append(LogEntry({"body": entry["canonicalizedBody"],
                                   "integratedTime": _number(entry["integratedTime"]),
                                   "logIndex": _number(entry["logIndex"]),
                                   "logID": base64.b64decode(entry["logId"]["keyId"], validate=True).hex()},
                                  base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"], validate=True)))
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue  # no SET (or malformed): this entry proves nothing here
    return tuple(found)


def _certificate(material: dict) -> Optional[bytes]:
    raw = (material.get("certificate") or {}).get("rawBytes")
    if raw is None:
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
        raw = chain[0].get("rawBytes") if isinstance(chain[0], dict) else None
    return base64.b64decode(raw, validate=True) if raw is not None else None


def _statement_digest(payload: bytes) -> Optional[str]:
    try:
        statement = json.loads(payload)
        if statement["_type"] not in STATEMENTS or statement["predicateType"] != COSIGN_SIGN:
            return None
        digests = [subject["digest"]["sha256"] for subject in statement["subject"]]
    except (ValueError, KeyError, TypeError):
        return None
    return f"sha256:{digests[0]}" if len(digests) == 1 and isinstance(digests[0], str) else None


def parse(data: bytes) -> Optional[Bundle]:
    """A bundle's parts, or None when it is malformed or too big."""
    if len(data) > MAX_BUNDLE_BYTES:
        return None
    try:
        document = json.loads(data)
        if not is_bundle(document["mediaType"]):
            return None
        material = document["verificationMaterial"]
        certificate, entries = _certificate(material), _entries(material)
        if "dsseEnvelope" in document:
            envelope = document["dsseEnvelope"]
            payload = base64.b64decode(envelope["payload"], validate=True)
            (only,) = envelope["signatures"]
            signature = base64.b64decode(only["sig"], validate=True)
            vouched = _statement_digest(payload) if envelope["payloadType"] == IN_TOTO else None
            return Bundle(signature, pae(envelope["payloadType"], payload), False, vouched, certificate, entries,
                          payload, data.decode())
        message = document["messageSignature"]
        if message["messageDigest"]["algorithm"] != "SHA2_256":
            return None
        digest = base64.b64decode(message["messageDigest"]["digest"], validate=True)
        signature = base64.b64decode(message["signature"], validate=True)
        return Bundle(signature, digest, True, "sha256:" + digest.hex() if len(digest) == 32 else None,
                      certificate, entries, None, data.decode())
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None


def signer(bundle: Bundle, cosign_keys: Dict[str, str], roots: List[keyless.TrustedRoot],
           identities: List[keyless.Identity]) -> Optional[str]:
    """The fingerprint of the trusted cosign key (fingerprint -> PEM), or keyless identity, that
    made the bundle's signature; None if nothing trusted did."""
    if bundle.certificate is None:
        from cryptography.hazmat.primitives import serialization
        return next((fingerprint for fingerprint, pem in cosign_keys.items() if verifies_with(
            serialization.load_pem_public_key(pem.encode()), bundle.signature, bundle.signed, bundle.prehashed)),
            None)
    identity = keyless.signer(keyless_proof(bundle, roots) if identities else None, identities)
    return identity.fingerprint if identity is not None else None


def _names(body: dict, bundle: Bundle, leaf_der: bytes) -> bool:
    """Whether the log entry is of this signature by this certificate, over these bytes."""
    from cryptography import x509
    if bundle.dsse_payload is None:
        return keyless.names_hashedrekord(body, bundle.signed.hex(), bundle.signature, leaf_der)
    try:
        if body["kind"] != "dsse" or body["apiVersion"] != "0.0.1":
            return False
        spec = body["spec"]
        if spec["payloadHash"] != {"algorithm": "sha256", "value": hashlib.sha256(bundle.dsse_payload).hexdigest()}:
            return False
        return any(base64.b64decode(named["signature"], validate=True) == bundle.signature
                   and x509.load_pem_x509_certificate(base64.b64decode(named["verifier"], validate=True))
                   .public_bytes(keyless.der_encoding()) == leaf_der for named in spec["signatures"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False


def _keyless_proof(bundle: Bundle, roots: List[keyless.TrustedRoot]) -> Optional[keyless.Proof]:
    from cryptography import x509
    try:
        leaf = x509.load_der_x509_certificate(bundle.certificate)
    except ValueError:
        return None
    if not verifies_with(leaf.public_key(), bundle.signature, bundle.signed, bundle.prehashed):
        return None
    der = leaf.public_bytes(keyless.der_encoding())
    for logged in (keyless.logged_at(e.entry, e.promise, roots) for e in bundle.entries):
        if logged is not None and _names(logged[1], bundle, der):
            proof = keyless.certified(leaf, logged[0], roots)
            if proof is not None:
                return proof
    return None


def keyless_proof(bundle: Bundle, roots: List[keyless.TrustedRoot]) -> Optional[keyless.Proof]:
    """Who made a keyless bundle's signature and when, if it verifies against `roots`."""
    if bundle.certificate is None or not roots:
        return None
    key = ("bundle", keyless.fingerprints(roots), hashlib.sha256(bundle.text.encode()).hexdigest())
    return keyless.cached(key, lambda: _keyless_proof(bundle, roots))


def certificate_pem(bundle: Bundle) -> Optional[str]:
    """The bundle's certificate as PEM (for showing who it names), or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        return x509.load_der_x509_certificate(bundle.certificate).public_bytes(
            serialization.Encoding.PEM).decode() if bundle.certificate else None
    except ValueError:
        return None
