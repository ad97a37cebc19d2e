"""Notation signatures (chalicelib/signing/notation.py), in process: a namespace's trust store holds
root certificates (`dockless key add NS root.crt`); verified mode serves an image a notation JWS
signature vouches for when its chain ends in a trusted root, and nothing less. Envelopes are made
by tests/notary.py from the Notary Project's specifications."""
import json
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from chalicelib.backend import backend
from chalicelib.policy.settings import SettingsService
from tests.api.test_keyless import TEXT, signature_rows, trust
from tests.api.test_verified import get
from tests.fixtures import error_code
from tests.notary import Notary, attach, cose_envelope
from tests.sigstore import TimestampAuthority

PEM = Encoding.PEM


@pytest.fixture(scope="module")
def notary():
    return Notary()


@pytest.fixture
def trusted(client, notary):
    return trust(client, "team", notary.root_pem)


def test_a_root_certificate_is_kept_listed_published_and_audited(client, anonymous, notary, trusted):
    assert (trusted["kind"], trusted["uids"]) == ("x509-root", [notary.root.subject.rfc4514_string()])
    published = anonymous.get(f"/keys/team/{trusted['fingerprint']}.crt")
    assert published.status_code == 200 and published.body.decode() == notary.root_pem
    assert anonymous.get("/keys/team/KEYS").body == b"" and anonymous.get("/keys/team/cosign.pub").body == b""
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert [(e["reference"], e["detail"]) for e in events if e["action"] == "key.add"] == [
        (trusted["fingerprint"], {"format": "x509-root"})]


def test_a_leaf_certificate_or_garbage_is_refused_and_nothing_is_kept(client, state, notary):
    from cryptography.hazmat.primitives import serialization
    before = state()
    leaf = notary.leaf.public_bytes(serialization.Encoding.PEM).decode()
    refused = client.put("/dockless/admin/v1/keys/team", body=leaf, headers=TEXT)
    assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert "is not a certificate authority" in json.loads(refused.body)["errors"][0]["message"]
    garbage = client.put("/dockless/admin/v1/keys/team", headers=TEXT,
                         body="-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n")
    assert garbage.status_code == 400 and "not a PEM certificate" in json.loads(garbage.body)["errors"][0]["message"]
    assert state() == before


@pytest.mark.parametrize("key", [lambda: ec.generate_private_key(ec.SECP256R1()),
                                 lambda: ec.generate_private_key(ec.SECP384R1()),
                                 lambda: rsa.generate_private_key(65537, 2048)])
