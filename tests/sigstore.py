"""A sigstore of our own, made with `cryptography` from the specifications: a certificate
authority (a root and an intermediate, as Fulcio's), a transparency log's key (as Rekor's), the
trusted root JSON naming both (protobuf-specs' TrustedRoot), and keyless signing as cosign does it
(an ephemeral P-256 key, a ten-minute certificate for an OIDC identity, a hashedrekord log entry
and its signed entry timestamp, all on the `.sig` layer's annotations; cosign's SIGNATURE_SPEC).
Rekor v2 as well: a log that proves an entry by an inclusion proof under a signed checkpoint (RFC
6962's Merkle tree, C2SP's signed note), and an RFC 3161 timestamp authority (its TimeStampResp
written with the small DER encoder below) to date the signature."""
import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
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
    return _tlv(12, text.encode())  # UTF8String


# --- DER, written (X.690): enough for a TimeStampResp

def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _set(*parts: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(parts)))


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    encoded = b""
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.insert(0, 0x80 | arc & 0x7F)
        encoded += bytes(chunk)
    return _tlv(0x06, encoded)


def _algorithm(dotted: str) -> bytes:
    return _sequence(_oid(dotted))


SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"


class TimestampAuthority:
    """An RFC 3161 timestamp authority: its own root, and a time stamping certificate under it.
    The arguments break one part each: the certificate's usage, its end, who really issued it."""

    def __init__(self, usage=ExtendedKeyUsageOID.TIME_STAMPING, until: datetime = NOW + timedelta(days=365),
                 issuer_key=None):
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _authority(_name("tsa-root"), self.root_key, _name("tsa-root"), self.root_key, 0)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = (x509.CertificateBuilder().subject_name(_name("tsa")).issuer_name(self.root.subject)
                            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                            .not_valid_before(NOW - timedelta(days=3 * 365)).not_valid_after(until)
                            .add_extension(x509.ExtendedKeyUsage([usage]), critical=True)
                            .sign(issuer_key or self.root_key, hashes.SHA384()))

    def chain(self) -> dict:
        return {"subject": {"organization": "sigstore.test", "commonName": "tsa"}, "uri": "https://tsa.sigstore.test",
                "certChain": {"certificates": [{"rawBytes": base64.b64encode(c.public_bytes(
                    serialization.Encoding.DER)).decode()} for c in (self.certificate, self.root)]},
                "validFor": {"start": "2025-01-01T00:00:00Z"}}

    def stamp(self, signature: bytes, at: datetime, imprint=None) -> bytes:
        """A granted TimeStampResp saying `signature` (or the bytes `imprint` hashes to) existed at `at`."""
        return _sequence(_sequence(_integer(0)), self.token(signature, at, imprint))

    def token(self, signature: bytes, at: datetime, imprint=None, embed=(), signing_certificate=None,
              accuracy: int = None) -> bytes:
        """The TimeStampToken (CMS ContentInfo) of `stamp`; `embed` the certificates it carries,
        `signing_certificate` the certificate its signing-certificate-v2 attribute names (notation
        asks for both), `accuracy` seconds either side of `at`."""
        tst_info = _sequence(_integer(1), _oid("1.3.6.1.4.1.57264.2"),
                             _sequence(_algorithm(SHA256), _tlv(0x04, hashlib.sha256(imprint or signature).digest())),
                             _integer(42), _tlv(0x18, at.strftime("%Y%m%d%H%M%SZ").encode()),
                             *([_sequence(_integer(accuracy))] if accuracy is not None else []))
        attributes = [_sequence(_oid("1.2.840.113549.1.9.3"), _set(_oid("1.2.840.113549.1.9.16.1.4"))),
                      _sequence(_oid("1.2.840.113549.1.9.4"), _set(_tlv(0x04, hashlib.sha256(tst_info).digest())))]
        if signing_certificate is not None:
            certificate_hash = hashlib.sha256(signing_certificate.public_bytes(serialization.Encoding.DER)).digest()
            attributes.append(_sequence(_oid("1.2.840.113549.1.9.16.2.47"), _set(_sequence(_sequence(
                _sequence(_tlv(0x04, certificate_hash)))))))
        signed = _set(*attributes)
        signature_value = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        signer = _sequence(_integer(1), _sequence(self.certificate.issuer.public_bytes(),
                                                  _integer(self.certificate.serial_number)),
                           _algorithm(SHA256), bytes([0xA0]) + signed[1:], _algorithm(ECDSA_SHA256),
                           _tlv(0x04, signature_value))
        carried = [_tlv(0xA0, b"".join(c.public_bytes(serialization.Encoding.DER) for c in embed))] if embed else []
        signed_data = _sequence(_integer(3), _set(_algorithm(SHA256)),
                                _sequence(_oid("1.2.840.113549.1.9.16.1.4"), _tlv(0xA0, _tlv(0x04, tst_info))),
                                *carried, _set(signer))
        return _sequence(_oid("1.2.840.113549.1.7.2"), _tlv(0xA0, signed_data))

    def notation_token(self, signature: bytes, at: datetime, **broken) -> bytes:
        """A token as notation's TSAs give it: the signing certificate carried and named."""
        return self.token(signature, at, **{"embed": (self.certificate,), "signing_certificate": self.certificate,
                                            **broken})


