"""Reading X.509 certificates that arrive as untrusted bytes (a signature's chain, a bundle's
leaf, a timestamp's signer): loading them, what reading them may raise, and the two facts every
verifier asks of one (an authority? valid at a moment? issued by that one?), and its DER.
cryptography is imported only when called: the registry's cold start does not pay for it.
"""
from __future__ import annotations


def load_certificate(data: bytes, pem: bool = False):
    """An X.509 certificate from untrusted bytes, DER or PEM; ValueError when they are not one
    (cryptography raises InvalidVersion, which is no ValueError, for an unknown version)."""
    from cryptography import x509
    try:
        return (x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate)(data)
    except x509.InvalidVersion as error:
        raise ValueError(str(error)) from None


def malformed() -> tuple:
    """What reading untrusted certificates and keys may raise beyond loading them: cryptography
    parses a certificate's parts as they are read (ValueError), and refuses algorithms it does not
    know (UnsupportedAlgorithm). For `except malformed():` around a whole verification."""
    from cryptography.exceptions import UnsupportedAlgorithm
    return ValueError, TypeError, UnsupportedAlgorithm


def is_authority(certificate) -> bool:
    from cryptography import x509
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def within(certificate, moment: float) -> bool:
    return certificate.not_valid_before_utc.timestamp() <= moment <= certificate.not_valid_after_utc.timestamp()


def issued_by(certificate, issuer) -> bool:
    """Whether `issuer`'s key signed `certificate` and names match (no other check of `issuer`)."""
    from cryptography.exceptions import InvalidSignature
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def der_of(certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return certificate.public_bytes(serialization.Encoding.DER)
