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
key makes it, or, keyless (`keyless_proof`), when all of this holds:
  * a log entry names this signature and certificate (`dsse`, or `hashedrekord` over the message
    or the DSSE pre-authentication encoding; 0.0.1 as Rekor v1 logs them, 0.0.2 as Rekor v2 does)
    and the trusted log it names proves it holds it: by its signed entry timestamp (SET,
    signing/keyless.py), or by an inclusion proof under a checkpoint the log signed
    (signing/transparency.py); an inclusion proof, when there is one, must hold even beside a SET;
  * the signing time is known: the SET's integrated time, or an RFC 3161 timestamp over the
    signature by a timestamp authority of the trusted root (signing/timestamps.py; a log proven
    only by inclusion must have been trusted then);
  * the certificate is for code signing, valid and chained to a trusted authority at every such
    time (signing/keyless.py), for a trusted identity.
An entry proven by inclusion alone, with no timestamp, dates nothing: the bundle counts as no
signature.
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
from typing import Dict, List, NamedTuple, Optional

from chalicelib.signing import certificates, keyless
from chalicelib.signing.cosign import BUNDLE_TYPE, verifies_with

COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENTS = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
MAX_BUNDLE_BYTES = 64 * 1024
MAX_ENTRIES = 4
MAX_CHAIN = 4


class LogEntry(NamedTuple):
    log_id: bytes  # the log that holds it
    body: bytes  # the canonicalized body
    signed: Optional[dict]  # what the SET signs: body (base64), integratedTime, logIndex, logID (hex)
    promise: Optional[bytes]  # the SET, or None
    inclusion: Optional[dict]  # the inclusion proof, or None


class Bundle(NamedTuple):
    """A bundle's signature, what it is over, and how to check who made it."""
    signature: bytes
    signed: bytes  # the DSSE pre-authentication encoding, or the SHA-256 of the signed message
    prehashed: bool
    vouched_digest: Optional[str]  # `sha256:<hex>` this signature is for, or None (an attestation)
    certificate: Optional[bytes]  # DER, for a keyless signature
    entries: tuple  # LogEntry
    timestamps: tuple  # DER RFC 3161 TimeStampResp
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


