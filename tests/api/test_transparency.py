"""The pieces Rekor v2 bundles are checked with, alone: DER as it is read (chalicelib/signing/der.py),
RFC 6962 audit paths against the tree's recursive definition, signed checkpoints
(signing/transparency.py) and RFC 3161 responses (signing/timestamps.py) that must date nothing."""
import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.signing import der, keyless, timestamps, transparency
from chalicelib.signing.keyless import Authority, LogKey, Window
from tests.sigstore import NOW, Log, TimestampAuthority, audit_path, tree_hash


@pytest.mark.parametrize("encoded, why", [
    ("3080020100" "0000", "an indefinite length"), ("30810102" "01", "a length not in its shortest form"),
    ("020100" "00", "bytes after the element"), ("3005020100", "a length past the end"), ("30", "truncated"),
    ("1f2001" "00", "a multi-byte tag"), ("3085" + "00" * 5, "a length of five bytes"),
])
def test_what_is_not_der_is_refused(encoded, why):
    with pytest.raises(der.DerError):
        der.read(bytes.fromhex(encoded))


def test_der_elements_read_back():
    element = der.read(bytes.fromhex("3008" "020101" "06032a8648"))
    number, oid = element.children()
    assert (number.integer(), oid.oid()) == (1, "1.2.840")  # 42 = 1 * 40 + 2, then 0x86 0x48: 840
    assert der.read(b"\x18\x0f20261201120000Z").generalized_time() == NOW.timestamp()
    with pytest.raises(der.DerError):
        der.read(b"\x18\x0d261201120000Z").generalized_time()  # UTCTime's form, not DER's GeneralizedTime


def test_every_audit_path_leads_to_its_tree_root_and_no_other():
    for size in range(1, 18):
        leaves = [b"entry %d" % n for n in range(size)]
        root = tree_hash(leaves)
        for index in range(size):
            path = audit_path(index, leaves)
            leaf = transparency.leaf_hash(leaves[index])
            assert transparency.root_from_path(leaf, index, size, path) == root, (size, index)
            assert transparency.root_from_path(leaf, index, size, path + [root]) is None
            if path:
                assert transparency.root_from_path(leaf, index, size, path[:-1]) != root
            if size > 1:
                assert transparency.root_from_path(leaf, (index + 1) % size, size, path) != root
        assert transparency.root_from_path(transparency.leaf_hash(b"x"), size, size, []) is None


def test_a_checkpoint_counts_only_signed_by_a_trusted_key_and_well_formed():
    log = Log()
    root = hashlib.sha256(b"root").digest()
    good = log.checkpoint(9, root)
    trusted = LogKey(hashlib.sha256(log.public_der).digest(), log.key.public_key(), Window(0, None))
    assert transparency._checkpoint(good, trusted) == (9, root)
    assert transparency._checkpoint(good, trusted._replace(key=ed25519.Ed25519PrivateKey.generate().public_key())) is None
    # The line that counts is the one whose hint is the log's id: a right signature under another hint does not.
    assert transparency._checkpoint(good, trusted._replace(key_id=bytes(32))) is None
    note, _, signature = good.partition("\n\n")
    for why, hostile in {
        "the size changed after signing": good.replace("\n9\n", "\n10\n"),
        "no blank line before the signatures": good.replace("\n\n", "\n"),
        "a signature line without its mark": note + "\n\n" + signature[2:],
        "a signature too short for its hint": note + "\n\n\u2014 name " + base64.b64encode(b"abc").decode() + "\n",
        "a note too big to read": note + "\n\n" + signature * 200,
    }.items():
        assert transparency._checkpoint(hostile, trusted) is None, why


def test_a_timestamp_that_is_not_one_dates_nothing():
    tsa = TimestampAuthority()
    authority = Authority((tsa.certificate, tsa.root), Window(0, None))
    good = tsa.stamp(b"signature", NOW)
    assert timestamps.verified_time(good, b"signature", [authority]) == NOW.timestamp()
    assert timestamps.verified_time(good, b"another signature", [authority]) is None
    assert timestamps.verified_time(good, b"signature", [Authority((tsa.certificate, tsa.root),
                                                                   Window(NOW.timestamp() + 1, None))]) is None
    refused = bytearray(good)
    refused[refused.index(bytes.fromhex("3003020100")) + 4] = 2  # PKIStatus rejection
    flipped = bytearray(good)
    flipped[-10] ^= 1  # a byte of the signature
    for hostile in (bytes(refused), bytes(flipped), good[:-1], good + b"\x00", b"", b"\x30\x00",
                    b"\x30\x84\x7f\xff\xff\xff" + bytes(16)):
        assert timestamps.verified_time(hostile, b"signature", [authority]) is None


# --- fuzz: whatever bytes come in, these read them as nothing, never raise (bounded by the
# hypothesis profile: tests/conftest.py)

def _mutated(data: bytes, edits) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def made():
    from tests.sigstore import Sigstore
    sigstore = Sigstore()
    notary_authority = TimestampAuthority()
    return {"sigstore": sigstore, "root": keyless.parse_root(sigstore.trusted_root()),
            "response": sigstore.tsa.stamp(b"signature", NOW),
            "token": notary_authority.notation_token(b"signature", NOW), "tsa": notary_authority,
            "bundle": sigstore.v2_bundle("me@example.test", digest="sha256:" + "a" * 64)}


@pytest.mark.fuzz
@given(edits=EDITS)
def test_a_mangled_timestamp_dates_nothing_and_raises_nothing(made, edits):
    authority = Authority((made["sigstore"].tsa.certificate, made["sigstore"].tsa.root), Window(0, None))
    moment = timestamps.verified_time(_mutated(made["response"], edits), b"signature", [authority])
    assert moment in (None, NOW.timestamp())
    stamped = timestamps.trusted_range(_mutated(made["token"], edits), b"signature", [made["tsa"].root])
    assert stamped in (None, (NOW.timestamp(), NOW.timestamp()))


@pytest.mark.fuzz
@given(edits=EDITS)
def test_a_mangled_bundle_proves_nothing_it_should_not_and_raises_nothing(made, edits):
    from chalicelib.signing import bundles
    bundle = bundles.parse(_mutated(made["bundle"], edits))
    proof = bundles.keyless_proof(bundle, [made["root"]]) if bundle is not None else None
    assert proof is None or proof.subjects == ("me@example.test",)


@pytest.mark.fuzz
@given(edits=EDITS, cose=st.booleans())
def test_a_mangled_notation_envelope_verifies_as_nothing_and_raises_nothing(made, edits, cose):
    from chalicelib.signing import notation
    from tests.notary import Notary, cose_envelope
    notary = made.setdefault("notary", Notary())
    digest = "sha256:" + "b" * 64
    token = (lambda signature: made["tsa"].notation_token(signature, NOW))
    envelope = cose_envelope(notary, digest, stamp=token) if cose else notary.envelope(digest, stamp=token)
    parsed = notation.parse_any(notation.COSE if cose else notation.JWS, _mutated(envelope, edits))
    root = notation.Root("ROOT", notary.root_pem, "")
    tsa = notation.Root("TSA", made["tsa"].root.public_bytes(Encoding.PEM).decode(), "")
    stores = notation.TrustStores((root,), (tsa,))
    assert parsed is None or notation.verify(parsed, stores, digest, NOW.timestamp()) in (None, "ROOT")
