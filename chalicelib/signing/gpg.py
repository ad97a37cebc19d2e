"""gpg through python-gnupg, in an isolated GNUPGHOME (mode 0700) per process, one call at a time.

Atomic signatures are opaque (non-detached, non-cleartext) binary OpenPGP signed messages: the
payload is inside. Verifying one yields the payload and the signer's *primary* key fingerprint,
which is what a policy's `signedBy` keys are compared with.
"""
import dataclasses
import os
import tempfile
import threading
from typing import List, Optional, Tuple

_lock = threading.Lock()
_gpg = None


class KeyError_(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    uids: List[str]
    algorithm: str
    length: int
    created: Optional[str]
    expires: Optional[str]
    capabilities: str

    @property
    def primary_can_sign(self) -> bool:
        return "s" in self.capabilities  # lower case: the primary key's own capabilities


@dataclasses.dataclass(frozen=True)
class Verified:
    payload: bytes
    valid: bool
    fingerprint: Optional[str]  # the primary key's, when the signer's key is known
    key_id: Optional[str]
    status: str  # python-gnupg's: "signature valid", "no public key", "signature bad", …

    @property
    def intact(self) -> bool:
        """Valid, or not checkable for want of the key; never a bad or missing signature."""
        return self.valid or self.status == "no public key"


def _instance():
    global _gpg
    if _gpg is None:
        import gnupg
        home = tempfile.mkdtemp(prefix="dockless-gnupg-")
        os.chmod(home, 0o700)
        _gpg = gnupg.GPG(gnupghome=home)
    return _gpg


def inspect_public_keys(armored: str) -> List[KeyInfo]:
    """What an upload holds, without importing it; secret keys are refused."""
    if "PRIVATE KEY BLOCK" in armored:
        raise KeyError_("that is a secret key: upload only the public key (gpg --export --armor FPR)")
    with _lock:
        scanned = _instance().scan_keys_mem(armored)
    if any(key.get("type") == "sec" for key in scanned):
        raise KeyError_("that is a secret key: upload only the public key")
    keys = [KeyInfo(key["fingerprint"], list(key.get("uids", [])), str(key.get("algo")), int(key.get("length") or 0),
                    key.get("date") or None, key.get("expires") or None, key.get("cap", ""))
            for key in scanned if key.get("type") == "pub"]
    if not keys:
        raise KeyError_("no OpenPGP public key found (expected ASCII armour)")
    return keys


def verify_opaque(blob: bytes, public_keys: List[str]) -> Verified:
    """Check an opaque signed message against the given armoured public keys."""
    if blob.lstrip().startswith(b"-----BEGIN"):
        raise ValueError("atomic signatures are binary OpenPGP signed messages, not armoured or cleartext")
    with _lock:
        gpg = _instance()
        for armored in public_keys:
            gpg.import_keys(armored)
        result = gpg.decrypt(blob)
    if not result.data:
        raise ValueError(f"not an OpenPGP signed message ({result.status or 'unreadable'})")
    fingerprint = getattr(result, "pubkey_fingerprint", None) or result.fingerprint
    return Verified(bytes(result.data), bool(result.valid), fingerprint, result.key_id, result.status or "")


def generate_signing_key(name: str) -> str:
    """A new passphrase-less ed25519 key whose primary key signs; returns its armoured secret key."""
    import gnupg
    with tempfile.TemporaryDirectory(prefix="dockless-keygen-") as home:
        temporary = gnupg.GPG(gnupghome=home)
        generated = temporary.gen_key(temporary.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign", name_real=name,
            name_email="registry@dockless.invalid", no_protection=True, expire_date=0))
        if not generated.fingerprint:
            raise RuntimeError(f"gpg could not generate a key: {generated.stderr[-300:]}")
        return temporary.export_keys(generated.fingerprint, secret=True, expect_passphrase=False)


def load_secret_key(armored_secret: str) -> Tuple[str, str]:
    """Import a secret key into this process's keyring; (fingerprint, armoured public key)."""
    with _lock:
        gpg = _instance()
        imported = gpg.import_keys(armored_secret)
        if not imported.fingerprints:
            raise RuntimeError("the registry signing key could not be imported")
        fingerprint = imported.fingerprints[0]
        return fingerprint, gpg.export_keys(fingerprint)


def sign_opaque(payload: bytes, fingerprint: str) -> bytes:
    """An opaque binary signed message (python-gnupg's sign() would clearsign by default)."""
    with _lock:
        signed = _instance().sign(payload, keyid=fingerprint, binary=True, clearsign=False, detach=False)
    if not signed.data:
        raise RuntimeError(f"gpg could not sign: {signed.status}")
    return bytes(signed.data)
