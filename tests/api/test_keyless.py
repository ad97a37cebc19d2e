"""Keyless cosign signatures (chalicelib/signing/keyless.py), in process: a namespace imports a
sigstore trusted root and trusts keyless identities; verified mode then serves an image a
certificate for a trusted identity signed, checked offline (the log's signed entry timestamp, the
log entry, the certificate chain and validity, the identity), and nothing less. The signatures are
made by tests/sigstore.py from the specifications, as cosign writes them."""
import base64
import json
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from chalicelib.backend import backend
from chalicelib.metadata.models import SigningKey
from chalicelib.policy.settings import SettingsService
from chalicelib.signing import cosign
from tests.api.test_cosign import payload
from tests.api.test_verified import HOST, get
from tests.fixtures import OCI_MANIFEST, error_code
from tests.sigstore import ISSUER, NOW, Sigstore

TEXT = {"Content-Type": "text/plain"}
SUBJECT = "https://github.test/acme/app/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture(scope="module")
def sigstore():
    return Sigstore()


def trust(client, namespace, body):
    answer = client.put(f"/dockless/admin/v1/keys/{namespace}", body=body, headers=TEXT)
    assert answer.status_code == 201, answer.body
    return json.loads(answer.body)["keys"][0]


@pytest.fixture
def trusted(client, sigstore):
    """Namespace team trusts the sigstore's root and release.yml on main of any acme repository."""
    root = trust(client, "team", sigstore.trusted_root())
    identity = trust(client, "team", json.dumps({"issuer": ISSUER, "subject": "https://github.test/acme/*@refs/heads/main"}))
    return root, identity


def push_keyless(push, repo, digest, *layers):
    """The `.sig` manifest cosign pushes: one simple-signing layer per (payload, annotations)."""
    config = push.blob(repo, b"{}")
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [
        dict(push.blob(repo, body), mediaType=cosign.SIMPLE_SIGNING, annotations=annotations)
        for body, annotations in layers]}
    answer = push.manifest(repo, cosign.signature_tag(digest), json.dumps(document).encode())
    assert answer.status_code == 201, answer.body


def test_a_trusted_root_and_identity_are_kept_listed_published_and_audited(client, anonymous, sigstore, trusted):
    root, identity = trusted
    assert (root["kind"], root["algorithm"]) == ("sigstore-trusted-root", "sigstore-trusted-root")
    assert (identity["kind"], identity["uids"]) == (
        "keyless-identity", [f"https://github.test/acme/*@refs/heads/main ({ISSUER})"])
    listed = json.loads(anonymous.get("/keys/team").body)["keys"]
    assert sorted(k["kind"] for k in listed) == ["keyless-identity", "sigstore-trusted-root"]
    published = anonymous.get(f"/keys/team/{root['fingerprint']}.json")
    assert published.status_code == 200 and published.headers["Content-Type"] == "application/json"
    assert json.loads(published.body) == json.loads(sigstore.trusted_root())
    assert json.loads(anonymous.get(f"/keys/team/{identity['fingerprint']}.json").body) == {
        "issuer": ISSUER, "subject": "https://github.test/acme/*@refs/heads/main"}
    # Neither is a key: the OpenPGP keyring and cosign.pub hold nothing, .asc/.pub do not serve them.
    assert anonymous.get("/keys/team/KEYS").body == b"" and anonymous.get("/keys/team/cosign.pub").body == b""
    assert anonymous.get(f"/keys/team/{root['fingerprint']}.pub").status_code == 404
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert sorted((e["reference"], e["detail"]["format"]) for e in events if e["action"] == "key.add") == sorted(
        [(root["fingerprint"], "sigstore-trusted-root"), (identity["fingerprint"], "keyless-identity")])