@pytest.mark.parametrize("envelope_type", ["application/jose+json", "application/cose"])
def test_verified_mode_serves_what_a_trusted_notation_signature_vouches_for(client, anonymous, clock, push, key,
                                                                            envelope_type):
    signer = Notary(key())
    trust(client, "team", signer.root_pem)
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    envelope = signer.envelope(digest) if envelope_type.endswith("json") else cose_envelope(signer, digest)
    referrer = attach(push, "team/app", digest, envelope, envelope_type)
    for path in ("/v2/team/app/manifests/v1", f"/v2/team/app/manifests/{digest}"):
        assert get(anonymous, clock, path).status_code == 200
    assert get(anonymous, clock, f"/v2/team/app/manifests/{referrer}").status_code == 200  # notation verify reads it
    (root,) = json.loads(anonymous.get("/keys/team").body)["keys"]
    assert client.delete(f"/dockless/admin/v1/keys/team/{root['fingerprint']}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403


def test_a_notation_signature_that_does_not_verify_counts_as_none(client, anonymous, clock, push, notary, trusted):
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"other",))
    SettingsService(backend()).change("team", verified=True)
    stranger = Notary()
    other_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    hostile = {
        "for another digest": notary.envelope(other),
        "by a root nobody trusts": stranger.envelope(digest),
        "a trusted root's leaf shown with another's chain": notary.envelope(digest, chain=[notary.leaf, stranger.root]),
        "a leaf another root issued, shown with the trusted root": stranger.envelope(
            digest, chain=[stranger.leaf, notary.root]),
        "signed by another key than the certificate's": notary.envelope(digest, key=other_key),
        "alg other than the key's (ES384 on P-256)": notary.envelope(digest, alg="ES384"),
        "RSA under an ES256 header": notary.envelope(digest, key=rsa_key, leaf=notary.issue(rsa_key), alg="ES256"),
        "an expired certificate": notary.envelope(digest, leaf=notary.issue(
            notary.key, start=datetime(2020, 1, 1, tzinfo=timezone.utc), end=datetime(2021, 1, 1, tzinfo=timezone.utc))),
        "a certificate not for code signing": notary.envelope(digest, leaf=notary.issue(
            notary.key, usage=ExtendedKeyUsageOID.SERVER_AUTH)),
        "an expired signature": notary.envelope(digest, expiry=datetime(2021, 1, 1, tzinfo=timezone.utc)),
        "a critical header nobody understands": notary.envelope(
            digest, headers={"io.cncf.notary.verificationPlugin": "x"},
            crit=["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"]),
        "the signing-authority scheme": notary.envelope(
            digest, headers={"io.cncf.notary.signingScheme": "notary.x509.signingAuthority"}),
        "not an envelope": b'{"payload": "e30", "protected": "e30", "signature": ""}',
    }
    tampered = json.loads(notary.envelope(digest))
    tampered["payload"] = json.loads(notary.envelope(other))["payload"]
    hostile["a payload swapped after signing"] = json.dumps(tampered).encode()
    for why, envelope in hostile.items():
        attach(push, "team/app", digest, envelope)
        refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
        assert refused.status_code == 403 and error_code(refused) == "DENIED", why
    attach(push, "team/app", digest, notary.envelope(digest))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_the_console_lists_notation_signatures(anonymous, push, people, notary, trusted):
    _, digest = push.image("team/app", "v1")
    attach(push, "team/app", digest, notary.envelope(digest))
    attach(push, "team/app", digest, Notary().envelope(digest))
    rows = signature_rows(anonymous, people, "notation")
    assert sorted(badge for _, badge in rows) == ["trusted", "untrusted"]
    assert all(signer == "CN=wabbit-networks signer,O=wabbit-networks.test,ST=WA,C=US" for signer, _ in rows)


COSE = "application/cose"


def test_a_cose_envelope_that_does_not_verify_counts_as_none(client, anonymous, clock, push, notary, trusted):
    import cbor2
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"other",))
    SettingsService(backend()).change("team", verified=True)
    stranger = Notary()
    hostile = {
        "for another digest": cose_envelope(notary, other),
        "by a root nobody trusts": cose_envelope(stranger, digest),
        "signed by another key": cose_envelope(notary, digest, key=ec.generate_private_key(ec.SECP256R1())),
        "alg other than the key's": cose_envelope(notary, digest, alg="PS256"),
        "an expired signature": cose_envelope(notary, digest, expiry=datetime(2021, 1, 1, tzinfo=timezone.utc)),
        "a leaf another root issued": cose_envelope(stranger, digest, chain=[stranger.leaf, notary.root]),
        "an unknown critical header": cose_envelope(notary, digest, extra={
            2: ["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"],
            "io.cncf.notary.verificationPlugin": "x"}),
        "not COSE_Sign1 (another tag)": cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])),
        "truncated": cose_envelope(notary, digest)[:-10],
        "a floating-point time": cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7, 2: [], 3: 1.5}), {}, b"", b""])),
    }
    parts = list(cbor2.loads(cose_envelope(notary, digest)).value)
    parts[2] = json.dumps({"targetArtifact": {"digest": digest, "note": "not what was signed"}}).encode()
    hostile["a payload swapped after signing"] = cbor2.dumps(cbor2.CBORTag(18, parts))
    for why, envelope in hostile.items():
        attach(push, "team/app", digest, envelope, COSE)
        refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
        assert refused.status_code == 403 and error_code(refused) == "DENIED", why
    attach(push, "team/app", digest, cose_envelope(notary, digest), COSE)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_trusted_identities_narrow_the_trust_store_to_their_subjects(client, anonymous, clock, push, notary, trusted,
                                                                    state):
    """notation's trustedIdentities: with any, only a certificate whose subject holds every RDN one
    names counts; the others the roots issued do not."""
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    other_team = ec.generate_private_key(ec.SECP256R1())
    attach(push, "team/app", digest, notary.envelope(digest, key=other_team, leaf=notary.issue(
        other_team, organization="squirrel-networks.test")))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200  # no identity: `*`
    identity = trust(client, "team", "x509.subject: C=US, ST=WA, O=wabbit-networks.test")
    assert identity["kind"] == "x509-identity"
    assert anonymous.get(f"/keys/team/{identity['fingerprint']}.txt").body.decode().strip() == \
        "x509.subject: C=US, ST=WA, O=wabbit-networks.test"
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    attach(push, "team/app", digest, notary.envelope(digest))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200
    before = state()
    for bad, said in (("x509.subject: O=wabbit-networks.test", "at least the country (C), state (ST)"),
                      ("x509.subject: C=US, ST=WA, O", "is not an RDN")):
        refused = client.put("/dockless/admin/v1/keys/team", body=bad, headers=TEXT)
        assert refused.status_code == 400 and said in json.loads(refused.body)["errors"][0]["message"]
    assert state() == before


