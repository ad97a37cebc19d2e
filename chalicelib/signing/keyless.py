"""Keyless cosign signatures, verified offline against a trusted root a namespace imports.

A keyless signature (`cosign sign` without a key) is made with a key that lives for one
signing: a certificate authority (Fulcio) certifies it for minutes to an identity an OIDC
provider proved (the certificate's subject alternative name, and the issuer in extension
ISSUER_V2, or ISSUER_V1 in older certificates), and a transparency log (Rekor) promises when it
was recorded (the signed entry timestamp, "SET"). cosign writes both on the `.sig` layer beside
the signature: cosign.CERTIFICATE_ANNOTATION (PEM) and cosign.BUNDLE_ANNOTATION:

    {"SignedEntryTimestamp": "<base64 ECDSA signature>",
     "Payload": {"body": "<base64 log entry>", "integratedTime": <unix seconds>,
                 "logIndex": <n>, "logID": "<hex SHA-256 of the log's DER public key>"}}

Such a signature counts here only if all of this holds (`verify`):
  * the SET verifies with a log key of the trusted root that was valid at `integratedTime` (the
    SET signs the RFC 8785 canonical JSON of Payload);
  * the log entry is a `hashedrekord` 0.0.1 naming this payload's SHA-256, this signature and this
    certificate;
  * the certificate chains, signature by signature, to a certificate authority of the trusted
    root valid at that time (the chain cosign writes beside it is not trusted: only the root's),
    is for code signing (and no authority), and `integratedTime` lies within its validity, as
    does the time of an RFC 3161 timestamp of the signature (cosign.TIMESTAMP_ANNOTATION, by a
    timestamp authority of the root) when the layer has one;
  * when that root lists certificate transparency logs, the certificate embeds a timestamp (SCT)
    one of them signed (signing/transparency.py);
  * the signature over the payload verifies with the certificate's key;
  * and the caller then matches the certificate's issuer and subjects to a keyless identity the
    namespace trusts (`Identity`: an exact OIDC issuer, a subject pattern where `*` is any run).

A trusted root is sigstore's JSON (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`,
as `cosign trusted-root create` writes, or the public instance's trusted_root.json): its `tlogs`
(keys by log id, with validity), `certificateAuthorities` (chains, with validity) and
`timestampAuthorities` (chains, the authority's own certificate first; RFC 3161 timestamps are
checked against them: signing/timestamps.py) and `ctlogs` (certificate transparency logs). A log
is known by the root's `logId.keyId`, else by the SHA-256 of its key.

Everything here reads untrusted bytes, bounded (MAX_*); anything malformed verifies as nothing.
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from chalicelib.access.federation import star_match
from chalicelib.signing.certificates import der_of, is_authority, issued_by, load_certificate, malformed, within
from chalicelib.signing.cosign import verifies_with

TRUSTED_ROOT_TYPE = "application/vnd.dev.sigstore.trustedroot+json"
# What a SigningKey item holds when it is not a key (SigningKey.algorithm).
ROOT = "sigstore-trusted-root"
IDENTITY = "keyless-identity"
ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"  # the issuer's URL, raw bytes (deprecated by Fulcio)
ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"  # the issuer's URL, a DER UTF8String
CODE_SIGNING = "1.3.6.1.5.5.7.3.3"
MAX_ROOT_BYTES = 256 * 1024
MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_BUNDLE_BYTES = 64 * 1024
CACHE_ENTRIES = 1024
_roots: Dict[str, "TrustedRoot"] = {}
_proofs: Dict[Tuple[str, ...], Optional["Proof"]] = {}


class TrustRefused(ValueError):
    """Not a trusted root or identity dockless can use, said why."""


class Window(NamedTuple):
    """When a key or authority may be used: unix seconds, `end` None for open."""
    start: float
    end: Optional[float]

    def covers(self, moment: float) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)


class LogKey(NamedTuple):
    key_id: bytes  # the log's id: what entries and checkpoint signatures name it by
    key: object  # a cryptography public key
    window: Window


class Authority(NamedTuple):
    chain: tuple  # cryptography x509.Certificate, the issuing certificate first, the root last
    window: Window


class TrustedRoot(NamedTuple):
    fingerprint: str
    logs: Tuple[LogKey, ...]
    authorities: Tuple[Authority, ...]
    timestamp_authorities: Tuple[Authority, ...] = ()
    ct_logs: Tuple[LogKey, ...] = ()


class Identity(NamedTuple):
    """A keyless signer a namespace trusts: certificates from `issuer` for a subject `pattern`."""
    fingerprint: str
    issuer: str
    subject: str

    def matches(self, proof: "Proof") -> bool:
        return proof.issuer == self.issuer and any(star_match(self.subject, subject) for subject in proof.subjects)

    def document(self) -> str:
        return json.dumps({"issuer": self.issuer, "subject": self.subject}, sort_keys=True)


class Proof(NamedTuple):
    """What a keyless signature that verifies proves: who (the certificate's issuer and subject
    alternative names) and when (the log's integratedTime)."""
    issuer: str
    subjects: Tuple[str, ...]
    signed_at: int


def _time(text) -> float:
    if not isinstance(text, str):
        raise TrustRefused(f"a validFor time must be an RFC 3339 string, not {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TrustRefused(f"{text[:60]!r} is not an RFC 3339 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _window(document) -> Window:
    valid = document.get("validFor") if isinstance(document, dict) else None
    if not isinstance(valid, dict) or "start" not in valid:
        raise TrustRefused("every key and authority needs validFor.start")
    return Window(_time(valid["start"]), _time(valid["end"]) if valid.get("end") is not None else None)


def _raw(document, what: str) -> bytes:
    try:
        return base64.b64decode(document["rawBytes"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise TrustRefused(f"{what}: rawBytes must be base64") from None


def is_trusted_root(text: str) -> bool:
    return TRUSTED_ROOT_TYPE in text[:4096] and text.lstrip().startswith("{")


def parse_root(text: str) -> TrustedRoot:
    """A trusted root (sigstore's trusted-root JSON), checked: each log key a public key (its id
    the root's logId, or else its DER's SHA-256), each authority a chain of certificates."""
    if len(text.encode()) > MAX_ROOT_BYTES:
        raise TrustRefused(f"a trusted root is at most {MAX_ROOT_BYTES} bytes")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise TrustRefused(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not str(document.get("mediaType", "")).startswith(TRUSTED_ROOT_TYPE):
        raise TrustRefused(f"mediaType must be {TRUSTED_ROOT_TYPE};version=0.1")
    logs = _logs(document, "tlogs")
    authorities = _authorities(document, "certificateAuthorities")
    if not logs or not authorities:
        raise TrustRefused("a trusted root needs at least one of tlogs and of certificateAuthorities")
    return TrustedRoot(hashlib.sha256(text.encode()).hexdigest().upper(), logs, authorities,
                       _authorities(document, "timestampAuthorities"), _logs(document, "ctlogs"))


def _logs(document: dict, field: str) -> Tuple[LogKey, ...]:
    """A trusted root's transparency logs or certificate transparency logs: each a public key."""
    from cryptography.hazmat.primitives import serialization
    found = []
    for log in document.get(field) or []:
        if not isinstance(log, dict) or not isinstance(log.get("publicKey"), dict):
            raise TrustRefused(f"each of {field} needs a publicKey")
        der = _raw(log["publicKey"], f"a publicKey of {field}")
        try:
            key = serialization.load_der_public_key(der)
        except ValueError:
            raise TrustRefused(f"a publicKey of {field} is not a DER public key") from None
        named = (log.get("logId") or {}).get("keyId") if isinstance(log.get("logId"), dict) else None
        try:  # Rekor v2 names a log by its checkpoint key's id; v1 and CT logs by the SHA-256 of the key's DER
            log_id = base64.b64decode(named, validate=True) if named is not None else hashlib.sha256(der).digest()
        except (TypeError, binascii.Error):
            raise TrustRefused(f"a logId.keyId of {field} must be base64") from None
        found.append(LogKey(log_id, key, _window(log["publicKey"])))
    return tuple(found)


def _authorities(document: dict, field: str) -> Tuple[Authority, ...]:
    """A trusted root's certificate or timestamp authorities: each a chain of DER certificates."""
    found = []
    for authority in document.get(field) or []:
        chain = (authority.get("certChain") or {}).get("certificates") if isinstance(authority, dict) else None
        if not isinstance(chain, list) or not chain:
            raise TrustRefused(f"each of {field} needs certChain.certificates")
        raws = [_raw(c, "a certificate") for c in chain]
        try:
            certificates = tuple(load_certificate(raw) for raw in raws)
        except ValueError:
            raise TrustRefused(f"a certificate of {field} is not DER X.509") from None
        found.append(Authority(certificates, _window(authority)))
    return tuple(found)


def root(text: str) -> TrustedRoot:
    """A stored trusted root, parsed once per process."""
    fingerprint = hashlib.sha256(text.encode()).hexdigest().upper()
    if fingerprint not in _roots:
        if len(_roots) >= CACHE_ENTRIES:
            _roots.clear()
        _roots[fingerprint] = parse_root(text)
    return _roots[fingerprint]


def parse_identity(text: str) -> Identity:
    """`{"issuer": URL, "subject": PATTERN}`: the issuer exactly as certificates name it."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise TrustRefused(f"not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"issuer", "subject"}:
        raise TrustRefused('a keyless identity is {"issuer": URL, "subject": PATTERN}')
    issuer, subject = document["issuer"], document["subject"]
    if not isinstance(issuer, str) or not re.fullmatch(r"https?://[^\s]{1,500}", issuer):
        raise TrustRefused("issuer must be the OIDC issuer's URL")
    if not isinstance(subject, str) or not 0 < len(subject) <= 500 or subject.strip("*") == "":
        raise TrustRefused("subject must be an email, URI or pattern of at most 500 characters, not only *")
    fingerprint = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest().upper()
    return Identity(fingerprint, issuer, subject)


def _issuer(certificate) -> Optional[str]:
    from cryptography import x509
    for oid, der in ((ISSUER_V2, True), (ISSUER_V1, False)):
        try:
            value = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
        except x509.ExtensionNotFound:
            continue
        if der:  # UTF8String: tag 12, a length (short or long form), the bytes
            if len(value) < 2 or value[0] != 12:
                return None
            length, start = value[1], 2
            if length & 0x80:
                count = length & 0x7F
                length, start = int.from_bytes(value[2:2 + count], "big"), 2 + count
            value = value[start:start + length]
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return None


def _subjects(certificate) -> Tuple[str, ...]:
    from cryptography import x509
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(names.get_values_for_type(x509.RFC822Name)) + \
        tuple(names.get_values_for_type(x509.UniformResourceIdentifier))


def for_code_signing(certificate) -> bool:
    from cryptography import x509
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return any(usage.dotted_string == CODE_SIGNING for usage in usages)


def _chains(leaf, authority: Authority, moment: float) -> bool:
    """Whether `leaf` was issued by the authority's first certificate, each by the next, every one
    an authority valid at `moment`."""
    return all(is_authority(issuer) and within(issuer, moment) and issued_by(issued, issuer)
               for issued, issuer in zip((leaf, *authority.chain), authority.chain))


def canonical(document) -> bytes:
    """RFC 8785 canonical JSON of what a SET signs (strings, integers): sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def names_hashedrekord(body: dict, digest_hex: str, signature: bytes, leaf_der: bytes) -> bool:
    """Whether a `hashedrekord` 0.0.1 log entry is of this hash (hex SHA-256), signature and certificate."""
    try:
        if body["kind"] != "hashedrekord" or body["apiVersion"] != "0.0.1":
            return False
        spec = body["spec"]
        named_signature = base64.b64decode(spec["signature"]["content"], validate=True)
        named_certificate = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
        named_leaf = der_of(load_certificate(named_certificate, pem=True))
        return spec["data"]["hash"] == {"algorithm": "sha256", "value": digest_hex} \
            and named_signature == signature and named_leaf == leaf_der
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False


def logged_at(entry: dict, promise: bytes, roots: Iterable[TrustedRoot]) -> Optional[Tuple[int, dict]]:
    """(integratedTime, the decoded entry body) of a log entry `{"body": <base64>, "integratedTime",
    "logIndex", "logID": <hex>}` whose signed entry timestamp `promise` verifies with a log key of
    `roots` valid at that time; None otherwise."""
    try:
        signed = {"body": entry["body"], "integratedTime": entry["integratedTime"],
                  "logIndex": entry["logIndex"], "logID": entry["logID"]}
        log_id = bytes.fromhex(signed["logID"])
        body = json.loads(base64.b64decode(signed["body"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    moment = signed["integratedTime"]
    if not all(isinstance(signed[name], int) and not isinstance(signed[name], bool)
               for name in ("integratedTime", "logIndex")) or not isinstance(body, dict):
        return None
    if not any(log.key_id == log_id and log.window.covers(moment)
               and verifies_with(log.key, promise, canonical(signed)) for r in roots for log in r.logs):
        return None
    return moment, body


def _vouches(root: TrustedRoot, leaf, moment: float) -> bool:
    """Whether an authority of `root` valid at `moment` issued `leaf` then and, when the root keeps
    certificate transparency logs, one of them logged it (an embedded SCT)."""
    from chalicelib.signing import transparency  # a verification's, not the cold start's
    issuers = [authority.chain[0] for authority in root.authorities
               if authority.window.covers(moment) and _chains(leaf, authority, moment)]
    return bool(issuers) and (not root.ct_logs or any(
        transparency.certificate_logged(leaf, issuer, root.ct_logs) for issuer in issuers))


def certified(leaf, moment: int, roots: Iterable[TrustedRoot]) -> Optional[Proof]:
    """Who `leaf` (a cryptography certificate) names, if it is for code signing (and no authority),
    was valid at `moment`, chains to an authority of one of `roots` valid then and, when that root
    names certificate transparency logs, carries a timestamp (SCT) one of them signed; None
    otherwise."""
    if not for_code_signing(leaf) or is_authority(leaf) or not within(leaf, moment):
        return None
    if not any(_vouches(r, leaf, moment) for r in roots):
        return None
    issuer = _issuer(leaf)
    return Proof(issuer, _subjects(leaf), moment) if issuer else None


def certified_throughout(leaf, moments: Iterable[float], roots: Iterable[TrustedRoot]) -> Optional[Proof]:
    """`certified` at every one of the verified `moments` (a log's integrated time, timestamps'
    genTimes): the proof at the first, or None if there is none or any fails."""
    roots = list(roots)
    proofs = [certified(leaf, int(moment), roots) for moment in moments]
    return proofs[0] if proofs and all(proofs) else None


def stamped_times(responses: Iterable[bytes], signature: bytes, roots: Iterable[TrustedRoot]) -> List[float]:
    """The times RFC 3161 `responses` verify for `signature` under the roots' timestamp authorities."""
    from chalicelib.signing import timestamps  # a verification's, not the cold start's
    authorities = [authority for r in roots for authority in r.timestamp_authorities]
    return [moment for moment in (timestamps.verified_time(response, signature, authorities)
                                  for response in responses) if moment is not None]


def _timestamp(text: Optional[str]) -> tuple:
    """The DER response of a `.sig` layer's timestamp annotation, or none."""
    try:
        return (base64.b64decode(json.loads(text)["SignedRFC3161Timestamp"], validate=True),) if text else ()
    except (ValueError, KeyError, TypeError, binascii.Error):
        return ()


def _proof(entry, roots: List[TrustedRoot]) -> Optional[Proof]:
    certificate_pem, bundle_text, signature, payload = entry.certificate, entry.bundle or "", entry.signature, \
        entry.payload
    if len(certificate_pem) > MAX_CERTIFICATE_BYTES or len(bundle_text) > MAX_BUNDLE_BYTES \
            or len(entry.timestamp or "") > MAX_BUNDLE_BYTES:
        return None
    try:
        leaf = load_certificate(certificate_pem.encode(), pem=True)
        bundle = json.loads(bundle_text)
        promise = base64.b64decode(bundle["SignedEntryTimestamp"], validate=True)
        logged = logged_at(bundle["Payload"], promise, roots)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if logged is None or not names_hashedrekord(logged[1], hashlib.sha256(payload).hexdigest(), signature,
                                                 der_of(leaf)):
        return None
    if not verifies_with(leaf.public_key(), signature, payload):
        return None
    return certified_throughout(leaf, [logged[0], *stamped_times(_timestamp(entry.timestamp), signature, roots)],
                                roots)


def cached(key: Tuple[str, ...], prove) -> Optional[Proof]:
    """`prove()`, remembered under `key` (the bytes involved and the roots' fingerprints). A proof
    that meets malformed bytes proves nothing: cryptography parses a certificate's parts only
    when they are read, so an untrusted certificate that loaded may still raise ValueError."""
    if key not in _proofs:
        if len(_proofs) >= CACHE_ENTRIES:
            _proofs.clear()
        try:
            _proofs[key] = prove()
        except malformed():
            _proofs[key] = None
    return _proofs[key]


def fingerprints(roots: Iterable[TrustedRoot]) -> str:
    return ",".join(sorted(r.fingerprint for r in roots))


def verify(entry, roots: List[TrustedRoot]) -> Optional[Proof]:
    """What a keyless `.sig` signature (a cosign.Entry with a certificate) proves, if it verifies
    against one of `roots` (see the module's docstring), else None."""
    if not roots or entry.certificate is None:
        return None
    key = ("sig", fingerprints(roots), *(hashlib.sha256((text or "").encode()).hexdigest()
                                         for text in (entry.certificate, entry.bundle, entry.timestamp)),
           base64.b64encode(entry.signature).decode(), hashlib.sha256(entry.payload).hexdigest())
    return cached(key, lambda: _proof(entry, roots))


def signer(proof: Optional[Proof], identities: Iterable[Identity]) -> Optional[Identity]:
    """The trusted identity a verified keyless signature was made by, or None."""
    return next((identity for identity in identities if proof is not None and identity.matches(proof)), None)


def named(certificate_pem: str) -> Optional[str]:
    """Who a certificate says signed, unverified (for showing): `subject, … (issuer)`."""
    try:
        leaf = load_certificate(certificate_pem[:MAX_CERTIFICATE_BYTES].encode(), pem=True)
        return f"{', '.join(_subjects(leaf)) or '?'} ({_issuer(leaf) or '?'})"
    except ValueError:
        return None
