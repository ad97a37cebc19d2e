"""Verified mode and automatic signing, in process with real gpg (python-gnupg)."""
import base64
import json
import uuid

import pytest

from chalicelib.backend import backend
from chalicelib.policy.settings import SettingsService
from chalicelib.signing import gpg
from chalicelib.signing.service import ATOMIC_TYPE, SigningService
from tests.fixtures import OCI_INDEX, OCI_MANIFEST, admin_token, error_code

HOST = "registry.example.test"


@pytest.fixture(scope="module")
def release_key():
    fingerprint, public = gpg.load_secret_key(gpg.generate_signing_key("Release Engineer"))
    return fingerprint, public


def sign(client, repo, digest, identity, fingerprint, name="sig"):
    content = gpg.sign_opaque(json.dumps({"critical": {"type": ATOMIC_TYPE,
                                                       "image": {"docker-manifest-digest": digest},
                                                       "identity": {"docker-reference": identity}}}).encode(),
                              fingerprint)
    response = client.put(f"/extensions/v2/{repo}/signatures/{digest}",
                          body=json.dumps({"schemaVersion": 2, "type": "atomic", "name": f"{digest}@{name}",
                                           "content": base64.b64encode(content).decode()}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.body


def signature_document(digest, content, name="sig"):
    return json.dumps({"schemaVersion": 2, "type": "atomic", "name": f"{digest}@{name}",
                       "content": base64.b64encode(content).decode()})


def foreign_signature(digest, identity, corrupt=False):
    """A signature made in a keyring of its own by a new key this process has never seen: the
    key's fingerprint, its public key, and the signature's bytes (the last byte flipped when
    `corrupt`, which breaks the signature but not the message around it)."""
    armored = gpg.generate_signing_key("Later Trusted")
    with gpg.temporary_home() as keyring:
        fingerprint = keyring.import_keys(armored).fingerprints[0]
        payload = json.dumps({"critical": {"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": digest},
                                           "identity": {"docker-reference": identity}}}).encode()
        signed = keyring.sign(payload, keyid=fingerprint, binary=True, clearsign=False, detach=False,
                              extra_args=["--compress-algo", "none"])
        public = keyring.export_keys(fingerprint)
    content = bytearray(signed.data)
    if corrupt:
        content[-1] ^= 0xFF
    return fingerprint, public, bytes(content)


def pull_only(anonymous, clock, path):
    """A request with a token that may only pull (what docker pull asks for)."""
    token = admin_token(path, clock().timestamp())
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    from chalicelib.access import jwt
    from tests.fixtures import SIGNING_KEY
    for entry in claims["access"]:
        if entry["type"] == "repository":
            entry["actions"] = ["pull"]
    return jwt.encode(claims, SIGNING_KEY.encode())


def get(anonymous, clock, path, method="GET"):
    return anonymous.request(method, path, body=b"",
                             headers={"Authorization": f"Bearer {pull_only(anonymous, clock, path)}"})


def test_verified_mode_serves_only_what_a_trusted_key_signed(client, anonymous, clock, push, registry, release_key):
    fingerprint, public = release_key
    SigningService(registry).add_keys("strict", public)
    _, digest = push.image("strict/app", "v1")
    SettingsService(backend()).change("strict", verified=True)

    for method in ("GET", "HEAD"):
        refused = get(anonymous, clock, "/v2/strict/app/manifests/v1", method)
        assert refused.status_code == 403
    refused = get(anonymous, clock, "/v2/strict/app/manifests/v1")
    assert error_code(refused) == "DENIED"
    error = json.loads(refused.body)["errors"][0]
    assert "verified mode: no signature by a key trusted for strict" in error["message"]
    assert error["detail"] == error["message"]  # clients show one or the other
    # A token that may push is exempt: signing an image reads it first.
    assert client.get("/v2/strict/app/manifests/v1").status_code == 200

    sign(client, "strict/app", digest, f"{HOST}/strict/app:other", fingerprint)
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 403  # another identity
    assert get(anonymous, clock, f"/v2/strict/app/manifests/{digest}").status_code == 200  # same repository
    sign(client, "strict/app", digest, f"{HOST}/strict/app:v1", fingerprint, name="v1")
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 200
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1", "HEAD").status_code == 200

    assert client.delete(f"/dockless/admin/v1/keys/strict/{fingerprint}").status_code == 204
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 403
    assert client.delete(f"/dockless/admin/v1/keys/strict/{fingerprint}").status_code == 404


def test_with_automatic_signing_on_the_namespace_keys_still_vouch(client, anonymous, clock, push, registry,
                                                                  release_key):
    """Automatic signing adds the registry's key to those trusted; it takes none away."""
    fingerprint, public = release_key
    SigningService(registry).add_keys("both", public)
    _, digest = push.image("both/app", "v1")
    SettingsService(backend()).change("both", verified=True, auto_sign=True)
    assert get(anonymous, clock, "/v2/both/app/manifests/v1").status_code == 403
    sign(client, "both/app", digest, f"{HOST}/both/app:v1", fingerprint)
    assert get(anonymous, clock, "/v2/both/app/manifests/v1").status_code == 200


def test_a_stored_signature_gpg_cannot_read_hides_none_of_the_others(client, anonymous, clock, push, registry,
                                                                     release_key):
    """One stored by an older release, say (uploads are checked): it vouches for nothing, and the
    signatures after it still count."""
    from chalicelib.metadata.models import Signature
    fingerprint, public = release_key
    SigningService(registry).add_keys("odd", public)
    _, digest = push.image("odd/app", "v1")
    SettingsService(backend()).change("odd", verified=True)
    Signature(f"odd/app@{digest}", f"{digest}@0-unreadable", content=b"not OpenPGP", identity=f"{HOST}/odd/app:v1",
              created_at=clock()).save()
    assert get(anonymous, clock, "/v2/odd/app/manifests/v1").status_code == 403
    sign(client, "odd/app", digest, f"{HOST}/odd/app:v1", fingerprint, name="z")
    assert get(anonymous, clock, "/v2/odd/app/manifests/v1").status_code == 200


def test_children_of_a_signed_index_are_served(client, anonymous, clock, push, registry, release_key):
    fingerprint, public = release_key
    SigningService(registry).add_keys("multi", public)
    child_body, child = push.image("multi/app")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}).encode()
    assert push.manifest("multi/app", "v1", index).status_code == 201
    SettingsService(backend()).change("multi/app", verified=True)
    assert get(anonymous, clock, f"/v2/multi/app/manifests/{child}").status_code == 403
    index_digest = client.get("/v2/multi/app/manifests/v1").headers["Docker-Content-Digest"]
    sign(client, "multi/app", index_digest, f"{HOST}/multi/app:v1", fingerprint)
    assert get(anonymous, clock, f"/v2/multi/app/manifests/{child}").status_code == 200