@pytest.mark.parametrize("body, said", [
    ('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}', "at least one of tlogs"),
    ('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [{"publicKey": '
     '{"rawBytes": "bm90IGEga2V5", "validFor": {"start": "2025-01-01T00:00:00Z"}}}]}', "not a DER public key"),
    ('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [], '
     '"certificateAuthorities": [{"certChain": {"certificates": [{"rawBytes": "%%%"}]}}]}', "rawBytes must be base64"),
    ('{"issuer": "https://issuer.test", "subject": "*"}', "not only *"),
    ('{"issuer": "not a url", "subject": "me@example.test"}', "issuer must be"),
    ('{"issuer": "https://issuer.test", "subject": "me@example.test", "also": 1}', "a keyless identity is"),
    ('{"issuer": ', "not JSON"),
])
def test_a_malformed_root_or_identity_is_refused_and_nothing_is_kept(client, state, body, said):
    before = state()
    refused = client.put("/dockless/admin/v1/keys/team", body=body, headers=TEXT)
    assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert said in json.loads(refused.body)["errors"][0]["message"]
    assert state() == before


def test_verified_mode_serves_what_a_trusted_identity_signed_keylessly(client, anonymous, clock, push, sigstore,
                                                                       trusted):
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
    assert refused.status_code == 403 and error_code(refused) == "DENIED"
    signed = payload(digest, f"{HOST}/team/app")
    push_keyless(push, "team/app", digest, (signed, sigstore.sign(signed, SUBJECT)))
    for path in ("/v2/team/app/manifests/v1", f"/v2/team/app/manifests/{digest}"):
        assert get(anonymous, clock, path).status_code == 200
        assert get(anonymous, clock, path, "HEAD").status_code == 200
    # Withdrawing the identity, or the root, withdraws the signature at once.
    root, identity = trusted
    assert client.delete(f"/dockless/admin/v1/keys/team/{identity['fingerprint']}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    trust(client, "team", json.dumps({"issuer": ISSUER, "subject": SUBJECT}))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200
    assert client.delete(f"/dockless/admin/v1/keys/team/{root['fingerprint']}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403


def _hostile(sigstore, digest, other):
    """Keyless signatures that exist but must not count, each wrong in one way."""
    good = payload(digest, f"{HOST}/team/app")
    stranger = Sigstore()
    forged_log = ec.generate_private_key(ec.SECP256R1())
    return {
        "for another digest": (payload(other, f"{HOST}/team/app"), sigstore.sign(payload(other, f"{HOST}/team/app"), SUBJECT)),
        "naming another repository": (payload(digest, f"{HOST}/team/other"),
                                      sigstore.sign(payload(digest, f"{HOST}/team/other"), SUBJECT)),
        "an identity nobody trusts": (good, sigstore.sign(good, "https://github.test/mallory/app/x.yml@refs/heads/main")),
        "another branch": (good, sigstore.sign(good, "https://github.test/acme/app/x.yml@refs/heads/dev")),
        "another issuer": (good, sigstore.sign(good, SUBJECT, issuer="https://issuer.elsewhere.test")),
        "another sigstore's certificate and log": (good, stranger.sign(good, SUBJECT)),
        "a certificate from an authority outside the root": (good, sigstore.sign(
            good, SUBJECT, authority=(stranger.intermediate, stranger.intermediate_key))),
        "logged after the certificate expired": (good, sigstore.sign(good, SUBJECT, integrated=int(
            (NOW + timedelta(minutes=11)).timestamp()))),
        "logged before the certificate began": (good, sigstore.sign(good, SUBJECT, integrated=int(
            (NOW - timedelta(minutes=1)).timestamp()))),
        "a certificate not for code signing": (good, sigstore.sign(good, SUBJECT, usage=ExtendedKeyUsageOID.SERVER_AUTH)),
        "a log entry for another payload": (good, sigstore.sign(good, SUBJECT, entry_payload=b"other bytes")),
        "a signed entry timestamp by another key": (good, sigstore.sign(good, SUBJECT, log_key=forged_log)),
        "a signature the certificate did not make": (good, sigstore.sign(
            good, SUBJECT, signature=ec.generate_private_key(ec.SECP256R1()).sign(good, ec.ECDSA(hashes.SHA256())))),
    }


def test_a_keyless_signature_that_does_not_verify_counts_as_none(client, anonymous, clock, push, sigstore, trusted):
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"something else",))
    SettingsService(backend()).change("team", verified=True)
    hostile = _hostile(sigstore, digest, other)
    good = payload(digest, f"{HOST}/team/app")
    made = sigstore.sign(good, SUBJECT)
    # A SET that verified, over a time changed afterwards; the bundle's bytes mangled.
    bundle = json.loads(made[cosign.BUNDLE_ANNOTATION])
    bundle["Payload"]["integratedTime"] += 1
    hostile["an integrated time changed after logging"] = (good, dict(made, **{cosign.BUNDLE_ANNOTATION: json.dumps(bundle)}))
    hostile["a bundle that is not JSON"] = (good, dict(made, **{cosign.BUNDLE_ANNOTATION: "{"}))
    hostile["a certificate that is not PEM"] = (good, dict(made, **{cosign.CERTIFICATE_ANNOTATION: "-----BEGIN"}))
    for why, layer in hostile.items():
        push_keyless(push, "team/app", digest, layer)
        assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403, why
    # One good layer among them all is enough.
    push_keyless(push, "team/app", digest, *hostile.values(), (good, made))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def stamped(sigstore, made: dict, at, authority=None) -> dict:
    """The layer `cosign sign --timestamp-server-url` writes: the annotations and a TSA's timestamp
    of the signature (its raw bytes), at `at`, by `authority` (a tests.sigstore.TimestampAuthority)."""
    response = (authority or sigstore.tsa).stamp(base64.b64decode(made[cosign.SIGNATURE_ANNOTATION]), at)
    return dict(made, **{cosign.TIMESTAMP_ANNOTATION: json.dumps(
        {"SignedRFC3161Timestamp": base64.b64encode(response).decode()})})


