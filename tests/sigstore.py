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

    # --- sigstore bundles (protobuf-specs' Bundle), as `cosign sign --new-bundle-format` makes them

    def _entry(self, body: dict, integrated: int, log_key=None, index: int = 9) -> dict:
        """A bundle's tlogEntries item: the entry, and the log's SET over it."""
        canonicalized = base64.b64encode(json.dumps(body).encode()).decode()
        signed = {"body": canonicalized, "integratedTime": integrated, "logIndex": index, "logID": self.log_id.hex()}
        promise = (log_key or self.log_key).sign(keyless.canonical(signed), ec.ECDSA(hashes.SHA256()))
        return {"logIndex": str(index), "logId": {"keyId": base64.b64encode(self.log_id).decode()},
                "kindVersion": {"kind": body["kind"], "version": "0.0.1"}, "integratedTime": str(integrated),
                "inclusionPromise": {"signedEntryTimestamp": base64.b64encode(promise).decode()},
                "canonicalizedBody": canonicalized}

    def bundle(self, digest: str, subject: str, issuer: str = ISSUER, at: datetime = NOW, version: str = "v0.3",
               predicate: str = "https://sigstore.dev/cosign/sign/v1", integrated=None, log_key=None,
               logged_payload=None, signed_payload=None) -> bytes:
        """A keyless bundle with a DSSE envelope: an in-toto statement naming `digest`. The last
        arguments break one part each: the log names `logged_payload`, the key signs `signed_payload`."""
        key = ec.generate_private_key(ec.SECP256R1())
        payload = statement(digest, predicate)
        signature = key.sign(dsse_pae(signed_payload or payload), ec.ECDSA(hashes.SHA256()))
        certificate = self.certificate(key, subject, issuer, at)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        body = {"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(b"envelope").hexdigest()},
            "payloadHash": {"algorithm": "sha256",
                            "value": hashlib.sha256(logged_payload or payload).hexdigest()},
            "signatures": [{"signature": base64.b64encode(signature).decode(),
                            "verifier": base64.b64encode(pem).decode()}]}}
        der = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        material = {"certificate": {"rawBytes": der}} if version == "v0.3" else \
            {"x509CertificateChain": {"certificates": [{"rawBytes": der}]}}
        material["tlogEntries"] = [self._entry(body, int(at.timestamp()) + 30 if integrated is None else integrated,
                                               log_key)]
        media_type = "application/vnd.dev.sigstore.bundle.v0.3+json" if version == "v0.3" else \
            f"application/vnd.dev.sigstore.bundle+json;version={version[1:]}"
        return json.dumps({"mediaType": media_type, "verificationMaterial": material, "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(), "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]}}).encode()

    def message_bundle(self, manifest: bytes, subject: str, issuer: str = ISSUER, at: datetime = NOW) -> bytes:
        """A keyless bundle with a message signature over the manifest's bytes (a hashedrekord entry)."""
        key = ec.generate_private_key(ec.SECP256R1())
        signature = key.sign(manifest, ec.ECDSA(hashes.SHA256()))
        certificate = self.certificate(key, subject, issuer, at)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        body = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(manifest).hexdigest()}},
            "signature": {"content": base64.b64encode(signature).decode(),
                          "publicKey": {"content": base64.b64encode(pem).decode()}}}}
        return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()},
            "tlogEntries": [self._entry(body, int(at.timestamp()) + 30)]},
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(
                hashlib.sha256(manifest).digest()).decode()}, "signature": base64.b64encode(signature).decode()}}).encode()


def statement(digest: str, predicate: str = "https://sigstore.dev/cosign/sign/v1") -> bytes:
    """What cosign signs in the new bundle format: an in-toto statement about the image's digest."""
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {
        "sha256": digest.split(":", 1)[1]}}], "predicateType": predicate, "predicate": {}}).encode()


def dsse_pae(payload: bytes, payload_type: str = "application/vnd.in-toto+json") -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def keyed_bundle(private, digest: str) -> bytes:
    """A bundle signed by a cosign key (`cosign sign --key --new-bundle-format --tlog-upload=false`)."""
    payload = statement(digest)
    signature = private.sign(dsse_pae(payload), ec.ECDSA(hashes.SHA256()))
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                       "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
                       "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                        "payloadType": "application/vnd.in-toto+json",
                                        "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]}}
                      ).encode()
