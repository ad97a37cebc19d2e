"""The CBOR decoder COSE envelopes are read with (chalicelib/signing/cbor.py), against RFC 8949's
Appendix A examples, what it refuses, and COSE's Sig_structure as cbor2 encodes it."""
import cbor2
import pytest

from chalicelib.signing import cbor

# RFC 8949, Appendix A: (diagnostic value, encoding in hex).
VECTORS = [
    (0, "00"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"), (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"), (18446744073709551615, "1bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"), ("IETF", "6449455446"),
    ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (cbor.Tagged(1, 1363896240), "c11a514b67b0"), (cbor.Tagged(24, b"\x64\x49\x45\x54\x46"), "d818456449455446"),
]


@pytest.mark.parametrize("value, encoded", VECTORS)
def test_the_rfc_examples_decode(value, encoded):
    assert cbor.decode(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("encoded, why", [
    ("9f018202039f0405ffff", "indefinite lengths"), ("5f42010243030405ff", "indefinite strings"),
    ("f93c00", "floats"), ("fb3ff199999999999a", "floats"), ("f0", "other simple values"),
    ("1a000f42", "a truncated integer"), ("4401020304ff", "bytes after the item"), ("64494554", "a truncated string"),
    ("9b00000000ffffffff", "an array longer than its bytes"), ("a2010203", "a map without its last value"),
    ("62c328", "a text string that is not UTF-8"), ("a18101", "an array as a map key"),
    ("81" * 40 + "00", "nesting past the limit"), ("1c", "a reserved additional value"),
])
def test_what_it_does_not_read_is_refused(encoded, why):
    with pytest.raises(cbor.Malformed):
        cbor.decode(bytes.fromhex(encoded))


@pytest.mark.parametrize("payload", [b"", b"{}", b"x" * 23, b"x" * 24, b"x" * 300, b"x" * 70000])
def test_the_sig_structure_is_what_cbor2_encodes(payload):
    protected = cbor2.dumps({1: -7})
    assert cbor.sig_structure(protected, payload) == cbor2.dumps(["Signature1", protected, b"", payload])