# --- a Rekor v2 log: RFC 6962's Merkle tree hash and audit paths, by their recursive definitions

def _leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _split(size: int) -> int:
    return 1 << (size - 1).bit_length() - 1


def tree_hash(leaves: list) -> bytes:
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + tree_hash(leaves[:k]) + tree_hash(leaves[k:])).digest()


def audit_path(index: int, leaves: list) -> list:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return audit_path(index, leaves[:k]) + [tree_hash(leaves[k:])]
    return audit_path(index - k, leaves[k:]) + [tree_hash(leaves[:k])]


class Log:
    """A tiled log's entries and checkpoint key (Ed25519, as rekor-tiles signs its notes)."""
    origin = "rekor.sigstore.test"

    def __init__(self):
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.leaves = [b"an earlier entry %d" % n for n in range(5)]

    @property
    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def checkpoint(self, size: int, root: bytes, key=None) -> str:
        note = f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        signature = (key or self.key).sign(note.encode())
        hint = hashlib.sha256(self.public_der).digest()[:4]  # the log ID's first bytes, as sigstore reads it
        return note + f"\n\u2014 {self.origin} {base64.b64encode(hint + signature).decode()}\n"

    def add(self, body: bytes, key=None, tamper=None) -> dict:
        """Log `body` (and two entries after it); the bundle's tlogEntries item proving it by
        inclusion. `key` signs the checkpoint instead; `tamper` ("path", "root") breaks a part."""
        self.leaves.append(body)
        index = len(self.leaves) - 1
        self.leaves += [b"a later entry", b"another later entry"]
        size, root, path = len(self.leaves), tree_hash(self.leaves), audit_path(index, self.leaves)
        checkpoint = self.checkpoint(size, hashlib.sha256(root).digest() if tamper == "root" else root, key)
        if tamper == "path":
            path[0] = hashlib.sha256(path[0]).digest()
        body_json = json.loads(body)
        return {"logIndex": str(index), "logId": {"keyId": base64.b64encode(hashlib.sha256(
            self.public_der).digest()).decode()}, "kindVersion": {"kind": body_json["kind"], "version": "0.0.2"},
            "integratedTime": "0", "inclusionProof": {
                "logIndex": str(index), "rootHash": base64.b64encode(root).decode(), "treeSize": str(size),
                "hashes": [base64.b64encode(h).decode() for h in path], "checkpoint": {"envelope": checkpoint}},
            "canonicalizedBody": base64.b64encode(body).decode()}


