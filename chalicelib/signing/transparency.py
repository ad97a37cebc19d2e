"""A transparency log's proof that it holds an entry, without a signed entry timestamp: Rekor
v2's (rekor-tiles) bundles carry an inclusion proof and a signed checkpoint instead (protobuf-
specs' InclusionProof; the C2SP tlog-checkpoint and signed-note formats):

    "inclusionProof": {"logIndex": "3", "treeSize": "8", "rootHash": <base64>,
                       "hashes": [<base64>, ...], "checkpoint": {"envelope": "<signed note>"}}

The entry is included (`included`) when the RFC 6962 audit path from its leaf hash,
SHA-256(0x00 || canonicalized body), leads to `rootHash`, and the checkpoint, signed by the log
the entry names, says that root for that tree size. Of a checkpoint's signature lines
("\u2014 <name> <base64 of a 4-byte key hint and the signature>") the one whose hint is the first
four bytes of the log's id must verify with the log's key; the others (witnesses' cosignatures)
are not read. An inclusion proof says nothing of when: a bundle logged only so is dated by an RFC
3161 timestamp (signing/timestamps.py).

Certificate transparency (RFC 6962): a certificate authority such as Fulcio logs each certificate
it issues and embeds the logs' signed certificate timestamps (SCTs) in it. One counts
(`certificate_logged`) when a certificate transparency log of the trusted root, valid at the
SCT's time, signed it over the precertificate: the certificate's TBS without the SCT extension,
after the SHA-256 of its issuer's public key.
"""
from __future__ import annotations
import base64
import binascii
import hashlib
from datetime import datetime, timezone
from typing import List, Optional

MAX_PROOF_HASHES = 64  # a tree of 2^64 entries
MAX_CHECKPOINT_BYTES = 8 * 1024
MAX_SCTS = 8
SIGNATURE_MARK = "\u2014 "


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: List[bytes]) -> Optional[bytes]:
    """The root an RFC 6962 audit path leads to from leaf `index` of a tree of `size` leaves
    (RFC 9162, 2.1.3.2), or None when the path is not one for that position."""
    if not 0 <= index < size:
        return None
    at, last, hashed = index, size - 1, leaf
    for sibling in path:
        if last == 0:
            return None  # more hashes than the tree has levels
        if at % 2 == 1 or at == last:
            hashed = _node(sibling, hashed)
            while at % 2 == 0 and at != 0:
                at, last = at >> 1, last >> 1
        else:
            hashed = _node(hashed, sibling)
        at, last = at >> 1, last >> 1
    return hashed if last == 0 else None


def _checkpoint(envelope: str, log) -> Optional[tuple]:
    """(tree size, root hash) of a signed note `log` (keyless.LogKey) signed, or None."""
    from chalicelib.signing.cosign import verifies_with
    if len(envelope.encode()) > MAX_CHECKPOINT_BYTES or "\n\n" not in envelope:
        return None
    note, _, signatures = envelope.partition("\n\n")
    note += "\n"
    lines = note.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        return None
    try:
        size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        return None
    for line in signatures.split("\n"):
        if not line.startswith(SIGNATURE_MARK) or len(line.split(" ")) != 3:
            continue
        try:
            signed = base64.b64decode(line.split(" ")[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        if signed[:4] == log.key_id[:4] and len(signed) > 4 and verifies_with(log.key, signed[4:], note.encode()):
            return size, root
    return None


def included(body: bytes, proof, log) -> bool:
    """Whether `proof` (a bundle's inclusionProof) shows `log` (keyless.LogKey) holds the entry
    `body` (its canonicalized bytes), under a checkpoint the log signed."""
    try:
        index, size = int(proof["logIndex"]), int(proof["treeSize"])
        root = base64.b64decode(proof["rootHash"], validate=True)
        hashes = proof["hashes"]
        if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
            return False
        path = [base64.b64decode(h, validate=True) for h in hashes]
        envelope = proof["checkpoint"]["envelope"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False
    if not isinstance(envelope, str) or root_from_path(leaf_hash(body), index, size, path) != root:
        return False
    return _checkpoint(envelope, log) == (size, root)


def _precertificate_signed(sct, issuer_key_hash: bytes, tbs: bytes) -> bytes:
    """What a log signs for a precertificate's SCT (RFC 6962, 3.2): version v1, certificate_timestamp,
    the time in milliseconds, precert_entry, the issuer key hash, the TBS and the SCT's extensions."""
    since = sct.timestamp.replace(tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    milliseconds = since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000
    extensions = sct.extension_bytes
    return b"\x00\x00" + milliseconds.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash \
        + len(tbs).to_bytes(3, "big") + tbs + len(extensions).to_bytes(2, "big") + extensions


def certificate_logged(certificate, issuer, logs) -> bool:
    """Whether `certificate` (issued by `issuer`, cryptography certificates) embeds an SCT a log
    of `logs` (keyless.LogKey) signed, valid at the SCT's time."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from chalicelib.signing.cosign import verifies_with
    try:
        scts = list(certificate.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
                    .value)[:MAX_SCTS]
        tbs = certificate.tbs_precertificate_bytes
    except (x509.ExtensionNotFound, ValueError):
        return False
    issuer_key_hash = hashlib.sha256(issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    for sct in scts:
        if sct.version != x509.certificate_transparency.Version.v1 \
                or sct.entry_type != x509.certificate_transparency.LogEntryType.PRE_CERTIFICATE:
            continue
        moment = sct.timestamp.replace(tzinfo=timezone.utc).timestamp()
        signed = _precertificate_signed(sct, issuer_key_hash, tbs)
        if any(log.key_id == sct.log_id and log.window.covers(moment) and verifies_with(log.key, sct.signature, signed)
               for log in logs):
            return True
    return False