def test_a_timestamp_beside_the_log_entry_must_find_the_certificate_valid_too(client, anonymous, clock, push,
                                                                             sigstore, trusted):
    from tests.sigstore import NOW, TimestampAuthority
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    good = payload(digest, f"{HOST}/team/app")
    made = sigstore.sign(good, SUBJECT)
    for why, layer in {"stamped after the certificate expired": stamped(sigstore, made, NOW + timedelta(minutes=20)),
                       "stamped before it was issued": stamped(sigstore, made, NOW - timedelta(minutes=5))}.items():
        push_keyless(push, "team/app", digest, (good, layer))
        assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403, why
    # A timestamp nobody trusts dates nothing, so the log's time alone decides; one in the window agrees.
    for layer in (stamped(sigstore, made, NOW + timedelta(minutes=20), TimestampAuthority()),
                  stamped(sigstore, made, NOW + timedelta(minutes=1))):
        push_keyless(push, "team/app", digest, (good, layer))
        assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_the_chain_cosign_writes_beside_the_certificate_is_not_trusted(client, anonymous, clock, push, sigstore,
                                                                       trusted):
    """A signer who makes its own authority and writes it as the chain annotation gains nothing:
    only the trusted root's authorities count."""
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    own = Sigstore()
    signed = payload(digest, f"{HOST}/team/app")
    made = own.sign(signed, SUBJECT)
    made["dev.sigstore.cosign/chain"] = sigstore.sign(signed, SUBJECT)["dev.sigstore.cosign/chain"]
    push_keyless(push, "team/app", digest, (signed, made))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403


def test_an_identity_without_a_root_trusts_nothing(client, anonymous, clock, push, sigstore):
    trust(client, "team", json.dumps({"issuer": ISSUER, "subject": SUBJECT}))
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    signed = payload(digest, f"{HOST}/team/app")
    push_keyless(push, "team/app", digest, (signed, sigstore.sign(signed, SUBJECT)))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    # Another namespace's root does not count for this one.
    trust(client, "elsewhere", sigstore.trusted_root())
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    assert [k.algorithm for k in SigningKey.query("team")] == ["keyless-identity"]


