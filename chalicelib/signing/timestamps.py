"""RFC 3161 signed timestamps: a timestamp authority's word for when a signature existed. A
sigstore bundle carries them in verificationMaterial.timestampVerificationData.rfc3161Timestamps
(each `{"signedTimestamp": <base64 DER TimeStampResp>}`); the trusted root names the authorities
(`timestampAuthorities`: each a certificate chain, the authority's own certificate first, and
when it may be used).

A timestamp dates a signature (`verified_time`) when all of this holds:
  * the response's status is granted and it holds a CMS SignedData (RFC 5652) whose content is a
    TSTInfo, with exactly one signer;
  * the TSTInfo's message imprint is the hash (SHA-256/384/512) of the signature's bytes;
  * the signer's signed attributes name the TSTInfo as content type and carry its hash, and the
    signature over them verifies with the certificate of an authority of the trusted root, which
    the signer identifier names (issuer and serial, or key identifier);
  * that certificate is for time stamping, it and its chain (each issued by the next) are valid at
    the TSTInfo's genTime, and the authority's validFor covers it.
The genTime is then the signing time. Everything else, malformed or too big, dates nothing.

Notation keeps a TimeStampToken (no response around it) in its envelope and trusts TSA *roots*,
not authorities' own certificates: `trusted_range` finds the signer among the certificates the
token carries (named by sid and by the signing-certificate-v2 attribute, RFC 5035), chains it to
a root through them, and gives the range genTime +- accuracy. Either way the time stamping
certificate's extended key usage must be critical and timeStamping alone (RFC 3161, 2.3).
"""
from __future__ import annotations
import base64
import binascii
import hashlib
from typing import Iterable, NamedTuple, Optional, Tuple

from chalicelib.signing import der
from chalicelib.signing.certificates import der_of, is_authority, issued_by, load_certificate, malformed, within
from chalicelib.signing.der import DerError

MAX_TIMESTAMP_BYTES = 16 * 1024
MAX_TIMESTAMPS = 4
MAX_EMBEDDED = 8  # certificates a token carries
SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
HASHES = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}
# Signature algorithms, and the hash each names (None: the signer's digest algorithm's).
SIGNATURES = {"1.2.840.113549.1.1.1": None, "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384",
              "1.2.840.113549.1.1.13": "sha512", "1.2.840.10045.4.3.2": "sha256", "1.2.840.10045.4.3.3": "sha384",
              "1.2.840.10045.4.3.4": "sha512"}
GRANTED = (0, 1)  # granted, grantedWithMods


class Token(NamedTuple):
    """What a timestamp says and how its signature is checked."""
    generated: float  # genTime, unix seconds
    imprint_hash: str
    imprint: bytes
    signed_attributes: bytes  # DER, as signed (a SET)
    hash_name: str  # what the signature's hash is
    signature: bytes
    issuer: Optional[bytes]  # the signer's certificate issuer (DER Name) and serial, or its key identifier
    serial: Optional[int]
    key_identifier: Optional[bytes]
    accuracy: float  # seconds either side of genTime
    certificates: tuple  # DER certificates the token carries (untrusted)
    signing_certificate: Optional[tuple]  # (hash name, hash) of the signer's certificate, as signed


def _algorithm(element: der.Element) -> str:
    return element.expect(der.SEQUENCE).children()[0].oid()


def _attributes(signed: der.Element) -> dict:
    found = {}
    for attribute in signed.children():
        kind, values = attribute.expect(der.SEQUENCE).children()
        (value,) = values.expect(der.SET).children()
        if kind.oid() in found:
            raise DerError("an attribute twice")
        found[kind.oid()] = value
    return found


def parse(data: bytes) -> Token:
    """The parts of a DER TimeStampResp, checked as far as they hold without a key (DerError)."""
    response = der.read(data).expect(der.SEQUENCE).children()
    status = response[0].expect(der.SEQUENCE).children()[0].integer()
    if status not in GRANTED or len(response) != 2:
        raise DerError(f"timestamp status {status}, or no token")
    return _token(response[1])


def parse_token(data: bytes) -> Token:
    """The parts of a DER TimeStampToken (the ContentInfo a TimeStampResp carries; what notation
    keeps in `io.cncf.notary.timestampSignature`), checked as `parse` checks them."""
    return _token(der.read(data))