class Sigstore:
    """One instance: `trusted_root()` to import, `sign(...)` to make keyless signatures."""

    def __init__(self, tsa: "TimestampAuthority" = None):
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _authority(_name("sigstore"), self.root_key, _name("sigstore"), self.root_key, 1)
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate = _authority(_name("sigstore-intermediate"), self.intermediate_key, self.root.subject,
                                       self.root_key, 0)
        self.log_key = ec.generate_private_key(ec.SECP256R1())
        self.log = Log()
        self.tsa = tsa or TimestampAuthority()

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
                       "logId": {"keyId": base64.b64encode(self.log_id).decode()}},
                      {"baseUrl": "https://log2.sigstore.test", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": base64.b64encode(self.log.public_der).decode(),
                                     "keyDetails": "PKIX_ED25519", "validFor": {"start": "2025-01-01T00:00:00Z"}},
                       "logId": {"keyId": base64.b64encode(hashlib.sha256(self.log.public_der).digest()).decode()}}],
            "certificateAuthorities": [{"subject": {"organization": "sigstore.test", "commonName": "sigstore"},
                                        "uri": "https://fulcio.sigstore.test",
                                        "certChain": {"certificates": [raw(self.intermediate), raw(self.root)]},
                                        "validFor": {"start": "2025-01-01T00:00:00Z"}}],
            "ctlogs": [], "timestampAuthorities": [self.tsa.chain()]}, indent=2)

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

    def v2_bundle(self, subject: str, digest: str = None, manifest: bytes = None, at: datetime = NOW,
                  stamped_at=None, tsa=None, imprint=None, stamped=True, checkpoint_key=None, tamper=None,
                  logged_payload=None) -> bytes:
        """A bundle as cosign makes it with Rekor v2 and a timestamp authority: a DSSE statement
        naming `digest` (or a message signature over `manifest`), a 0.0.2 entry proved by
        inclusion, and an RFC 3161 timestamp 5 s after `at`. The other arguments break one part
        each: the timestamp's time, authority or imprint, no timestamp at all, the checkpoint's
        key, the proof (`tamper`: "path" or "root"), the payload the entry names."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self.certificate(key, subject, ISSUER, at)
        der = certificate.public_bytes(serialization.Encoding.DER)
        verifier = {"x509Certificate": {"rawBytes": base64.b64encode(der).decode()},
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256"}
        if manifest is None:
            payload = statement(digest)
            signature = key.sign(dsse_pae(payload), ec.ECDSA(hashes.SHA256()))
            body = {"apiVersion": "0.0.2", "kind": "dsse", "spec": {"dsseV002": {
                "payloadHash": {"algorithm": "SHA2_256", "digest": base64.b64encode(
                    hashlib.sha256(logged_payload or payload).digest()).decode()},
                "signatures": [{"content": base64.b64encode(signature).decode(), "verifier": verifier}]}}}
            content = {"dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                        "payloadType": "application/vnd.in-toto+json",
                                        "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]}}
        else:
            signature = key.sign(manifest, ec.ECDSA(hashes.SHA256()))
            hashed = base64.b64encode(hashlib.sha256(logged_payload or manifest).digest()).decode()
            body = {"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": hashed},
                "signature": {"content": base64.b64encode(signature).decode(), "verifier": verifier}}}}
            content = {"messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(
                hashlib.sha256(manifest).digest()).decode()}, "signature": base64.b64encode(signature).decode()}}
        material = {"certificate": {"rawBytes": base64.b64encode(der).decode()},
                    "tlogEntries": [self.log.add(json.dumps(body).encode(), checkpoint_key, tamper)]}
        if stamped:
            response = (tsa or self.tsa).stamp(signature, stamped_at or at + timedelta(seconds=5), imprint)
            material["timestampVerificationData"] = {"rfc3161Timestamps": [
                {"signedTimestamp": base64.b64encode(response).decode()}]}
        return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                           "verificationMaterial": material, **content}).encode()


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
