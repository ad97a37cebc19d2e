"""Notation (Notary Project) signatures, JWS or COSE envelopes, verified against a namespace's trust store.

`notation sign` attaches a referrer to the image: artifactType ARTIFACT_TYPE, one layer of media
type JWS (`application/jose+json`) holding the envelope in flattened JWS JSON serialization
(notaryproject/specifications, signature-envelope-jws.md), or COSE (`application/cose`): a
COSE_Sign1_Tagged with the same headers (alg, crit and content type by their COSE labels, times
as epoch dates) and the chain in `x5chain` (label 33), signed over its Sig_structure
(signature-envelope-cose.md, `--signature-format cose`). The JWS form:

    {"payload": b64url({"targetArtifact": {"mediaType", "digest", "size"}}),
     "protected": b64url({"alg": "ES256" | "ES384" | "ES512" | "PS256" | "PS384" | "PS512",
                          "cty": PAYLOAD_TYPE, "io.cncf.notary.signingScheme": "notary.x509",
                          "io.cncf.notary.signingTime": RFC 3339, "io.cncf.notary.expiry"?: RFC 3339,
                          (or "...signingScheme": "notary.x509.signingAuthority",
                           "io.cncf.notary.authenticSigningTime": RFC 3339),
                          "crit": ["io.cncf.notary.signingScheme", ...]}),
     "header": {"x5c": [b64(DER leaf), b64(DER intermediate)..., b64(DER root)]},
     "signature": b64url(sign(ASCII(protected "." payload)))}

A namespace's trust store is the X.509 root certificates it adds (`dockless key add NS root.crt`,
SigningKey algorithm ROOT, named by the SHA-256 of the DER: notation's thumbprint); its trust
policy is notation's `strict` level for the namespace's repositories, its `trustedIdentities` the
namespace's IDENTITY items (`dockless key add NS --x509-subject 'C=US, ST=WA, O=acme'`; none
is `*`): a signature counts (`verify`) when the envelope is well formed (only the headers
above, every `crit` one understood), `alg` matches the signing key (ES256 with P-256, PS256 with
RSA 2048, ...), the signature verifies, the `x5c` chain links certificate by certificate to a
trusted root (the last certificate must be one), every certificate is valid now (notary.x509
signs with no trusted time: the certificate's validity is checked at verification), the leaf is
for code signing, the signature has not expired, and the payload's target is this digest.

A namespace's TSA trust store (`dockless key add NS tsa-root.crt --trust-store tsa`, SigningKey
algorithm TSA_ROOT) turns on notation's timestamp verification (its trust policy's default,
`verifyTimestamp: always`): a signature then counts only with an RFC 3161 timestamp in its
unsigned header `io.cncf.notary.timestampSignature` (a TimeStampToken) over its signature bytes,
signed by a time stamping certificate the token carries and names, chained to a TSA root
(signing/timestamps.py `trusted_range`), and the certificate chain valid over the whole of the
timestamp's range (genTime +- accuracy) instead of now: a signature stamped while its certificate
was valid still counts after the certificate expires.

The `notary.x509.signingAuthority` scheme (a signing service signs on the requester's behalf, its
critical `io.cncf.notary.authenticSigningTime` signed with the rest) counts against the
signingAuthority trust store only (`--trust-store signingAuthority`, AUTHORITY_ROOT), the chain
valid at that authentic time. Not verified yet: revocation (OCSP/CRL).
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
import re
from datetime import datetime
from typing import List, NamedTuple, Optional

from chalicelib.signing import cbor, certificates, keyless

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
ROOT = "x509-root"  # SigningKey.algorithm of a trust store's root certificate
SCHEME = "notary.x509"
SIGNING_SCHEME, SIGNING_TIME, EXPIRY = ("io.cncf.notary.signingScheme", "io.cncf.notary.signingTime",
                                        "io.cncf.notary.expiry")
TIMESTAMP, AUTHENTIC_TIME = "io.cncf.notary.timestampSignature", "io.cncf.notary.authenticSigningTime"
SIGNING_AUTHORITY = "notary.x509.signingAuthority"  # the other signing scheme
TSA_ROOT = "x509-tsa-root"  # SigningKey.algorithm of a TSA trust store's root certificate
AUTHORITY_ROOT = "x509-signing-authority-root"  # ... of a signing authority trust store's
STORE_MARK = "notation.truststore:"  # `notation.truststore: tsa` before PEM roots: the store they join
STORES = {"ca": ROOT, "tsa": TSA_ROOT, "signingAuthority": AUTHORITY_ROOT}  # notation's trust store types
UNDERSTOOD = frozenset({"alg", "cty", "crit", SIGNING_SCHEME, SIGNING_TIME, EXPIRY, AUTHENTIC_TIME})
CRITICAL = frozenset({SIGNING_SCHEME, EXPIRY, AUTHENTIC_TIME})
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_CHAIN = 8
CERTIFICATE_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.S)
_ALGORITHMS = {"ES256": ("ec", 256), "ES384": ("ec", 384), "ES512": ("ec", 521),
               "PS256": ("rsa", 2048), "PS384": ("rsa", 3072), "PS512": ("rsa", 4096)}


class Refused(ValueError):
    """Not a root certificate a trust store can hold, said why."""


class Root(NamedTuple):
    fingerprint: str
    pem: str
    subject: str


def holds_certificates(text: str) -> bool:
    return "-----BEGIN CERTIFICATE-----" in text


def roots(text: str) -> List[Root]:
    """Every PEM certificate in `text`, each a certificate authority (a trust store's roots)."""
    from cryptography.hazmat.primitives import serialization
    found = []
    for block in CERTIFICATE_BLOCK.findall(text):
        try:
            certificate = certificates.load_certificate(block.encode(), pem=True)
            authority, subject = certificates.is_authority(certificate), certificate.subject.rfc4514_string()
        except certificates.malformed() as error:
            raise Refused(f"not a PEM certificate: {error}") from None
        if not authority:
            raise Refused(f"{subject[:200]} is not a certificate authority "
                          "(basicConstraints CA): a trust store holds root certificates")
        der = certificate.public_bytes(serialization.Encoding.DER)
        found.append(Root(hashlib.sha256(der).hexdigest().upper(),
                          certificate.public_bytes(serialization.Encoding.PEM).decode(), subject))
    if not found:
        raise Refused("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    return found


IDENTITY = "x509-identity"  # SigningKey.algorithm of a trust policy's trusted identity
SUBJECT_PREFIX = "x509.subject:"
REQUIRED_ATTRIBUTES = ({"C"}, {"ST", "S"}, {"O"})


class Identity(NamedTuple):
    """A trust policy's trusted identity: `x509.subject: C=US, ST=WA, O=acme` (a partial subject DN:
    every attribute named must be the signing certificate's)."""
    fingerprint: str
    text: str
    attributes: frozenset  # (type, value), S spelt ST


def _split_unescaped(text: str, separator: str) -> List[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current, escaped = current + "\\" + char, False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        raise Refused("a trusted identity may not end in a lone backslash")
    return parts + [current]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_identity(text: str) -> Identity:
    """A trusted identity as notation's trust policy writes it (trust-store-trust-policy.md)."""
    text = text.strip()
    if not text.startswith(SUBJECT_PREFIX) or len(text) > 1000:
        raise Refused(f"a trusted identity is {SUBJECT_PREFIX} followed by RDNs: x509.subject: C=US, ST=WA, O=acme")
    attributes = set()
    for rdn in _split_unescaped(text[len(SUBJECT_PREFIX):], ","):
        kind, equals, value = rdn.strip().partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z][A-Za-z0-9.-]*", kind.strip()) or not value.strip():
            raise Refused(f"{rdn.strip()[:100]!r} is not an RDN (TYPE=value)")
        kind = "ST" if kind.strip().upper() == "S" else kind.strip().upper()
        attributes.add((kind, _unescape(value.strip())))
    kinds = {kind for kind, _ in attributes}
    if not all(kinds & required for required in REQUIRED_ATTRIBUTES):
        raise Refused("a trusted identity names at least the country (C), state (ST) and organization (O)")
    return Identity(hashlib.sha256(text.encode()).hexdigest().upper(), text, frozenset(attributes))


def _subject_attributes(certificate) -> frozenset:
    return frozenset((attribute.rfc4514_attribute_name.upper(), attribute.value)
                     for attribute in certificate.subject if isinstance(attribute.value, str))


def _b64url(text) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _time(text) -> float:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 time needs its offset")
    return moment.timestamp()


class Envelope(NamedTuple):
    """A notation envelope's parts (JWS or COSE), parsed but not yet verified."""
    target: Optional[str]  # the digest its payload names
    signing_input: bytes
    signature: bytes
    algorithm: str
    chain: tuple  # DER certificates, the leaf first
    expiry: Optional[float]
    text: str
    timestamp: Optional[bytes] = None  # an RFC 3161 TimeStampToken over the signature (unsigned header)
    authentic_time: Optional[float] = None  # notary.x509.signingAuthority's signing time, signed


def _headers_hold(protected, content_type, algorithm, time_of) -> bool:
    """Whether protected headers (JWS names, or COSE labels for content type, alg and crit) are
    what a signing scheme asks: only those the specification defines, every critical one listed
    in crit, the payload type, and the scheme's time: notary.x509's signing time (untrusted), or
    a signing authority's authentic signing time (critical). Raises on a malformed time."""
    if not isinstance(protected, dict):
        return False
    crit = protected.get(COSE_CRIT if content_type == COSE_CONTENT_TYPE else "crit")
    understood = COSE_UNDERSTOOD if content_type == COSE_CONTENT_TYPE else UNDERSTOOD
    if set(protected) - understood or not isinstance(crit, list) \
            or SIGNING_SCHEME not in crit or set(crit) - CRITICAL or protected.get(content_type) != PAYLOAD_TYPE:
        return False
    if any(name in protected and name not in crit for name in (EXPIRY, AUTHENTIC_TIME)) or algorithm not in protected:
        return False
    scheme = protected[SIGNING_SCHEME]
    if scheme == SCHEME and SIGNING_TIME in protected and AUTHENTIC_TIME not in protected:
        time_of(protected[SIGNING_TIME])
        return True
    if scheme == SIGNING_AUTHORITY and AUTHENTIC_TIME in protected:
        time_of(protected[AUTHENTIC_TIME])
        return True
    return False


def parse(data: bytes) -> Optional[Envelope]:
    """A notation JWS envelope, or None when it is malformed, too big, or not what notation signs."""
    if len(data) > MAX_ENVELOPE_BYTES:
        return None
    try:
        document = json.loads(data)
        if set(document) - {"payload", "protected", "header", "signature"}:
            return None
        protected = json.loads(_b64url(document["protected"]))
        if not _headers_hold(protected, "cty", "alg", _time) or protected["alg"] not in _ALGORITHMS:
            return None
        expiry = _time(protected[EXPIRY]) if EXPIRY in protected else None
        authentic = _time(protected[AUTHENTIC_TIME]) if AUTHENTIC_TIME in protected else None
        target = json.loads(_b64url(document["payload"]))["targetArtifact"]
        x5c = document["header"]["x5c"]
        if not isinstance(x5c, list) or not 0 < len(x5c) <= MAX_CHAIN:
            return None
        chain = tuple(base64.b64decode(c, validate=True) for c in x5c)
        stamp = document["header"].get(TIMESTAMP)
        return Envelope(target["digest"] if isinstance(target.get("digest"), str) else None,
                        f"{document['protected']}.{document['payload']}".encode(), _b64url(document["signature"]),
                        protected["alg"], chain, expiry, data.decode(),
                        base64.b64decode(stamp, validate=True) if stamp is not None else None, authentic)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None


# COSE's algorithm identifiers (IANA), and its header labels (RFC 9052).
COSE_ALGORITHMS = {-7: "ES256", -35: "ES384", -36: "ES512", -37: "PS256", -38: "PS384", -39: "PS512"}
COSE_ALG, COSE_CRIT, COSE_CONTENT_TYPE, COSE_X5CHAIN = 1, 2, 3, 33
COSE_SIGN1_TAG = 18
COSE_UNDERSTOOD = frozenset({COSE_ALG, COSE_CRIT, COSE_CONTENT_TYPE, SIGNING_SCHEME, SIGNING_TIME, EXPIRY,
                             AUTHENTIC_TIME})


def _epoch(value) -> float:
    """An RFC 8949 epoch date/time: tag 1 around integer seconds."""
    if not isinstance(value, cbor.Tagged) or value.tag != 1 or isinstance(value.value, bool) \
            or not isinstance(value.value, int):
        raise ValueError("not an epoch time")
    return float(value.value)


def parse_cose(data: bytes) -> Optional[Envelope]:
    """A notation COSE_Sign1_Tagged envelope (signature-envelope-cose.md), or None when it is
    malformed, too big, or not what notation signs: the same checks as `parse`, in COSE's terms."""
    if len(data) > MAX_ENVELOPE_BYTES:
        return None
    try:
        envelope = cbor.decode(data)
        if not isinstance(envelope, cbor.Tagged) or envelope.tag != COSE_SIGN1_TAG:
            return None
        protected_bytes, unprotected, payload, signature = envelope.value
        protected = cbor.decode(protected_bytes)
        if not _headers_hold(protected, COSE_CONTENT_TYPE, COSE_ALG, _epoch) \
                or protected[COSE_ALG] not in COSE_ALGORITHMS:
            return None
        expiry = _epoch(protected[EXPIRY]) if EXPIRY in protected else None
        authentic = _epoch(protected[AUTHENTIC_TIME]) if AUTHENTIC_TIME in protected else None
        chain = unprotected[COSE_X5CHAIN]
        chain = [chain] if isinstance(chain, bytes) else chain  # one certificate may stand alone
        if not isinstance(chain, list) or not 0 < len(chain) <= MAX_CHAIN or \
                not all(isinstance(c, bytes) for c in chain) or not isinstance(payload, bytes) \
                or not isinstance(signature, bytes):
            return None
        target = json.loads(payload)["targetArtifact"]
        stamp = unprotected.get(TIMESTAMP)
        if stamp is not None and not isinstance(stamp, bytes):
            return None
        return Envelope(target["digest"] if isinstance(target.get("digest"), str) else None,
                        cbor.sig_structure(protected_bytes, payload), signature, COSE_ALGORITHMS[protected[COSE_ALG]],
                        tuple(chain), expiry, data.hex(), stamp, authentic)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None


def parse_any(media_type: str, data: bytes) -> Optional[Envelope]:
    """A notation envelope of either format, by its layer's media type."""
    return parse(data) if media_type == JWS else parse_cose(data) if media_type == COSE else None


def _signature_verifies(key, algorithm: str, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    family, size = _ALGORITHMS[algorithm]
    digest = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[algorithm[2:]]()
    try:
        if family == "ec" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size == size:
            half = (size + 7) // 8  # JWS and COSE: the raw r and s, each the curve's size
            if len(signature) != 2 * half:
                return False
            key.verify(encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                            int.from_bytes(signature[half:], "big")), data, ec.ECDSA(digest))
        elif family == "rsa" and isinstance(key, rsa.RSAPublicKey) and key.key_size == size:
            key.verify(signature, data, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
                       digest)
        else:
            return False  # alg does not match the signing key: an algorithm substitution
    except (InvalidSignature, ValueError):
        return False
    return True


class TrustStores(NamedTuple):
    """A namespace's notation trust stores, by notation's types: roots of certificate
    authorities (`ca`), of timestamp authorities (`tsa`) and of signing authorities."""
    ca: tuple = ()
    tsa: tuple = ()
    signing_authority: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.ca or self.signing_authority)

    @classmethod
    def by_kind(cls, roots: dict) -> "TrustStores":
        """The stores from roots by SigningKey algorithm (STORES' values)."""
        return cls(*(tuple(roots.get(kind, ())) for kind in (ROOT, TSA_ROOT, AUTHORITY_ROOT)))


def _signing_moments(envelope: Envelope, now: float, tsa_roots) -> Optional[tuple]:
    """When the chain must have been valid: a signing authority's authentic signing time; for
    notary.x509, the whole of its timestamp's range when TSA roots are trusted (a timestamp is
    then required), else now (no trusted signing time). None when that cannot be known."""
    from cryptography import x509
    from chalicelib.signing import timestamps  # a verification's, not the cold start's
    if envelope.authentic_time is not None:
        return (envelope.authentic_time,)
    if not tsa_roots:
        return (now,)
    if envelope.timestamp is None:
        return None
    return timestamps.trusted_range(envelope.timestamp, envelope.signature,
                                    [x509.load_pem_x509_certificate(root.pem.encode()) for root in tsa_roots])


def verify(envelope: Envelope, stores: TrustStores, digest: str, now: float,
           identities: List[Identity] = ()) -> Optional[str]:
    """`_verify`; a chain whose certificates hold malformed parts (parsed as they are read)
    verifies as nothing."""
    try:
        return _verify(envelope, stores, digest, now, identities)
    except certificates.malformed():
        return None


def _verify(envelope: Envelope, stores: TrustStores, digest: str, now: float,
            identities: List[Identity]) -> Optional[str]:
    """The fingerprint of the trusted root behind a notation signature for `digest`, or None: a
    CA root for notary.x509 (dated by a timestamp when the TSA store has roots), a signing
    authority's root for notary.x509.signingAuthority. With `identities`, the signing
    certificate must also be one of them (else: any, `*`)."""
    trusted = stores.signing_authority if envelope.authentic_time is not None else stores.ca
    if envelope.target != digest or (envelope.expiry is not None and envelope.expiry < now) or not trusted:
        return None
    try:
        chain = [certificates.load_certificate(der) for der in envelope.chain]
    except ValueError:
        return None
    leaf = chain[0]
    moments = _signing_moments(envelope, now, stores.tsa)
    if not keyless.for_code_signing(leaf) or moments is None \
            or not all(certificates.within(certificate, moment) for certificate in chain for moment in moments):
        return None
    if identities and not any(identity.attributes <= _subject_attributes(leaf) for identity in identities):
        return None
    if not _signature_verifies(leaf.public_key(), envelope.algorithm, envelope.signature, envelope.signing_input):
        return None
    if not all(certificates.is_authority(issuer) and certificates.issued_by(issued, issuer)
               for issued, issuer in zip(chain, chain[1:])):
        return None
    last = hashlib.sha256(certificates.der_of(chain[-1])).hexdigest().upper()
    return next((root.fingerprint for root in trusted if root.fingerprint == last), None)


def named(envelope: Envelope) -> Optional[str]:
    """The signing certificate's subject, unverified (for showing)."""
    try:
        return certificates.load_certificate(envelope.chain[0]).subject.rfc4514_string()
    except ValueError:
        return None