def _token(content_info: der.Element) -> Token:
    content_type, wrapped = content_info.expect(der.SEQUENCE).children()
    if content_type.oid() != SIGNED_DATA or not wrapped.context(0):
        raise DerError("not CMS SignedData")
    (signed_data,) = wrapped.children()
    parts = signed_data.expect(der.SEQUENCE).children()
    encapsulated = parts[2].expect(der.SEQUENCE).children()
    if encapsulated[0].oid() != TST_INFO or len(encapsulated) != 2:
        raise DerError("the signed content is not a TSTInfo")
    (content,) = encapsulated[1].children()
    tst_info = content.expect(der.OCTET_STRING).content
    embedded = tuple(c.raw for c in parts[3].children()[:MAX_EMBEDDED]) if parts[3].context(0) else ()
    signers = parts[-1].expect(der.SET).children()
    if len(signers) != 1:
        raise DerError("a timestamp has one signer")
    signer = signers[0].expect(der.SEQUENCE).children()
    identifier, digest_algorithm, signed, signature_algorithm, signature = signer[1:6]
    if not signed.context(0):
        raise DerError("a timestamp's signer has signed attributes")
    hash_name = HASHES.get(_algorithm(digest_algorithm))
    signing = _algorithm(signature_algorithm)
    if hash_name is None or signing not in SIGNATURES:
        raise DerError("an unknown digest or signature algorithm")
    attributes = _attributes(signed)
    if attributes.get(CONTENT_TYPE) is None or attributes[CONTENT_TYPE].oid() != TST_INFO:
        raise DerError("the content type attribute is not TSTInfo")
    digest = attributes.get(MESSAGE_DIGEST)
    if digest is None or digest.expect(der.OCTET_STRING).content != hashlib.new(hash_name, tst_info).digest():
        raise DerError("the message digest attribute is not the TSTInfo's")
    issuer = serial = key_identifier = None
    if identifier.tag == der.SEQUENCE:
        name, number = identifier.children()
        issuer, serial = name.expect(der.SEQUENCE).raw, number.integer()
    elif identifier.context(0):
        key_identifier = identifier.content
    else:
        raise DerError("an unknown signer identifier")
    info = der.read(tst_info).expect(der.SEQUENCE).children()
    if info[0].integer() != 1:
        raise DerError("TSTInfo version 1 only")
    imprint_algorithm, imprint = info[2].expect(der.SEQUENCE).children()
    imprint_hash = HASHES.get(_algorithm(imprint_algorithm))
    if imprint_hash is None:
        raise DerError("an unknown message imprint hash")
    return Token(info[4].generalized_time(), imprint_hash, imprint.expect(der.OCTET_STRING).content,
                 bytes([der.SET]) + signed.raw[1:], SIGNATURES[signing] or hash_name,
                 signature.expect(der.OCTET_STRING).content, issuer, serial, key_identifier,
                 _accuracy(info[5]) if len(info) > 5 and info[5].tag == der.SEQUENCE else 0.0, embedded,
                 _signing_certificate(attributes.get(SIGNING_CERTIFICATE_V2)))


def _accuracy(element: der.Element) -> float:
    """TSTInfo's Accuracy: seconds, [0] millis, [1] micros, each optional."""
    seconds = 0.0
    for part in element.children():
        if part.tag == der.INTEGER:
            seconds += part.integer()
        elif part.context(0) or part.context(1):
            value = int.from_bytes(part.content, "big") if part.content else 0
            seconds += value / (1000 if part.context(0) else 1_000_000)
    return seconds


def _signing_certificate(value: Optional[der.Element]) -> Optional[tuple]:
    """RFC 5035's SigningCertificateV2: the first ESSCertIDv2's hash (SHA-256 unless it names another)."""
    if value is None:
        return None
    first = value.expect(der.SEQUENCE).children()[0].expect(der.SEQUENCE).children()[0]
    parts = first.expect(der.SEQUENCE).children()
    hash_name = HASHES.get(_algorithm(parts[0])) if parts[0].tag == der.SEQUENCE else "sha256"
    if hash_name is None:
        raise DerError("an unknown signing certificate hash")
    return hash_name, (parts[1] if parts[0].tag == der.SEQUENCE else parts[0]).expect(der.OCTET_STRING).content


def _names(token: Token, certificate) -> bool:
    """Whether the token's signer identifier is this certificate."""
    from cryptography import x509
    if token.key_identifier is not None:
        try:
            own = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return False
        return own == token.key_identifier
    return token.serial == certificate.serial_number and token.issuer == certificate.issuer.public_bytes()


