"""Verified mode and automatic signing, in process with real gpg (python-gnupg)."""
import base64
import dataclasses
import json
import uuid

import pytest

from chalicelib.services import use_services
from chalicelib.signing import gpg
from chalicelib.signing.service import ATOMIC_TYPE, SigningService, set_policy
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


def pull_only(anonymous, clock, path):
    """A request with a token that may only pull (what docker pull asks for)."""
    token = admin_token(path, clock().timestamp())
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    from chalicelib.auth import jwt
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
    set_policy("strict", verified=True, auto_sign=None)

    for method in ("GET", "HEAD"):
        refused = get(anonymous, clock, "/v2/strict/app/manifests/v1", method)
        assert refused.status_code == 403
    refused = get(anonymous, clock, "/v2/strict/app/manifests/v1")
    assert error_code(refused) == "DENIED"
    assert "verified mode: no signature by a key trusted for strict" in json.loads(refused.body)["errors"][0]["message"]
    # A token that may push is exempt: signing an image reads it first.
    assert client.get("/v2/strict/app/manifests/v1").status_code == 200

    sign(client, "strict/app", digest, f"{HOST}/strict/app:other", fingerprint)
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 403  # another identity
    assert get(anonymous, clock, f"/v2/strict/app/manifests/{digest}").status_code == 200  # same repository
    sign(client, "strict/app", digest, f"{HOST}/strict/app:v1", fingerprint, name="v1")
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 200
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1", "HEAD").status_code == 307

    SigningService(registry).remove_key("strict", fingerprint)
    assert get(anonymous, clock, "/v2/strict/app/manifests/v1").status_code == 403


def test_children_of_a_signed_index_are_served(client, anonymous, clock, push, registry, release_key):
    fingerprint, public = release_key
    SigningService(registry).add_keys("multi", public)
    child_body, child = push.image("multi/app")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}).encode()
    assert push.manifest("multi/app", "v1", index).status_code == 201
    set_policy("multi/app", verified=True, auto_sign=None)
    assert get(anonymous, clock, f"/v2/multi/app/manifests/{child}").status_code == 403
    index_digest = client.get("/v2/multi/app/manifests/v1").headers["Docker-Content-Digest"]
    sign(client, "multi/app", index_digest, f"{HOST}/multi/app:v1", fingerprint)
    assert get(anonymous, clock, f"/v2/multi/app/manifests/{child}").status_code == 200


def test_automatic_signing_signs_tag_pushes_with_the_registry_key(client, push, registry):
    """The key comes from its Secrets Manager secret, as deployed (the local stack and the e2e
    tests pass it in the environment instead)."""
    armored = gpg.generate_signing_key("test registry")
    import boto3
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=f"dockless-test-registry-signing-key-{uuid.uuid4().hex}", SecretString=armored)["ARN"]
    import chalicelib.signing.service as service_module
    service_module._registry_fingerprint = None
    use_services(dataclasses.replace(registry, settings=dataclasses.replace(
        registry.settings, registry_signing_key=None, registry_signing_key_secret=secret)))
    set_policy("auto", verified=None, auto_sign=True)
    _, digest = push.image("auto/app", "v1")
    signatures = client.get(f"/extensions/v2/auto/app/signatures/{digest}").json_body["signatures"]
    assert len(signatures) == 1 and signatures[0]["name"].startswith(f"{digest}@registry-")
    keys = client.get("/keys/_registry").json_body["keys"]
    assert len(keys) == 1 and "s" in keys[0]["capabilities"]
    checked = gpg.verify_opaque(base64.b64decode(signatures[0]["content"]), [])
    assert json.loads(checked.payload)["critical"]["identity"]["docker-reference"] == f"{HOST}/auto/app:v1"
    assert checked.fingerprint == keys[0]["fingerprint"]
    service_module._registry_fingerprint = None
