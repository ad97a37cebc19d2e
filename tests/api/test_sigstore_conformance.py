"""sigstore-conformance's bundle verification cases (tests/vectors/sigstore-conformance), run
through what verified mode uses (chalicelib/signing/bundles.py): real bundles from Sigstore's
public-good and staging instances, Rekor v1 (signed entry timestamps) and Rekor v2 (inclusion
proofs, checkpoints, RFC 3161 timestamps), and the hostile variants the suite names `*_fail`.

A case passes when its bundle's signature verifies against the case's trusted root (or the
production one), for the case's identity (or the suite's default), over its artifact: for a
message signature the digest it vouches for, for a DSSE envelope a subject of its statement (the
registry itself counts only cosign's signing predicate; the suite's envelopes are attestations).
"""
import base64
import hashlib
import json
from pathlib import Path

import pytest

from chalicelib.signing import bundles, cosign, keyless

VECTORS = Path(__file__).parent.parent / "vectors" / "sigstore-conformance"
CASES = VECTORS / "bundle-verify"
IDENTITY = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/" \
           "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
# What dockless does not read, and so decides otherwise than the suite.
NOT_READ = {
    "intoto-with-custom-trust-root": "`intoto` log entries (cosign attest's former kind) are not read: "
                                     "an attestation is no signature to verified mode",
}


def _read(case: Path, name: str, default=None):
    path = case / name
    return path.read_bytes() if path.exists() else default


def _verifies(case: Path) -> bool:
    root_text = _read(case, "trusted_root.json", (VECTORS / "trusted_root.production.json").read_bytes()).decode()
    try:
        roots = [keyless.parse_root(root_text)]
    except keyless.TrustRefused:
        return False
    bundle = bundles.parse(_read(case, "bundle.sigstore.json"))
    if bundle is None:
        return False
    keys = {}
    if _read(case, "key.pub"):
        try:  # as `dockless key add` reads it
            keys = {info.fingerprint: info.pem for info in cosign.public_keys(_read(case, "key.pub").decode())}
        except cosign.KeyRefused:
            return False
    identity = keyless.Identity("conformance", _read(case, "issuer", ISSUER.encode()).decode().strip(),
                                _read(case, "identity", IDENTITY.encode()).decode().strip())
    if bundles.signer(bundle, keys, [] if keys else roots, [identity]) is None:
        return False
    artifact = hashlib.sha256(_read(case, "artifact") or (CASES / "a.txt").read_bytes()).hexdigest()
    if bundle.dsse_payload is None:
        return bundle.vouched_digest == f"sha256:{artifact}"
    return any(subject["digest"].get("sha256") == artifact for subject in json.loads(bundle.dsse_payload)["subject"])


@pytest.mark.parametrize("name", sorted(case.name for case in CASES.iterdir() if case.is_dir()))
def test_each_conformance_case_is_decided_as_the_suite_says(name):
    expected = not name.endswith("_fail")
    if name in NOT_READ:
        expected = not expected
    assert _verifies(CASES / name) == expected, _read(CASES / name, "README", b"").decode()


def _with_root(tmp_path, case: str, change) -> Path:
    """A copy of `case` whose trusted root (the production one if it has none) `change` edits."""
    copy = tmp_path / case
    copy.mkdir()
    (copy / "bundle.sigstore.json").write_bytes((CASES / case / "bundle.sigstore.json").read_bytes())
    root = json.loads(_read(CASES / case, "trusted_root.json", (VECTORS / "trusted_root.production.json").read_bytes()))
    change(root)
    (copy / "trusted_root.json").write_text(json.dumps(root))
    return copy


def test_a_certificate_counts_only_with_a_timestamp_from_a_trusted_ct_log(tmp_path):
    """happy-path-v0.3's certificate carries one SCT, of 2024-03-19, by the production CT log."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    stranger = base64.b64encode(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

    def every_ct_log(change):
        return lambda root: [change(log) for log in root["ctlogs"]]

    refused = {
        "the CT log's key no longer valid then": every_ct_log(
            lambda log: log["publicKey"]["validFor"].update(end="2024-03-19T17:26:26Z")),
        "the CT log's key not yet valid then": every_ct_log(
            lambda log: log["publicKey"]["validFor"].update(start="2024-03-19T17:26:27Z")),
        "another key under the CT log's id": every_ct_log(lambda log: log["publicKey"].update(rawBytes=stranger)),
        "only CT logs of other ids": every_ct_log(lambda log: log.update(logId={"keyId": base64.b64encode(
            bytes(32)).decode()})),
    }
    assert _verifies(_with_root(tmp_path, "happy-path-v0.3", lambda root: None))
    for index, (why, change) in enumerate(refused.items()):
        (tmp_path / str(index)).mkdir()
        assert not _verifies(_with_root(tmp_path / str(index), "happy-path-v0.3", change)), why
    # A root without CT logs (a private instance without one) asks for no SCT.
    assert _verifies(_with_root(tmp_path, "rekor2-happy-path", lambda root: root.update(ctlogs=[])))
    assert not _verifies(_with_root(tmp_path / "0", "rekor2-happy-path", every_ct_log(
        lambda log: log["publicKey"].update(rawBytes=stranger))))