def _signed_by(token: Token, certificate) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    chosen = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[token.hash_name]()
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(token.signature, token.signed_attributes, ec.ECDSA(chosen))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(token.signature, token.signed_attributes, padding.PKCS1v15(), chosen)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def for_time_stamping(certificate) -> bool:
    """RFC 3161, 2.3: the extended key usage is critical and is timeStamping alone."""
    from cryptography import x509
    try:
        extension = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return extension.critical and [usage.dotted_string for usage in extension.value] == [TIME_STAMPING]


def _chain_holds(chain: tuple, moment: float) -> bool:
    """Every certificate valid at `moment`, each but the last issued by the next."""
    return all(within(certificate, moment) for certificate in chain) \
        and all(issued_by(issued, issuer) for issued, issuer in zip(chain, chain[1:]))


def _of(signature: bytes, data: bytes, read) -> Optional[Token]:
    """The token `read` finds in `data` if it is a timestamp of `signature` (its imprint), else None."""
    if len(data) > MAX_TIMESTAMP_BYTES:
        return None
    try:
        token = read(data)
    except (DerError, ValueError, IndexError):
        return None
    return token if hashlib.new(token.imprint_hash, signature).digest() == token.imprint else None


def verified_time(response: bytes, signature: bytes, authorities: Iterable) -> Optional[float]:
    """When `response` (a DER TimeStampResp) says `signature` existed, if an authority of
    `authorities` (keyless.Authority: its chain, the authority's certificate first) signed it;
    None otherwise."""
    token = _of(signature, response, parse)
    if token is None:
        return None
    for authority in authorities:
        leaf = authority.chain[0]
        if authority.window.covers(token.generated) and _names(token, leaf) and for_time_stamping(leaf) \
                and _chain_holds(authority.chain, token.generated) and _signed_by(token, leaf):
            return token.generated
    return None


def from_bundle(material: dict) -> tuple:
    """The DER timestamps of a bundle's verification material (at most MAX_TIMESTAMPS)."""
    stamps = ((material.get("timestampVerificationData") or {}).get("rfc3161Timestamps") or [])
    found = []
    for stamp in stamps[:MAX_TIMESTAMPS] if isinstance(stamps, list) else []:
        try:
            found.append(base64.b64decode(stamp["signedTimestamp"], validate=True))
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue
    return tuple(found)


def _issuer_of(certificate, candidates):
    return next((candidate for candidate in candidates if candidate.subject == certificate.issuer
                 and der_of(candidate) != der_of(certificate) and issued_by(certificate, candidate)), None)


def trusted_range(token_bytes: bytes, signature: bytes, roots: Iterable) -> Optional[Tuple[float, float]]:
    """When a TimeStampToken says `signature` existed, (earliest, latest) by its accuracy, if the
    certificate that signed it is one the token carries and names (its signing-certificate-v2
    attribute, RFC 5035), is for time stamping, and chains through the token's certificates to
    one of `roots` (cryptography certificates: a trust store's TSA roots), each valid at genTime.
    None otherwise. (Notation's timestamps: signing/notation.py.)"""
    token = _of(signature, token_bytes, parse_token)
    if token is None or token.signing_certificate is None:
        return None
    try:  # the carried certificates are untrusted bytes, parsed as their parts are read
        return _carried_range(token, [load_certificate(raw) for raw in token.certificates], roots)
    except malformed():
        return None


def _carried_range(token: Token, carried: list, roots: Iterable) -> Optional[Tuple[float, float]]:
    signer = next((c for c in carried if _names(token, c)), None)
    hash_name, certificate_hash = token.signing_certificate
    if signer is None or hashlib.new(hash_name, der_of(signer)).digest() != certificate_hash \
            or not for_time_stamping(signer) or not _signed_by(token, signer):
        return None
    roots = list(roots)
    trusted = {der_of(root) for root in roots}
    chain = [signer]
    while der_of(chain[-1]) not in trusted:
        issuer = _issuer_of(chain[-1], carried + roots) if len(chain) <= MAX_EMBEDDED else None
        if issuer is None or not is_authority(issuer):
            return None
        chain.append(issuer)
    if not all(within(certificate, token.generated) for certificate in chain):
        return None
    return token.generated - token.accuracy, token.generated + token.accuracy