def test_automatic_signing_signs_tag_pushes_with_the_registry_key(client, push, registry_key):
    """The key comes from its Secrets Manager secret, as deployed (the local stack and the e2e
    tests pass it in the environment instead)."""
    armored = gpg.generate_signing_key("test registry")
    import boto3
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=f"dockless-test-registry-signing-key-{uuid.uuid4().hex}", SecretString=armored)["ARN"]
    registry_key(secret=secret)
    SettingsService(backend()).change("auto", auto_sign=True)
    _, digest = push.image("auto/app", "v1")
    signatures = client.get(f"/extensions/v2/auto/app/signatures/{digest}").json_body["signatures"]
    assert len(signatures) == 1 and signatures[0]["name"].startswith(f"{digest}@registry-")
    keys = client.get("/keys/_registry").json_body["keys"]
    assert len(keys) == 1 and "s" in keys[0]["capabilities"]
    checked = gpg.verify_opaque(base64.b64decode(signatures[0]["content"]), {})
    payload = json.loads(checked.payload)
    assert payload["critical"] == {"type": "atomic container signature", "image": {"docker-manifest-digest": digest},
                                   "identity": {"docker-reference": f"{HOST}/auto/app:v1"}}
    assert payload["optional"]["creator"] == "dockless registry"
    assert checked.fingerprint == keys[0]["fingerprint"]
    from chalicelib.metadata.models import Signature
    assert [s.signer for s in Signature.query(f"auto/app@{digest}")] == [keys[0]["fingerprint"]]
    events = client.get("/dockless/admin/v1/audit?repository=auto/app").json_body["events"]
    assert [(e["reference"], e["detail"]) for e in events if e["action"] == "signature.add"] == [
        (digest, {"signer": keys[0]["fingerprint"], "automatic": True})]


