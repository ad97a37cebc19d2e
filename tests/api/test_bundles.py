"""Sigstore bundles as OCI referrers (chalicelib/signing/bundles.py), in process: what `cosign
sign --new-bundle-format` pushes (a manifest with the image as its subject, a bundle media type as
its artifactType, the bundle's JSON as its layer), keyless or by key, counted by verified mode only
when it verifies against the namespace's trust for this digest. Bundles are made by
tests/sigstore.py from protobuf-specs and cosign's BUNDLE_SPEC, as Rekor v1 logs them (a signed
entry timestamp) and as Rekor v2 does (an inclusion proof and a signed checkpoint, the time from an
RFC 3161 timestamp authority)."""
import base64
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from chalicelib.backend import backend
from chalicelib.policy.settings import SettingsService
from tests.api.test_cosign import pem
from tests.api.test_keyless import SUBJECT, signature_rows, trust
from tests.api.test_verified import get
from tests.fixtures import OCI_LAYER, OCI_MANIFEST, digest_of, error_code
from tests.sigstore import ISSUER, NOW, Sigstore, TimestampAuthority, keyed_bundle

EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(b"{}"), "size": 2}
V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture(scope="module")
def sigstore():
    return Sigstore()


@pytest.fixture
def trusted(client, sigstore):
    trust(client, "team", sigstore.trusted_root())
    trust(client, "team", json.dumps({"issuer": ISSUER, "subject": "https://github.test/acme/*@refs/heads/main"}))


def attach(push, repo, digest, bundle: bytes, media_type: str = V03) -> str:
    """The referrer cosign pushes for a bundle; its digest."""
    push.blob(repo, b"{}")
    layer = dict(push.blob(repo, bundle), mediaType=media_type)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": media_type, "config": EMPTY,
                       "layers": [layer], "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}}).encode()
    answer = push.manifest(repo, digest_of(body), body)
    assert answer.status_code == 201, answer.body
    return digest_of(body)


@pytest.mark.parametrize("version", ["v0.3", "v0.2", "v0.1"])
def test_verified_mode_serves_what_a_trusted_identity_signed_in_a_bundle(client, anonymous, clock, push, sigstore,
                                                                         trusted, version):
    media_type = V03 if version == "v0.3" else f"application/vnd.dev.sigstore.bundle+json;version={version[1:]}"
    config = dict(push.blob("team/app", b'{"os": "linux"}'), mediaType="application/vnd.oci.image.config.v1+json")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                       "layers": [dict(push.blob("team/app", b"a layer"), mediaType=OCI_LAYER)]}).encode()
    digest = digest_of(body)
    # The referrer goes first, before its subject is pushed (the distribution-spec allows it).
    referrer = attach(push, "team/app", digest, sigstore.bundle(digest, SUBJECT, version=version), media_type)
    assert push.manifest("team/app", "v1", body).status_code == 201
    SettingsService(backend()).change("team", verified=True)
    for path in ("/v2/team/app/manifests/v1", f"/v2/team/app/manifests/{digest}"):
        assert get(anonymous, clock, path).status_code == 200
    # A verifier reads the referrer back, in verified mode, by digest: it holds no image.
    listed = get(anonymous, clock, f"/v2/team/app/referrers/{digest}").json_body["manifests"]
    assert [(m["digest"], m["artifactType"]) for m in listed] == [(referrer, media_type)]
    assert get(anonymous, clock, f"/v2/team/app/manifests/{referrer}").status_code == 200


def test_a_message_signature_over_the_manifest_counts(client, anonymous, clock, push, sigstore, trusted):
    body, digest = push.image("team/app", "v1")
    attach(push, "team/app", digest, sigstore.message_bundle(body, SUBJECT))
    SettingsService(backend()).change("team", verified=True)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_a_bundle_signed_by_a_trusted_cosign_key_counts(client, anonymous, clock, push):
    private, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    trust(client, "team", pem(private))
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    attach(push, "team/app", digest, keyed_bundle(stranger, digest))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    attach(push, "team/app", digest, keyed_bundle(private, digest))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_a_bundle_that_does_not_verify_counts_as_none(client, anonymous, clock, push, sigstore, trusted):
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"other",))
    SettingsService(backend()).change("team", verified=True)
    forged_log = ec.generate_private_key(ec.SECP256R1())
    late = int(NOW.timestamp()) + 11 * 60
    hostile = {
        "for another digest": sigstore.bundle(other, SUBJECT),
        "an attestation, not a signature": sigstore.bundle(digest, SUBJECT, predicate="https://slsa.dev/provenance/v1"),
        "an identity nobody trusts": sigstore.bundle(digest, "https://github.test/mallory/app/x.yml@refs/heads/main"),
        "another issuer": sigstore.bundle(digest, SUBJECT, issuer="https://issuer.elsewhere.test"),
        "another sigstore": Sigstore().bundle(digest, SUBJECT),
        "logged after the certificate expired": sigstore.bundle(digest, SUBJECT, integrated=late),
        "a SET by another key": sigstore.bundle(digest, SUBJECT, log_key=forged_log),
        "a log entry for another payload": sigstore.bundle(digest, SUBJECT, logged_payload=b"something else"),
        "a signature over other bytes, logged as this one's": sigstore.bundle(digest, SUBJECT,
                                                                              signed_payload=b"other bytes"),
        "a keyed bundle with no key trusted": keyed_bundle(ec.generate_private_key(ec.SECP256R1()), digest),
        "not a bundle": b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
    }
    good = json.loads(sigstore.bundle(digest, SUBJECT))
    good["dsseEnvelope"]["payload"] = json.loads(hostile["for another digest"])["dsseEnvelope"]["payload"]
    hostile["a payload swapped after signing"] = json.dumps(good).encode()
    for why, bundle in hostile.items():
        attach(push, "team/app", digest, bundle)
        refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
        assert refused.status_code == 403 and error_code(refused) == "DENIED", why
    # A good bundle attached to the same digest in another repository does not count here.
    push.image("team/elsewhere", "v1")
    attach(push, "team/elsewhere", digest, sigstore.bundle(digest, SUBJECT))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    attach(push, "team/app", digest, sigstore.bundle(digest, SUBJECT))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_the_console_lists_bundles_with_their_certificate(anonymous, push, people, sigstore, trusted):
    _, digest = push.image("team/app", "v1")
    attach(push, "team/app", digest, sigstore.bundle(digest, SUBJECT))
    attach(push, "team/app", digest, sigstore.bundle(digest, "mallory@example.test"))
    rows = signature_rows(anonymous, people, "sigstore-bundle")
    assert sorted(rows) == sorted([(f"{SUBJECT} ({ISSUER})", "trusted"), (f"mallory@example.test ({ISSUER})", "untrusted")])