def tsa_trust(client, authority) -> dict:
    """`dockless key add team tsa-root.crt --trust-store tsa`."""
    return trust(client, "team", f"notation.truststore: tsa\n{authority.root.public_bytes(PEM).decode()}")


@pytest.mark.parametrize("envelope_type", ["application/jose+json", "application/cose"])
def test_a_timestamp_from_a_trusted_tsa_dates_the_signature(client, anonymous, clock, push, notary, trusted,
                                                            envelope_type):
    """The leaf expired before the decision (2026-01-01), but a trusted TSA stamped the signature while it held."""
    expired_key = ec.generate_private_key(ec.SECP256R1())
    leaf = notary.issue(expired_key, end=datetime(2025, 12, 20, tzinfo=timezone.utc))
    authority = TimestampAuthority()
    when = datetime(2025, 12, 10, tzinfo=timezone.utc)

    def signed(**stamp):
        token = (lambda signature: authority.notation_token(signature, when, **stamp))
        return notary.envelope(digest, key=expired_key, leaf=leaf, stamp=token) if envelope_type.endswith("json") \
            else cose_envelope(notary, digest, key=expired_key, leaf=leaf, stamp=token)

    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    attach(push, "team/app", digest, signed(), envelope_type)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403  # no TSA trusted: judged now
    listed = tsa_trust(client, authority)
    assert (listed["kind"], listed["uids"]) == ("x509-tsa-root", [authority.root.subject.rfc4514_string()])
    published = anonymous.get(f"/keys/team/{listed['fingerprint']}.crt")
    assert published.status_code == 200 and published.body.decode() == authority.root.public_bytes(PEM).decode()
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_with_a_tsa_trust_store_a_signature_needs_a_timestamp_that_verifies(client, anonymous, clock, push, notary,
                                                                            trusted):
    authority = TimestampAuthority()
    tsa_trust(client, authority)
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    expired_key = ec.generate_private_key(ec.SECP256R1())
    expired = notary.issue(expired_key, end=datetime(2025, 12, 20, tzinfo=timezone.utc))
    during, after = datetime(2025, 12, 10, tzinfo=timezone.utc), datetime(2025, 12, 21, tzinfo=timezone.utc)

    def stamped(by=authority, at=during, **broken):
        return lambda signature: by.notation_token(signature, at, **broken)

    stranger = TimestampAuthority()
    hostile = {
        "no timestamp (the leaf valid now)": notary.envelope(digest),
        "stamped after the certificate expired": notary.envelope(digest, key=expired_key, leaf=expired,
                                                                 stamp=stamped(at=after)),
        "a range that reaches past the expiry": notary.envelope(digest, key=expired_key, leaf=expired, stamp=stamped(
            at=datetime(2025, 12, 19, 23, 59, 50, tzinfo=timezone.utc), accuracy=30)),
        "a timestamp of other bytes": notary.envelope(digest, key=expired_key, leaf=expired,
                                                      stamp=stamped(imprint=b"other bytes")),
        "a TSA nobody trusts": notary.envelope(digest, key=expired_key, leaf=expired, stamp=stamped(by=stranger)),
        "a TSA certificate the token does not carry": notary.envelope(digest, key=expired_key, leaf=expired,
                                                                      stamp=stamped(embed=())),
        "no signing-certificate attribute": notary.envelope(digest, key=expired_key, leaf=expired,
                                                            stamp=stamped(signing_certificate=None)),
        "a signing-certificate attribute naming another": notary.envelope(
            digest, key=expired_key, leaf=expired, stamp=stamped(signing_certificate=stranger.certificate)),
        "not a token": notary.envelope(digest, key=expired_key, leaf=expired, stamp=lambda signature: b"\x30\x00"),
    }
    unfit, lapsed = TimestampAuthority(usage=ExtendedKeyUsageOID.CODE_SIGNING), TimestampAuthority(
        until=datetime(2025, 12, 5, tzinfo=timezone.utc))
    tsa_trust(client, unfit)
    tsa_trust(client, lapsed)
    hostile["a TSA certificate not for time stamping"] = notary.envelope(digest, key=expired_key, leaf=expired,
                                                                          stamp=stamped(by=unfit))
    hostile["a TSA certificate expired when it stamped"] = notary.envelope(digest, key=expired_key, leaf=expired,
                                                                            stamp=stamped(by=lapsed))
    for why, envelope in hostile.items():
        attach(push, "team/app", digest, envelope)
        refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
        assert refused.status_code == 403 and error_code(refused) == "DENIED", why
    attach(push, "team/app", digest, notary.envelope(digest, key=expired_key, leaf=expired, stamp=stamped()))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_a_tsa_trust_store_takes_only_root_certificates(client, state, notary):
    from cryptography.hazmat.primitives import serialization
    before = state()
    leaf = notary.leaf.public_bytes(serialization.Encoding.PEM).decode()
    refused = client.put("/dockless/admin/v1/keys/team", body=f"notation.truststore: tsa\n{leaf}", headers=TEXT)
    assert refused.status_code == 400 and "is not a certificate authority" in refused.body.decode()
    empty = client.put("/dockless/admin/v1/keys/team", body="notation.truststore: tsa\n", headers=TEXT)
    assert empty.status_code == 400 and error_code(empty) == "INVALID"
    assert state() == before