def test_what_the_registry_signed_stays_served_after_automatic_signing_is_turned_off(client, anonymous, clock, push,
                                                                                     registry_key):
    """The registry signs only while a repository signs automatically, under that repository's
    name: its signatures keep vouching in verified mode; removing its key withdraws them."""
    registry_key(gpg.generate_signing_key("registry that stops signing"))
    SettingsService(backend()).change("robots", auto_sign=True, verified=True)
    _, digest = push.image("robots/app", "v1")
    assert get(anonymous, clock, "/v2/robots/app/manifests/v1").status_code == 200
    SettingsService(backend()).change("robots", auto_sign=False)
    assert get(anonymous, clock, "/v2/robots/app/manifests/v1").status_code == 200
    assert get(anonymous, clock, f"/v2/robots/app/manifests/{digest}").status_code == 200
    _, unsigned = push.image("robots/app", "v2", layers=[b"pushed after"])
    assert get(anonymous, clock, "/v2/robots/app/manifests/v2").status_code == 403
    (key,) = client.get("/keys/_registry").json_body["keys"]
    assert client.delete(f"/dockless/admin/v1/keys/_registry/{key['fingerprint']}").status_code == 204
    refused = get(anonymous, clock, "/v2/robots/app/manifests/v1")
    assert refused.status_code == 403 and error_code(refused) == "DENIED"


def test_a_signature_counts_only_if_it_verifies_with_a_key_trusted_now(client, anonymous, clock, push, registry):
    """The review's sequence: a corrupt signature naming a key nobody trusts yet is stored; once an
    admin trusts that key, it must still not vouch for anything."""
    _, digest = push.image("late/app", "v1")
    SettingsService(backend()).change("late", verified=True)
    fingerprint, public, corrupt = foreign_signature(digest, f"{HOST}/late/app:v1", corrupt=True)
    stored = client.put(f"/extensions/v2/late/app/signatures/{digest}", body=signature_document(digest, corrupt),
                        headers={"Content-Type": "application/json"})
    assert stored.status_code == 201  # its key is unknown: it cannot be checked yet, so it is kept
    SigningService(registry).add_keys("late", public)
    refused = get(anonymous, clock, "/v2/late/app/manifests/v1")
    assert refused.status_code == 403 and error_code(refused) == "DENIED"
    assert get(anonymous, clock, "/v2/late/app/manifests/v1", "HEAD").status_code == 403
    # The same bytes, now that the key is known, are refused outright.
    again = client.put(f"/extensions/v2/late/app/signatures/{digest}",
                       body=signature_document(digest, corrupt, name="again"),
                       headers={"Content-Type": "application/json"})
    assert again.status_code == 400 and error_code(again) == "SIGNATURE_INVALID"
    assert "signature bad" in json.loads(again.body)["errors"][0]["detail"]
    assert [s["name"] for s in client.get(f"/extensions/v2/late/app/signatures/{digest}").json_body["signatures"]] \
        == [f"{digest}@sig"]


def test_a_good_signature_stored_before_its_key_counts_once_the_key_is_trusted(client, anonymous, clock, push,
                                                                                registry):
    _, digest = push.image("early/app", "v1")
    SettingsService(backend()).change("early/app", verified=True)
    fingerprint, public, content = foreign_signature(digest, f"{HOST}/early/app:v1")
    assert client.put(f"/extensions/v2/early/app/signatures/{digest}", body=signature_document(digest, content),
                      headers={"Content-Type": "application/json"}).status_code == 201
    assert get(anonymous, clock, "/v2/early/app/manifests/v1").status_code == 403
    SigningService(registry).add_keys("early", public)
    assert get(anonymous, clock, "/v2/early/app/manifests/v1").status_code == 200
    # A key trusted for another namespace vouches for nothing here.
    SigningService(registry).remove_key("early", fingerprint)
    SigningService(registry).add_keys("elsewhere", public)
    assert get(anonymous, clock, "/v2/early/app/manifests/v1").status_code == 403


def test_automatic_signing_without_a_key_refuses_the_push_and_writes_nothing(client, push, registry_key, state):
    registry_key()
    push.image("unsigned/app", "v0")
    SettingsService(backend()).change("unsigned", auto_sign=True)
    body = json.loads(client.get("/v2/unsigned/app/manifests/v0").body)
    body["annotations"] = {"another": "image"}
    before = state()
    refused = push.manifest("unsigned/app", "v1", json.dumps(body).encode())
    assert refused.status_code == 403 and error_code(refused) == "DENIED"
    assert json.loads(refused.body)["errors"][0]["message"] == (
        "automatic signing is on for unsigned/app, but the registry has no signing key: an admin must give it "
        "one or turn automatic signing off")
    assert state() == before
    assert client.get("/v2/unsigned/app/manifests/v1").status_code == 404