def signature_rows(anonymous, people, signature_format):
    """(signed by, badge) of each row of that format on team/app:v1's console page, as a reader sees it."""
    from tests.api.test_console import Browser
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/tag?name=team/app&tag=v1").body.decode()
    return re.findall(rf"<tr>\s*<td>{signature_format}</td>\s*<td><code>([^<]+)</code></td>\s*"
                      r"<td><span class=\"badge (\w+)\">", page)


def test_the_console_lists_keyless_signatures_with_their_certificate(anonymous, push, people, sigstore, trusted):
    _, digest = push.image("team/app", "v1")
    signed = payload(digest, f"{HOST}/team/app")
    push_keyless(push, "team/app", digest, (signed, sigstore.sign(signed, SUBJECT)),
                 (signed, sigstore.sign(signed, "mallory@example.test")))
    rows = signature_rows(anonymous, people, "cosign-keyless")
    assert sorted(rows) == sorted([(f"{SUBJECT} ({ISSUER})", "trusted"), (f"mallory@example.test ({ISSUER})", "untrusted")])


# cosign's SIGNATURE_SPEC.md, its example bundle: the public Rekor's signed entry timestamp of a
# real log entry (a published test vector), and that log's key as sigstore's trusted root lists it.
SPEC_BUNDLE = {"SignedEntryTimestamp": "MEUCIQDHiGUesxPpn+qRONLmKlNIVPhl9gBMnwNeIQmRkRmZVQIgRxPpuYQDZR/8lYKcEfiQn5b+7VDoJIC72ZWHO9ZCp1A=",
               "Payload": {"body": "eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJzcGVjIjp7ImRhdGEiOnsiaGFzaCI6eyJhbGdvcml0aG0iOiJzaGEyNTYiLCJ2YWx1ZSI6ImE0NDkyYjBlYWJkZDIzMTJmMDYzMjkwYWJkNzk3ZDlkNzFhM2FiMjhiZDY1YTJjMTg5YjBkZjBkMzliOGMzYjkifX0sInNpZ25hdHVyZSI6eyJjb250ZW50IjoiTUVRQ0lDTmRYeTNiWHAxRE1PTDZOUGZYMzVnSjI3YnpsZHdTdkNBTnd5ZE9RVWlqQWlCQWg5WlJwQ3AzYlg5eE9UbEhTR2w0cFVGd0ZtUFJJWGZpY09pRTBHM1Vzdz09IiwiZm9ybWF0IjoieDUwOSIsInB1YmxpY0tleSI6eyJjb250ZW50IjoiTFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2sxSlNVTmxla05EUVdkRFowRjNTVUpCWjBsVVZISk9aa013YkZSSmRWSXZWR0UyWm14MWFtdFFOWHBaTDFSQlMwSm5aM0ZvYTJwUFVGRlJSRUY2UVhFS1RWSlZkMFYzV1VSV1VWRkxSWGQ0ZW1GWFpIcGtSemw1V2xNMWExcFlXWGhGVkVGUVFtZE9Wa0pCVFZSRFNFNXdXak5PTUdJelNteE5RalJZUkZSSmVBcE5SRmw1VFdwSmVFMUVaM2RPUm05WVJGUkplRTFFV1hsTmFrbDRUV3BuZDAweGIzZEJSRUphVFVKTlIwSjVjVWRUVFRRNVFXZEZSME5EY1VkVFRUUTVDa0YzUlVoQk1FbEJRazFGV1M4ck4yRktjRmRLVFhjNWVrTmljMDFrT0hOQlRUTmxSbk5OTjBSbFpFZGlXRzlNUjJ4YUwyZHBNR2h5WTBaU1NWVTRiM2NLUzBKeU1ISkVTRE5QVkZaSWJVdFVZMkV2SzIweGQxQjNTVzlZTTFGUVYycG5aMFYwVFVsSlFrdFVRVTlDWjA1V1NGRTRRa0ZtT0VWQ1FVMURRalJCZHdwRmQxbEVWbEl3YkVKQmQzZERaMWxKUzNkWlFrSlJWVWhCZDAxM1JFRlpSRlpTTUZSQlVVZ3ZRa0ZKZDBGRVFXUkNaMDVXU0ZFMFJVWm5VVlZ5WVRoTENuSnJaMjAzVGtsNFRrNXBVMkpZVG00eFdFVkxhRzFyZDBoM1dVUldVakJxUWtKbmQwWnZRVlY1VFZWa1FVVkhZVXBEYTNsVlUxUnlSR0UxU3pkVmIwY0tNQ3QzZDJkWk1FZERRM05IUVZGVlJrSjNSVUpDU1VkQlRVZzBkMlpCV1VsTGQxbENRbEZWU0UxQlMwZGpSMmd3WkVoQk5reDVPWGRqYld3eVdWaFNiQXBaTWtWMFdUSTVkV1JIVm5Wa1F6QXlUVVJPYlZwVVpHeE9lVEIzVFVSQmQweFVTWGxOYW1OMFdXMVpNMDVUTVcxT1Ixa3hXbFJuZDFwRVNUVk9WRkYxQ21NelVuWmpiVVp1V2xNMWJtSXlPVzVpUjFab1kwZHNla3h0VG5aaVV6bHFXVlJOTWxsVVJteFBWRmw1VGtSS2FVOVhXbXBaYWtVd1RtazVhbGxUTldvS1kyNVJkMHBCV1VSV1VqQlNRVkZJTDBKQ2IzZEhTVVZYWTBoS2NHVlhSak5aVjFKdlpESkdRVm95T1haYU1uaHNURzFPZG1KVVFVdENaMmR4YUd0cVR3cFFVVkZFUVhkT2NFRkVRbTFCYWtWQk1UQlVSR015Wm1oUFZrRlVNWFJzZFM4MmMzWnhSbEZ1YkRaWU9YZGhNbXRUU2t0RGJqUkZZbFJFYTNwYVJYb3lDblppUWtwb2FFZ3ZjbWRXUjFKMU5tWkJha1ZCYkhsb05uUmhZelJZVFRaS2IzVlZlRWtyTjFnelFtUTFXVXR5WlRGS1dFOWhia0ZaYW1adldHNTVUSFFLZDNCSVFWb3paVzFhY0VWa00yeHFTVEF3Vm04S0xTMHRMUzFGVGtRZ1EwVlNWRWxHU1VOQlZFVXRMUzB0TFFvPSJ9fX0sImtpbmQiOiJyZWtvcmQifQ==",
                           "integratedTime": 1624396085, "logIndex": 5179,
                           "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}
REKOR_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/"
             "9A/bY2LhC30M9+RYtw==")


def test_the_specifications_example_entry_timestamp_verifies_with_rekors_key(sigstore):
    import base64
    from chalicelib.signing import keyless
    document = json.loads(sigstore.trusted_root())
    document["tlogs"][0]["publicKey"] = {"rawBytes": REKOR_KEY, "validFor": {"start": "2021-01-12T11:53:27.000Z"}}
    document["tlogs"][0]["logId"] = {"keyId": base64.b64encode(bytes.fromhex(SPEC_BUNDLE["Payload"]["logID"])).decode()}
    root = keyless.parse_root(json.dumps(document))
    promise = base64.b64decode(SPEC_BUNDLE["SignedEntryTimestamp"])
    when, body = keyless.logged_at(SPEC_BUNDLE["Payload"], promise, [root])
    assert when == 1624396085 and body["kind"] == "rekord"
    # One unit off in any field the SET covers, and it proves nothing.
    for field, changed in (("integratedTime", 1624396086), ("logIndex", 5180)):
        assert keyless.logged_at(dict(SPEC_BUNDLE["Payload"], **{field: changed}), promise, [root]) is None
    assert keyless.logged_at(SPEC_BUNDLE["Payload"], promise, [keyless.parse_root(sigstore.trusted_root())]) is None
