"""Notation signatures made here from the Notary Project's specifications (signature-envelope-jws.md,
signature-envelope-cose.md, signature-specification.md): a root certificate authority for the
trust store, a code-signing leaf, and the JWS or COSE envelope `notation sign` attaches to an
image as a referrer."""
import base64
import hashlib
import json
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fixtures import OCI_MANIFEST, digest_of

VALID_FROM = datetime(2025, 1, 1, tzinfo=timezone.utc)
VALID_UNTIL = datetime(2030, 1, 1, tzinfo=timezone.utc)
ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _certificate(subject: str, key, issuer_name, issuer_key, authority: bool, start=VALID_FROM, end=VALID_UNTIL,
                 usage=ExtendedKeyUsageOID.CODE_SIGNING, organization="wabbit-networks.test"):
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True))
    if not authority:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Notary:
    """A trust store's root (`root_pem`) and a leaf it issued; `envelope(digest)` signs with it."""

    def __init__(self, key=None):
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _certificate("wabbit-networks root", self.root_key, None, self.root_key, True)
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.leaf = self.issue(self.key)

    def issue(self, key, **details):
        return _certificate("wabbit-networks signer", key, self.root.subject, self.root_key, False, **details)

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def envelope(self, digest: str, alg: str = None, leaf=None, key=None, expiry: datetime = None,
                 headers: dict = None, crit=None, chain=None, stamp=None, authentic: datetime = None) -> bytes:
        """The JWS envelope for `digest`; the arguments break one part each. `stamp(signature)` gives
        the timestamp token `notation sign --timestamp-url` puts in the unprotected header;
        `authentic` makes it a signing authority's (notary.x509.signingAuthority) signed at that time."""
        key, leaf = key or self.key, leaf or self.leaf
        if alg is None:
            alg = "PS256" if isinstance(key, rsa.RSAPrivateKey) else {256: "ES256", 384: "ES384", 521: "ES512"}[
                key.curve.key_size]
        protected = {"alg": alg, "cty": "application/vnd.cncf.notary.payload.v1+json",
                     "io.cncf.notary.signingScheme": "notary.x509",
                     "io.cncf.notary.signingTime": "2026-11-30T10:00:00Z",
                     "crit": crit or ["io.cncf.notary.signingScheme"]}
        if expiry is not None:
            protected["io.cncf.notary.expiry"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
            protected["crit"] = protected["crit"] + ["io.cncf.notary.expiry"]
        if authentic is not None:
            del protected["io.cncf.notary.signingTime"]
            protected.update({"io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
                              "io.cncf.notary.authenticSigningTime": authentic.strftime("%Y-%m-%dT%H:%M:%SZ")})
            protected["crit"] = protected["crit"] + ["io.cncf.notary.authenticSigningTime"]
        protected.update(headers or {})
        payload = {"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}}
        head, body = b64url(json.dumps(protected).encode()), b64url(json.dumps(payload).encode())
        signing_input = f"{head}.{body}".encode()
        digest_for = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[alg[2:]]()  # as alg says
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(digest_for),
                                                            salt_length=digest_for.digest_size), digest_for)
        else:
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest_for)))
            size = (key.curve.key_size + 7) // 8
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        x5c = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
               for c in (chain if chain is not None else (leaf, self.root))]
        header = {"x5c": x5c, "io.cncf.notary.signingAgent": "notation-go/1.3.0"}
        if stamp is not None:
            header["io.cncf.notary.timestampSignature"] = base64.b64encode(stamp(signature)).decode()
        return json.dumps({"payload": body, "protected": head, "header": header, "signature": b64url(signature)}).encode()


COSE_ALG = {"ES256": -7, "ES384": -35, "ES512": -36, "PS256": -37, "PS384": -38, "PS512": -39}


def cose_envelope(notary: "Notary", digest: str, alg: str = None, key=None, leaf=None, expiry: datetime = None,
                  extra: dict = None, chain=None, stamp=None, authentic: datetime = None) -> bytes:
    """The COSE_Sign1_Tagged `notation sign --signature-format cose` makes (signature-envelope-cose.md),
    encoded with cbor2; the arguments break one part each."""
    import cbor2
    key, leaf = key or notary.key, leaf or notary.leaf
    alg = alg or ("PS256" if isinstance(key, rsa.RSAPrivateKey) else {256: "ES256", 384: "ES384", 521: "ES512"}[
        key.curve.key_size])
    protected = {1: COSE_ALG[alg], 2: ["io.cncf.notary.signingScheme"], 3: "application/vnd.cncf.notary.payload.v1+json",
                 "io.cncf.notary.signingScheme": "notary.x509",
                 "io.cncf.notary.signingTime": cbor2.CBORTag(1, 1764496800)}
    if expiry is not None:
        protected["io.cncf.notary.expiry"] = cbor2.CBORTag(1, int(expiry.timestamp()))
        protected[2] = protected[2] + ["io.cncf.notary.expiry"]
    if authentic is not None:
        del protected["io.cncf.notary.signingTime"]
        protected.update({"io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
                          "io.cncf.notary.authenticSigningTime": cbor2.CBORTag(1, int(authentic.timestamp()))})
        protected[2] = protected[2] + ["io.cncf.notary.authenticSigningTime"]
    protected.update(extra or {})
    protected_bytes = cbor2.dumps(protected)
    payload = json.dumps({"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}}).encode()
    to_sign = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    digest_for = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[alg[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PSS(mgf=padding.MGF1(digest_for), salt_length=digest_for.digest_size),
                             digest_for)
    else:
        r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(digest_for)))
        size = (key.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    x5chain = [c.public_bytes(serialization.Encoding.DER) for c in (chain if chain is not None else (leaf, notary.root))]
    unprotected = {33: x5chain, "io.cncf.notary.signingAgent": "notation-go/1.3.0"}
    if stamp is not None:
        unprotected["io.cncf.notary.timestampSignature"] = stamp(signature)
    return cbor2.dumps(cbor2.CBORTag(18, [protected_bytes, unprotected, payload, signature]))


def attach(push, repo: str, digest: str, envelope: bytes, media_type: str = "application/jose+json") -> str:
    """The referrer `notation sign` pushes (OCI 1.1 manifest, artifactType and the JWS layer); its digest."""
    empty = push.blob(repo, b"{}")
    layer = dict(push.blob(repo, envelope), mediaType=media_type)
    thumbprint = hashlib.sha256(envelope).hexdigest()  # any annotation: verifiers read the envelope
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
                       "config": dict(empty, mediaType="application/vnd.oci.empty.v1+json"), "layers": [layer],
                       "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1},
                       "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": json.dumps([thumbprint])}}).encode()
    answer = push.manifest(repo, digest_of(body), body)
    assert answer.status_code == 201, answer.body
    return digest_of(body)