@pytest.mark.parametrize("upload, reason", [(b"\x80", "ASCII armour"), (b"", "no OpenPGP public key"),
                                            (b"-----BEGIN PGP PRIVATE KEY BLOCK-----", "secret key")])
def test_key_uploads_that_are_not_public_keys_are_refused(client, upload, reason, state):
    before = state()
    response = client.put("/dockless/admin/v1/keys/team", body=upload)
    assert response.status_code == 400 and error_code(response) == "INVALID"
    assert reason in json.loads(response.body)["errors"][0]["detail"]
    assert state() == before


def test_a_signature_for_another_digest_is_refused_and_not_stored(client, push, release_key, state):
    fingerprint, _ = release_key
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"another",))
    content = gpg.sign_opaque(json.dumps({"critical": {"type": ATOMIC_TYPE,
                                                       "image": {"docker-manifest-digest": other},
                                                       "identity": {"docker-reference": f"{HOST}/team/app:v1"}}}).encode(),
                              fingerprint)
    before = state()
    response = client.put(f"/extensions/v2/team/app/signatures/{digest}", body=signature_document(digest, content),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "SIGNATURE_INVALID"
    assert f"the signature is for {other}" in json.loads(response.body)["errors"][0]["detail"]
    assert state() == before
    assert client.get(f"/extensions/v2/team/app/signatures/{digest}").json_body == {"signatures": []}


@pytest.mark.parametrize("critical, detail", [
    ({"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": "DIGEST"}},
     "not an atomic container signature: 'identity'"),
    ({"type": "cosign container image signature", "image": {"docker-manifest-digest": "DIGEST"},
      "identity": {"docker-reference": f"{HOST}/team/app:v1"}},
     f"critical.type must be {ATOMIC_TYPE!r}, with string identity and digest"),
    ({"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": "DIGEST"}, "identity": {"docker-reference": 7}},
     f"critical.type must be {ATOMIC_TYPE!r}, with string identity and digest"),
])
def test_a_signed_payload_that_is_not_an_atomic_signature_is_refused_and_not_stored(client, push, release_key,
                                                                                    state, critical, detail):
    fingerprint, _ = release_key
    _, digest = push.image("team/app", "v1")
    critical["image"]["docker-manifest-digest"] = digest
    content = gpg.sign_opaque(json.dumps({"critical": critical}).encode(), fingerprint)
    before = state()
    response = client.put(f"/extensions/v2/team/app/signatures/{digest}", body=signature_document(digest, content),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "SIGNATURE_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == detail
    assert state() == before


def test_restore_in_verified_mode_needs_a_trusted_signature(client, push, registry, release_key, clock, state):
    fingerprint, public = release_key
    SigningService(registry).add_keys("strict", public)
    _, unsigned = push.image("strict/app", "prod", layers=[b"old"])
    clock.advance(minutes=1)
    _, signed = push.image("strict/app", "prod", layers=[b"new"])
    sign(client, "strict/app", signed, f"{HOST}/strict/app:prod", fingerprint)
    SettingsService(backend()).change("strict", verified=True)
    before = state()
    refused = client.post("/dockless/v1/strict/app/tags/prod/restore", body=json.dumps({"digest": unsigned}),
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 403
    assert json.loads(refused.body)["errors"][0]["message"].startswith(
        "cannot restore: verified mode: no signature by a key trusted for strict")
    assert state() == before
    sign(client, "strict/app", unsigned, f"{HOST}/strict/app:prod", fingerprint, name="old")
    clock.advance(minutes=1)
    restored = client.post("/dockless/v1/strict/app/tags/prod/restore", body=json.dumps({"digest": unsigned}),
                           headers={"Content-Type": "application/json"})
    assert restored.status_code == 201, restored.body
    assert client.head("/v2/strict/app/manifests/prod").headers["Docker-Content-Digest"] == unsigned


def test_a_restore_with_automatic_signing_on_signs_the_digest_under_its_tag(client, push, registry_key, clock):
    registry_key(gpg.generate_signing_key("restoring registry"))
    SettingsService(backend()).change("back", auto_sign=True)
    _, first = push.image("back/app", "prod", layers=[b"first"])
    clock.advance(minutes=1)
    push.image("back/app", "prod", layers=[b"second"])
    clock.advance(minutes=1)
    restored = client.post("/dockless/v1/back/app/tags/prod/restore", body=json.dumps({"digest": first}),
                           headers={"Content-Type": "application/json"})
    assert restored.status_code == 201, restored.body
    signatures = client.get(f"/extensions/v2/back/app/signatures/{first}").json_body["signatures"]
    payloads = [json.loads(gpg.verify_opaque(base64.b64decode(s["content"]), {}).payload) for s in signatures]
    # One from its push, one from its restore: each names the tag.
    assert [p["critical"]["identity"]["docker-reference"] for p in payloads] == [f"{HOST}/back/app:prod"] * 2


def test_content_that_is_not_an_openpgp_message_is_refused_and_not_stored(client, push, state):
    _, digest = push.image("team/app", "v1")
    before = state()
    response = client.put(f"/extensions/v2/team/app/signatures/{digest}",
                          body=signature_document(digest, b"not a signature"),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "SIGNATURE_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"].startswith("not an OpenPGP signed message: ")
    assert state() == before


def test_garbage_collection_takes_a_collected_manifests_signatures_with_it(client, push, registry, release_key,
                                                                          clock):
    from chalicelib.lifecycle.gc import GarbageCollector
    from chalicelib.metadata.models import Signature
    fingerprint, public = release_key
    SigningService(registry).add_keys("gone", public)
    _, digest = push.image("gone/app", "v1")
    sign(client, "gone/app", digest, f"{HOST}/gone/app:v1", fingerprint)
    assert Signature.count(f"gone/app@{digest}") == 1
    assert client.delete(f"/v2/gone/app/manifests/{digest}").status_code == 202
    clock.advance(days=15)
    GarbageCollector(registry).run()
    clock.advance(hours=2)
    report = GarbageCollector(registry).run()
    assert (report["manifests_deleted"], report["signatures_deleted"]) == (1, 1)
    assert Signature.count(f"gone/app@{digest}") == 0
    assert client.get(f"/extensions/v2/gone/app/signatures/{digest}").status_code == 404


@pytest.mark.parametrize("identity, repository", [
    ("localhost:5000/team/app:v1", "localhost:5000/team/app"),
    ("registry.example.com/a/b/c:1.2:3", "registry.example.com/a/b/c"),
    ("localhost:5000/team/app@sha256:" + "a" * 64, "localhost:5000/team/app"),
    ("localhost:5000/team/app@x@y", "localhost:5000/team/app"),
    ("app", "app"),
])
def test_a_signature_identity_names_its_repository(identity, repository):
    from chalicelib.signing.service import _repository_of
    assert _repository_of(identity) == repository


def test_a_rotated_registry_key_is_published_beside_the_old_one(client, push, registry_key):
    """The key from the environment (as the local stack passes it); after a rotation (a new process
    with another key) both public keys are published, so older automatic signatures still verify."""
    fingerprints = []
    for number, name in enumerate(("first registry key", "second registry key")):
        registry_key(gpg.generate_signing_key(name))
        SettingsService(backend()).change("rotated", auto_sign=True)
        _, digest = push.image("rotated/app", f"v{number}", layers=[name.encode()])
        [signature] = client.get(f"/extensions/v2/rotated/app/signatures/{digest}").json_body["signatures"]
        fingerprints.append(gpg.verify_opaque(base64.b64decode(signature["content"]), {}).fingerprint)
    assert fingerprints[0] != fingerprints[1]
    published = [k["fingerprint"] for k in client.get("/keys/_registry").json_body["keys"]]
    assert sorted(published) == sorted(fingerprints)


def test_adding_and_removing_a_key_is_audited_and_an_unknown_key_says_which(client, registry, release_key):
    fingerprint, public = release_key
    added = client.put("/dockless/admin/v1/keys/team", body=public, headers={"Content-Type": "text/plain"})
    assert added.status_code == 201, added.body
    assert [k["fingerprint"] for k in added.json_body["keys"]] == [fingerprint] and added.json_body["warnings"] == []
    # In the namespace's trail, where an auditor of the namespace looks.
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert [e["reference"] for e in events if e["action"] == "key.add"] == [fingerprint]
    assert client.delete(f"/dockless/admin/v1/keys/team/{fingerprint}").status_code == 204
    removed = [e["reference"] for e in client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
               if e["action"] == "key.remove"]
    assert removed == [fingerprint]
    again = client.delete(f"/dockless/admin/v1/keys/team/{fingerprint}")
    assert again.status_code == 404 and error_code(again) == "NOT_FOUND"
    assert json.loads(again.body)["errors"][0]["message"].endswith(f"no key {fingerprint} for team")
