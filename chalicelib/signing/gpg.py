"""gpg through python-gnupg: one isolated GNUPGHOME (mode 0700) per process, one call at a time.

Atomic signatures are opaque (non-detached, non-cleartext) binary OpenPGP signed messages: the
payload is inside. Verifying one yields the payload and the signer's *primary* key fingerprint,
which is what trust is decided on (and what a policy's `signedBy` keys are compared with).

The process keyring only ever holds public keys (and the registry's own secret key). Which of them
a namespace trusts is not the keyring's business: callers pass the trusted keys and compare the
fingerprint a valid verification reports with them, so a key imported for one namespace never
vouches for another's images. The keyring and its gpg-agent are removed when the process exits;
in Lambda that is one home per container.
"""
from __future__ import annotations
import atexit
import collections
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

_lock = threading.Lock()
_gpg = None
# Fingerprints of the public keys already in the process keyring.
_imported: set = set()
# Valid verifications by the SHA-256 of the signature: a signature that verified with a key stays
# valid while the key is in the keyring (keys are never removed from it), so only the decision
# (is the signer trusted now?) is taken afresh. Bounded in size and age (key expiry).
VERIFIED_CACHE_SIZE = 4096
VERIFIED_CACHE_SECONDS = 600
_verified: "collections.OrderedDict[str, Tuple[float, Verified]]" = collections.OrderedDict()


class KeyRefused(ValueError):
    """An uploaded key that cannot be trusted as given (a secret key, no key, unreadable)."""


class KeyInfo(NamedTuple):
    fingerprint: str
    uids: List[str]
    algorithm: str
    length: int
    created: Optional[str]
    expires: Optional[str]
    capabilities: str
    armored: str  # this key alone, ASCII-armoured

    @property
    def primary_can_sign(self) -> bool:
        return "s" in self.capabilities  # lower case: the primary key's own capabilities


class Verified(NamedTuple):
    payload: bytes
    valid: bool  # cryptographically valid with a key in the keyring
    fingerprint: Optional[str]  # the signer's primary key fingerprint, when its key is known
    key_id: Optional[str]  # what the signature claims about its signer, known key or not
    status: str  # python-gnupg's: "signature valid", "no public key", "signature bad", …

    @property
    def bad(self) -> bool:
        """Checked and wrong: not merely uncheckable for want of the key."""
        return not self.valid and self.status != "no public key"


def _kill_agent(home: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, timeout=10)


def _remove_home(home: str) -> None:
    _kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def temporary_home() -> Iterator:
    """A python-gnupg GPG on a keyring of its own, removed with its agent afterwards."""
    import gnupg
    home = tempfile.mkdtemp(prefix="dockless-gnupg-tmp-")
    try:
        yield gnupg.GPG(gnupghome=home)
    finally:
        _remove_home(home)


def _instance():
    global _gpg
    if _gpg is None:
        import gnupg
        home = tempfile.mkdtemp(prefix="dockless-gnupg-")
        os.chmod(home, 0o700)
        atexit.register(_remove_home, home)
        _gpg = gnupg.GPG(gnupghome=home)
    return _gpg


def split_public_keys(armored: str) -> List[KeyInfo]:
    """Each public key an upload holds, on its own; secret keys are refused before any import."""
    if not armored.isascii():
        raise KeyRefused("keys are uploaded as ASCII armour (gpg --export --armor FPR)")
    if "PRIVATE KEY BLOCK" in armored:
        raise KeyRefused("that is a secret key: upload only the public key (gpg --export --armor FPR)")
    with temporary_home() as gpg:
        scanned = gpg.scan_keys_mem(armored)
        if any(key.get("type") == "sec" for key in scanned):
            raise KeyRefused("that is a secret key: upload only the public key")
        public = [key for key in scanned if key.get("type") == "pub"]
        if not public:
            raise KeyRefused("no OpenPGP public key found (expected ASCII armour)")
        gpg.import_keys(armored)
        return [KeyInfo(key["fingerprint"], list(key.get("uids", [])), str(key.get("algo")),
                        int(key.get("length") or 0), key.get("date") or None, key.get("expires") or None,
                        key.get("cap", ""), gpg.export_keys(key["fingerprint"]))
                for key in public]


def _import_missing(gpg, keys: Dict[str, str]) -> None:
    for fingerprint, armored in keys.items():
        if fingerprint not in _imported:
            gpg.import_keys(armored)
            _imported.add(fingerprint)


def verify_opaque(blob: bytes, keys: Dict[str, str]) -> Verified:
    """Check an opaque signed message, with `keys` (fingerprint -> armoured public key) in the
    keyring. `valid` says the bytes verify with *some* key there: the caller decides whether
    `fingerprint` is one it trusts."""
    if blob.lstrip().startswith(b"-----BEGIN"):
        raise ValueError("atomic signatures are binary OpenPGP signed messages, not armoured or cleartext")
    cache_key = hashlib.sha256(blob).hexdigest()
    with _lock:
        cached = _verified.get(cache_key)
        if cached is not None and time.monotonic() - cached[0] < VERIFIED_CACHE_SECONDS:
            _verified.move_to_end(cache_key)
            return cached[1]
        gpg = _instance()
        _import_missing(gpg, keys)
        result = gpg.decrypt(blob)
        if not result.data:
            raise ValueError(f"not an OpenPGP signed message ({result.status or 'unreadable'})")
        checked = Verified(bytes(result.data), bool(result.valid),
                           getattr(result, "pubkey_fingerprint", None) if result.valid else None,
                           result.key_id, result.status or "")
        if checked.valid:
            _verified[cache_key] = (time.monotonic(), checked)
            while len(_verified) > VERIFIED_CACHE_SIZE:
                _verified.popitem(last=False)
    return checked


def generate_signing_key(name: str) -> str:
    """A new passphrase-less ed25519 key whose primary key signs; returns its armoured secret key."""
    with temporary_home() as gpg:
        generated = gpg.gen_key(gpg.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign", name_real=name,
            name_email="registry@dockless.invalid", no_protection=True, expire_date=0))
        if not generated.fingerprint:
            raise RuntimeError(f"gpg could not generate a key: {generated.stderr[-300:]}")
        return gpg.export_keys(generated.fingerprint, secret=True, expect_passphrase=False)


def load_secret_key(armored_secret: str) -> Tuple[str, str]:
    """Import a secret key into this process's keyring; (fingerprint, armoured public key)."""
    with _lock:
        gpg = _instance()
        imported = gpg.import_keys(armored_secret)
        if not imported.fingerprints:
            raise RuntimeError("the registry signing key could not be imported")
        fingerprint = imported.fingerprints[0]
        _imported.add(fingerprint)
        return fingerprint, gpg.export_keys(fingerprint)


def sign_opaque(payload: bytes, fingerprint: str) -> bytes:
    """An opaque binary signed message (python-gnupg's sign() would clearsign by default)."""
    with _lock:
        signed = _instance().sign(payload, keyid=fingerprint, binary=True, clearsign=False, detach=False)
    if not signed.data:
        raise RuntimeError(f"gpg could not sign: {signed.status}")
    return bytes(signed.data)
