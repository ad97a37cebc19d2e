"""A sigstore of our own, made with `cryptography` from the specifications: a certificate
authority (a root and an intermediate, as Fulcio's), a transparency log's key (as Rekor's), the
trusted root JSON naming both (protobuf-specs' TrustedRoot), and keyless signing as cosign does it
(an ephemeral P-256 key, a ten-minute certificate for an OIDC identity, a hashedrekord log entry
and its signed entry timestamp, all on the `.sig` layer's annotations; cosign's SIGNATURE_SPEC)."""
import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.signing import cosign, keyless

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ISSUER = "https://token.actions.example.test"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _authority(subject, key, issuer_name, issuer_key, path_length):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer_key, hashes.SHA384()))


def _utf8(text: str) -> bytes:
    data = text.encode()
    return bytes([12, len(data)]) + data if len(data) < 128 else bytes([12, 0x81, len(data)]) + data


class Sigstore:
    """One instance: `trusted_root()` to import, `sign(...)` to make keyless signatures."""

    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _authority(_name("sigstore"), self.root_key, _name("sigstore"), self.root_key, 1)
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate = _authority(_name("sigstore-intermediate"), self.intermediate_key, self.root.subject,
                                       self.root_key, 0)
        self.log_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(self.log_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()

    def trusted_root(self) -> str:
        def raw(certificate):
            return {"rawBytes": base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()}
        der = self.log_key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        return json.dumps({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "https://rekor.sigstore.test", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": base64.b64encode(der).decode(), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                     "validFor": {"start": "2025-01-01T00:00:00Z"}},
                       "logId": {"keyId": base64.b64encode(self.log_id).decode()}}],
            "certificateAuthorities": [{"subject": {"organization": "sigstore.test", "commonName": "sigstore"},
                                        "uri": "https://fulcio.sigstore.test",
                                        "certChain": {"certificates": [raw(self.intermediate), raw(self.root)]},
                                        "validFor": {"start": "2025-01-01T00:00:00Z"}}],
            "ctlogs": [], "timestampAuthorities": []}, indent=2)

    def certificate(self, key, subject: str, issuer: str = ISSUER, at: datetime = NOW, minutes: int = 10,
                    usage=ExtendedKeyUsageOID.CODE_SIGNING, authority=None) -> x509.Certificate:
        """What Fulcio issues: the subject as an email or URI, the issuer in its extension."""
        name = x509.UniformResourceIdentifier(subject) if "://" in subject else x509.RFC822Name(subject)
        issued_by, signing_key = authority or (self.intermediate, self.intermediate_key)
        return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issued_by.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(at).not_valid_after(at + timedelta(minutes=minutes))
                .add_extension(x509.SubjectAlternativeName([name]), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(keyless.ISSUER_V2), _utf8(issuer)),
                               critical=False)
                .sign(signing_key, hashes.SHA384()))

    def log_entry(self, payload: bytes, signature: bytes, certificate_pem: bytes, integrated: int,
                  log_key=None, index: int = 7) -> str:
        """The bundle cosign writes: the hashedrekord entry and the log's signed entry timestamp."""
        body = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {"content": base64.b64encode(signature).decode(),
                          "publicKey": {"content": base64.b64encode(certificate_pem).decode()}}}}
        signed = {"body": base64.b64encode(json.dumps(body).encode()).decode(), "integratedTime": integrated,
                  "logIndex": index, "logID": self.log_id.hex()}
        promise = (log_key or self.log_key).sign(keyless.canonical(signed), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"SignedEntryTimestamp": base64.b64encode(promise).decode(), "Payload": signed})

    def sign(self, payload: bytes, subject: str, issuer: str = ISSUER, at: datetime = NOW, minutes: int = 10,
             usage=ExtendedKeyUsageOID.CODE_SIGNING, authority=None, integrated=None, log_key=None,
             entry_payload=None, signature=None) -> dict:
        """The annotations of a keyless `.sig` layer for `payload`, signed at `at` (recorded in the
        log 30 s later unless `integrated` says). The other arguments break one part each."""
        key = ec.generate_private_key(ec.SECP256R1())
        made = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        pem = self.certificate(key, subject, issuer, at, minutes, usage, authority).public_bytes(
            serialization.Encoding.PEM)
        signature = made if signature is None else signature
        bundle = self.log_entry(payload if entry_payload is None else entry_payload, signature, pem,
                                int(at.timestamp()) + 30 if integrated is None else integrated, log_key)
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.intermediate, self.root))
        return {cosign.SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
                cosign.CERTIFICATE_ANNOTATION: pem.decode(), "dev.sigstore.cosign/chain": chain.decode(),
                cosign.BUNDLE_ANNOTATION: bundle}