def _promise(entry: dict) -> tuple:
    """What an entry's SET signs and the SET, or (None, None) without one (or a malformed one)."""
    try:
        return ({"body": entry["canonicalizedBody"], "integratedTime": _number(entry["integratedTime"]),
                 "logIndex": _number(entry["logIndex"]),
                 "logID": base64.b64decode(entry["logId"]["keyId"], validate=True).hex()},
                base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"], validate=True))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None, None


def _entries(material: dict) -> tuple:
    found = []
    for entry in (material.get("tlogEntries") or [])[:MAX_ENTRIES]:
        try:
            body = base64.b64decode(entry["canonicalizedBody"], validate=True)
            log_id = base64.b64decode(entry["logId"]["keyId"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue
        signed, promise = _promise(entry)
        inclusion = entry.get("inclusionProof")
        if promise is not None or isinstance(inclusion, dict):
            found.append(LogEntry(log_id, body, signed, promise, inclusion if isinstance(inclusion, dict) else None))
    return tuple(found)


def _certificate(material: dict) -> Optional[bytes]:
    """The signing certificate (DER). A v0.1/0.2 chain may carry intermediates after it, never a
    root: a bundle that brings its own root is refused (ValueError), as protobuf-specs says."""
    raw = (material.get("certificate") or {}).get("rawBytes")
    if raw is None:
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
        raw = chain[0].get("rawBytes") if isinstance(chain[0], dict) else None
        for more in chain[1:MAX_CHAIN]:
            certificate = certificates.load_certificate(base64.b64decode(more["rawBytes"], validate=True))
            if certificates.is_authority(certificate) and certificate.issuer == certificate.subject:
                raise ValueError("a bundle's chain holds a root certificate")
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
    from chalicelib.signing import timestamps  # a bundle's reading, not the cold start's
    if len(data) > MAX_BUNDLE_BYTES:
        return None
    try:
        document = json.loads(data)
        if not is_bundle(document["mediaType"]):
            return None
        material = document["verificationMaterial"]
        certificate, entries, stamps = _certificate(material), _entries(material), timestamps.from_bundle(material)
        if "dsseEnvelope" in document:
            envelope = document["dsseEnvelope"]
            payload = base64.b64decode(envelope["payload"], validate=True)
            (only,) = envelope["signatures"]
            signature = base64.b64decode(only["sig"], validate=True)
            vouched = _statement_digest(payload) if envelope["payloadType"] == IN_TOTO else None
            return Bundle(signature, pae(envelope["payloadType"], payload), False, vouched, certificate, entries,
                          stamps, payload, data.decode())
        message = document["messageSignature"]
        if message["messageDigest"]["algorithm"] != "SHA2_256":
            return None
        digest = base64.b64decode(message["messageDigest"]["digest"], validate=True)
        signature = base64.b64decode(message["signature"], validate=True)
        return Bundle(signature, digest, True, "sha256:" + digest.hex() if len(digest) == 32 else None,
                      certificate, entries, stamps, None, data.decode())
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


def _verifier(named: dict) -> bytes:
    """The DER certificate a Rekor v2 (0.0.2) entry's signature names."""
    return base64.b64decode(named["verifier"]["x509Certificate"]["rawBytes"], validate=True)


def _sha256(output: dict) -> bytes:
    """A Rekor v2 HashOutput's digest, which must be SHA-256."""
    if output["algorithm"] != "SHA2_256":
        raise ValueError("not SHA-256")
    return base64.b64decode(output["digest"], validate=True)


def _names(body: dict, bundle: Bundle, leaf_der: bytes) -> bool:
    """Whether the log entry is of this signature by this certificate, over these bytes."""
    try:
        kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
        # A hashedrekord entry names the hash of what was signed: the message, or the DSSE PAE
        # (Rekor v2 logs DSSE envelopes so too).
        hashed = bundle.signed if bundle.prehashed else hashlib.sha256(bundle.signed).digest()
        if (kind, version) == ("hashedrekord", "0.0.1"):
            return keyless.names_hashedrekord(body, hashed.hex(), bundle.signature, leaf_der)
        if (kind, version) == ("hashedrekord", "0.0.2"):
            logged = spec["hashedRekordV002"]
            return _sha256(logged["data"]) == hashed and _verifier(logged["signature"]) == leaf_der \
                and base64.b64decode(logged["signature"]["content"], validate=True) == bundle.signature
        if bundle.dsse_payload is None or kind != "dsse":
            return False
        payload_hash = hashlib.sha256(bundle.dsse_payload)
        if version == "0.0.1":
            if spec["payloadHash"] != {"algorithm": "sha256", "value": payload_hash.hexdigest()}:
                return False
            return any(base64.b64decode(named["signature"], validate=True) == bundle.signature
                       and certificates.der_of(certificates.load_certificate(
                           base64.b64decode(named["verifier"], validate=True), pem=True)) == leaf_der
                       for named in spec["signatures"])
        if version == "0.0.2":
            logged = spec["dsseV002"]
            return _sha256(logged["payloadHash"]) == payload_hash.digest() and any(
                base64.b64decode(named["content"], validate=True) == bundle.signature and _verifier(named) == leaf_der
                for named in logged["signatures"])
        return False
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        return False


def _logged(bundle: Bundle, leaf_der: bytes, roots: List[keyless.TrustedRoot]) -> tuple:
    """What the logs prove of the bundle's entries naming its signature: the integrated times of
    those with a verified SET, and the validity of each trusted log that includes one by proof."""
    from chalicelib.signing import transparency
    times, windows = [], []
    for entry in bundle.entries:
        try:
            body = json.loads(entry.body)
        except ValueError:
            continue
        if not isinstance(body, dict) or not _names(body, bundle, leaf_der):
            continue
        holders = [log for r in roots for log in r.logs
                   if entry.inclusion is not None and log.key_id == entry.log_id
                   and transparency.included(entry.body, entry.inclusion, log)]
        if entry.inclusion is not None and not holders:
            continue  # a proof that does not hold disproves the entry, whatever its SET says
        logged = keyless.logged_at(entry.signed, entry.promise, roots) if entry.promise is not None else None
        if logged is not None:
            times.append(logged[0])
        windows += [log.window for log in holders]
    return times, windows


def _keyless_proof(bundle: Bundle, roots: List[keyless.TrustedRoot]) -> Optional[keyless.Proof]:
    try:
        leaf = certificates.load_certificate(bundle.certificate)
    except ValueError:
        return None
    if not verifies_with(leaf.public_key(), bundle.signature, bundle.signed, bundle.prehashed):
        return None
    times, windows = _logged(bundle, certificates.der_of(leaf), roots)
    if not times and not windows:
        return None  # no trusted log holds it
    stamped = keyless.stamped_times(bundle.timestamps, bundle.signature, roots)
    return keyless.certified_throughout(
        leaf, times + [moment for moment in stamped if times or any(w.covers(moment) for w in windows)], roots)


def keyless_proof(bundle: Bundle, roots: List[keyless.TrustedRoot]) -> Optional[keyless.Proof]:
    """Who made a keyless bundle's signature and when, if it verifies against `roots`."""
    if bundle.certificate is None or not roots:
        return None
    key = ("bundle", keyless.fingerprints(roots), hashlib.sha256(bundle.text.encode()).hexdigest())
    return keyless.cached(key, lambda: _keyless_proof(bundle, roots))


def certificate_pem(bundle: Bundle) -> Optional[str]:
    """The bundle's certificate as PEM (for showing who it names), or None."""
    from cryptography.hazmat.primitives import serialization
    try:
        return certificates.load_certificate(bundle.certificate).public_bytes(
            serialization.Encoding.PEM).decode() if bundle.certificate else None
    except ValueError:
        return None