@pytest.mark.parametrize("envelope_type", ["application/jose+json", "application/cose"])
def test_a_signing_authority_signature_counts_by_its_authentic_time_and_its_own_store(client, anonymous, clock, push,
                                                                                      envelope_type):
    """notary.x509.signingAuthority: the service's signed signing time dates it; its root must be in
    the signingAuthority trust store (a CA root does not vouch for it, nor it for notary.x509)."""
    authority = Notary()
    expired_key = ec.generate_private_key(ec.SECP256R1())
    leaf = authority.issue(expired_key, end=datetime(2025, 12, 20, tzinfo=timezone.utc))
    during = datetime(2025, 12, 10, tzinfo=timezone.utc)

    def signed(**broken):
        details = dict(key=expired_key, leaf=leaf, authentic=during, **broken)
        return authority.envelope(digest, **details) if envelope_type.endswith("json") \
            else cose_envelope(authority, digest, **details)

    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    attach(push, "team/app", digest, signed(), envelope_type)
    ca = trust(client, "team", authority.root_pem)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403  # a CA root is not enough
    assert client.delete(f"/dockless/admin/v1/keys/team/{ca['fingerprint']}").status_code == 204
    listed = trust(client, "team", f"notation.truststore: signingAuthority\n{authority.root_pem}")
    assert listed["kind"] == "x509-signing-authority-root"
    assert anonymous.get(f"/keys/team/{listed['fingerprint']}.crt").body.decode() == authority.root_pem
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_a_signing_authority_signature_that_does_not_hold_counts_as_none(client, anonymous, clock, push):
    authority = Notary()
    trust(client, "team", f"notation.truststore: signingAuthority\n{authority.root_pem}")
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    expired_key = ec.generate_private_key(ec.SECP256R1())
    leaf = authority.issue(expired_key, end=datetime(2025, 12, 20, tzinfo=timezone.utc))
    during, after = datetime(2025, 12, 10, tzinfo=timezone.utc), datetime(2025, 12, 21, tzinfo=timezone.utc)
    hostile = {
        "an authentic time after the certificate expired": authority.envelope(digest, key=expired_key, leaf=leaf,
                                                                              authentic=after),
        "the authentic time not critical": authority.envelope(digest, key=expired_key, leaf=leaf, authentic=during,
                                                              crit=["io.cncf.notary.signingScheme"],
                                                              headers={"crit": ["io.cncf.notary.signingScheme"]}),
        "no authentic time": authority.envelope(digest, key=expired_key, leaf=leaf, headers={
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority"}),
        "a notary.x509 signature by the authority's leaf": authority.envelope(digest),
        "an authentic time that is not a time": authority.envelope(digest, key=expired_key, leaf=leaf, authentic=during,
                                                                   headers={"io.cncf.notary.authenticSigningTime": "soon"}),
    }
    for why, envelope in hostile.items():
        attach(push, "team/app", digest, envelope)
        refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
        assert refused.status_code == 403 and error_code(refused) == "DENIED", why
    attach(push, "team/app", digest, authority.envelope(digest, key=expired_key, leaf=leaf, authentic=during))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_an_unknown_trust_store_is_refused_and_nothing_is_kept(client, state, notary):
    before = state()
    refused = client.put("/dockless/admin/v1/keys/team", body=f"notation.truststore: elsewhere\n{notary.root_pem}",
                         headers=TEXT)
    assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert "ca, tsa, signingAuthority" in refused.body.decode()
    assert state() == before


def test_trust_given_to_some_repositories_vouches_for_those_alone(client, anonymous, clock, push, notary, state):
    """notation's trust policies have registryScopes; here every kind of trusted item may be added
    for some repositories of the namespace only (`dockless key add NS FILE --repository app`)."""
    before = state()
    for bad in ("", "../other", "app,", "/app", "x" * 300, ",".join(f"r{n}" for n in range(17))):
        refused = client.put(f"/dockless/admin/v1/keys/team?repositories={bad}", body=notary.root_pem, headers=TEXT)
        assert refused.status_code == 400 and error_code(refused) == "INVALID", bad
    assert state() == before
    added = client.put("/dockless/admin/v1/keys/team?repositories=app,tools/*", body=notary.root_pem, headers=TEXT)
    assert added.status_code == 201
    (root,) = added.json_body["keys"]
    assert root["repositories"] == ["team/app", "team/tools/*"]
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert [e["detail"] for e in events if e["action"] == "key.add"] == [
        {"format": "x509-root", "repositories": ["team/app", "team/tools/*"]}]
    SettingsService(backend()).change("team", verified=True)
    for repository, served in (("team/app", 200), ("team/tools/lint", 200), ("team/other", 403), ("team/app2", 403)):
        _, digest = push.image(repository, "v1")
        attach(push, repository, digest, notary.envelope(digest))
        assert get(anonymous, clock, f"/v2/{repository}/manifests/v1").status_code == served, repository
    # What it publishes for a repository is what the namespace trusts for it.
    assert [k["fingerprint"] for k in anonymous.get("/keys/team?repository=team/app").json_body["keys"]] == [
        root["fingerprint"]]
    assert anonymous.get("/keys/team?repository=team/other").json_body["keys"] == []
    assert anonymous.get(f"/keys/team/{root['fingerprint']}.crt?repository=team/other").status_code == 404