def refused(anonymous, clock, push, digest, bundle) -> bool:
    attach(push, "team/app", digest, bundle)
    answer = get(anonymous, clock, "/v2/team/app/manifests/v1")
    return answer.status_code == 403 and error_code(answer) == "DENIED"


@pytest.mark.parametrize("kind", ["dsse", "message signature"])
def test_a_rekor_v2_bundle_counts_by_its_inclusion_proof_and_timestamp(client, anonymous, clock, push, sigstore,
                                                                      trusted, kind):
    body, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    bundle = sigstore.v2_bundle(SUBJECT, digest=digest) if kind == "dsse" else sigstore.v2_bundle(SUBJECT, manifest=body)
    assert refused(anonymous, clock, push, digest, sigstore.v2_bundle(SUBJECT, digest=digest, stamped=False))
    attach(push, "team/app", digest, bundle)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


def test_a_rekor_v2_bundle_that_does_not_verify_counts_as_none(client, anonymous, clock, push, sigstore, trusted):
    body, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    huge = json.loads(sigstore.v2_bundle(SUBJECT, digest=digest))
    huge["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"] = \
        base64.b64encode(b"\x30\x82\x40\x00" + bytes(0x4000)).decode()
    hostile = {
        "no timestamp: an inclusion proof says nothing of when": dict(stamped=False),
        "a timestamp of other bytes": dict(imprint=b"other bytes"),
        "a timestamp by an authority nobody trusts": dict(tsa=TimestampAuthority()),
        "a timestamp after the certificate expired": dict(stamped_at=NOW + timedelta(minutes=11)),
        "a timestamp before the certificate was issued": dict(stamped_at=NOW - timedelta(minutes=1)),
        "an audit path with a hash changed": dict(tamper="path"),
        "a checkpoint naming another root": dict(tamper="root"),
        "a checkpoint signed by another key": dict(checkpoint_key=ed25519.Ed25519PrivateKey.generate()),
        "an entry for another payload": dict(logged_payload=b"something else"),
        "another identity": dict(subject="https://github.test/mallory/app/x.yml@refs/heads/main"),
    }
    for why, broken in hostile.items():
        bundle = sigstore.v2_bundle(broken.pop("subject", SUBJECT), digest=digest, **broken)
        assert refused(anonymous, clock, push, digest, bundle), why
    assert refused(anonymous, clock, push, digest, sigstore.v2_bundle(SUBJECT, manifest=body + b" ")), "other bytes"
    assert refused(anonymous, clock, push, digest, json.dumps(huge).encode()), "a timestamp too big to read"
    attach(push, "team/app", digest, sigstore.v2_bundle(SUBJECT, digest=digest))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200


@pytest.mark.parametrize("authority", [
    dict(usage=ExtendedKeyUsageOID.CODE_SIGNING), dict(until=NOW - timedelta(days=1)),
    dict(issuer_key=ec.generate_private_key(ec.SECP384R1()))],
    ids=["not for time stamping", "expired", "not issued by its chain"])
def test_a_timestamp_authority_trusted_but_unfit_dates_nothing(client, anonymous, clock, push, authority):
    sigstore = Sigstore(TimestampAuthority(**authority))
    trust(client, "team", sigstore.trusted_root())
    trust(client, "team", json.dumps({"issuer": ISSUER, "subject": SUBJECT}))
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    assert refused(anonymous, clock, push, digest, sigstore.v2_bundle(SUBJECT, digest=digest))


def test_every_verified_time_must_find_the_certificate_valid(client, anonymous, clock, push, sigstore, trusted):
    """A good SET beside a timestamp from after the certificate expired: the signature is refused."""
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    bundle = json.loads(sigstore.bundle(digest, SUBJECT))
    signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    late = sigstore.tsa.stamp(signature, NOW + timedelta(minutes=20))
    bundle["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": [
        {"signedTimestamp": base64.b64encode(late).decode()}]}
    assert refused(anonymous, clock, push, digest, json.dumps(bundle).encode())


def test_certificate_transparency_is_asked_by_the_root_that_issued_the_certificate(client, anonymous, clock, push,
                                                                                  sigstore, trusted):
    """A second trusted root with CT logs (the public instance's) does not make this sigstore's
    certificates, issued by a root without CT logs, need an SCT."""
    from pathlib import Path
    production = Path(__file__).parent.parent / "vectors" / "sigstore-conformance" / "trusted_root.production.json"
    trust(client, "team", production.read_text())
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    attach(push, "team/app", digest, sigstore.bundle(digest, SUBJECT))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200
