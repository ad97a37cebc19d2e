"""cosign's signatures by key (chalicelib/signing/cosign.py), in process: made here with
`cryptography` exactly as cosign writes them (a `sha256-<hex>.sig` manifest of simple-signing
payload layers, the signature in the layer's annotation), trusted by a namespace's PEM key, and
counted by verified mode only when they verify for this digest and this repository."""
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from chalicelib.backend import backend
from chalicelib.metadata.models import BlobLink, SigningKey
from chalicelib.policy.settings import SettingsService
from chalicelib.signing import cosign
from tests.api.test_verified import HOST, get
from tests.fixtures import OCI_MANIFEST, error_code

JSON = {"Content-Type": "application/json"}


def pem(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def payload(digest, identity) -> bytes:
    return json.dumps({"critical": {"identity": {"docker-reference": identity},
                                    "image": {"docker-manifest-digest": digest}, "type": cosign.COSIGN_TYPE},
                       "optional": None}).encode()


def sign_bytes(private, data: bytes) -> bytes:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return private.sign(data)


def push_signatures(push, repo, digest, *layers):
    """The `.sig` manifest cosign pushes: one simple-signing layer per (payload, signature)."""
    config = push.blob(repo, b"{}")
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [
        dict(push.blob(repo, body), mediaType=cosign.SIMPLE_SIGNING,
             annotations={cosign.SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()})
        for body, signature in layers]}
    answer = push.manifest(repo, cosign.signature_tag(digest), json.dumps(document).encode())
    assert answer.status_code == 201, answer.body
    return answer


@pytest.fixture
def signer(client):
    """A P-256 key (what `cosign generate-key-pair` makes) trusted for namespace team."""
    private = ec.generate_private_key(ec.SECP256R1())
    added = client.put("/dockless/admin/v1/keys/team", body=pem(private), headers={"Content-Type": "text/plain"})
    assert added.status_code == 201, added.body
    return private


def test_a_cosign_key_is_trusted_listed_published_and_audited(client, anonymous):
    private = ec.generate_private_key(ec.SECP256R1())
    added = client.put("/dockless/admin/v1/keys/team", body=pem(private), headers={"Content-Type": "text/plain"})
    assert added.status_code == 201
    (key,) = json.loads(added.body)["keys"]
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    assert key["fingerprint"] == hashlib.sha256(der).hexdigest().upper()
    assert (key["algorithm"], key["length"]) == ("ecdsa-secp256r1", 256)
    published = anonymous.get("/keys/team/cosign.pub")
    assert published.status_code == 200 and published.body.decode() == pem(private)
    assert published.headers["Content-Type"] == "application/x-pem-file"
    assert anonymous.get(f"/keys/team/{key['fingerprint'].lower()}.pub").body.decode() == pem(private)
    assert anonymous.get("/keys/team/KEYS").body == b""  # the OpenPGP keyring holds no cosign key
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert [(e["action"], e["reference"], e["detail"]) for e in events if e["action"] == "key.add"] == [
        ("key.add", key["fingerprint"], {"format": "cosign"})]


@pytest.mark.parametrize("make, said", [
    (lambda: rsa.generate_private_key(65537, 1024), "RSA of at least 2048 bits"),
    (lambda: ec.generate_private_key(ec.SECP256K1()), "ECDSA (P-256, P-384, P-521)"),
])
def test_a_key_cosign_does_not_sign_with_is_refused_and_nothing_is_kept(client, state, make, said):
    before = state()
    refused = client.put("/dockless/admin/v1/keys/team", body=pem(make()), headers={"Content-Type": "text/plain"})
    assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert said in json.loads(refused.body)["errors"][0]["message"]
    garbage = client.put("/dockless/admin/v1/keys/team",
                         body="-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
                         headers={"Content-Type": "text/plain"})
    assert garbage.status_code == 400 and "not a PEM public key" in json.loads(garbage.body)["errors"][0]["message"]
    assert state() == before


@pytest.mark.parametrize("make", [lambda: ec.generate_private_key(ec.SECP256R1()),
                                  lambda: rsa.generate_private_key(65537, 2048),
                                  ed25519.Ed25519PrivateKey.generate])
def test_verified_mode_serves_what_a_trusted_cosign_key_signed(client, anonymous, clock, push, make):
    private = make()
    assert client.put("/dockless/admin/v1/keys/team", body=pem(private),
                      headers={"Content-Type": "text/plain"}).status_code == 201
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", verified=True)
    refused = get(anonymous, clock, "/v2/team/app/manifests/v1")
    assert refused.status_code == 403 and error_code(refused) == "DENIED"
    signed = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, (signed, sign_bytes(private, signed)))
    for path in ("/v2/team/app/manifests/v1", f"/v2/team/app/manifests/{digest}"):
        assert get(anonymous, clock, path).status_code == 200
        assert get(anonymous, clock, path, "HEAD").status_code == 200


def test_a_signature_that_exists_but_does_not_vouch_counts_as_none(client, anonymous, clock, push, signer):
    _, digest = push.image("team/app", "v1")
    _, other = push.image("team/app", "v2", layers=(b"something else",))
    SettingsService(backend()).change("team", verified=True)
    stranger = ec.generate_private_key(ec.SECP256R1())
    wrong = [
        (payload(other, f"{HOST}/team/app"), signer),         # for another digest
        (payload(digest, f"{HOST}/team/other"), signer),      # naming another repository
        (payload(digest, "elsewhere.test/team/app"), signer),  # naming another registry
        (payload(digest, f"{HOST}/team/app"), stranger),      # by a key nobody trusts
    ]
    layers = [(body, sign_bytes(key, body)) for body, key in wrong]
    tampered = payload(digest, f"{HOST}/team/app")
    layers.append((tampered.replace(b"null", b"{}"), sign_bytes(signer, tampered)))  # other bytes than signed
    layers.append((json.dumps({"critical": {"identity": {"docker-reference": f"{HOST}/team/app"},
                                            "image": {"docker-manifest-digest": digest},
                                            "type": "atomic container signature"}}).encode(), None))
    layers[-1] = (layers[-1][0], sign_bytes(signer, layers[-1][0]))  # signed, but not cosign's type
    push_signatures(push, "team/app", digest, *layers)
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403
    # One good layer among them is enough.
    good = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, *layers, (good, sign_bytes(signer, good)))
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200
    # Withdrawing the key withdraws its signatures at once.
    (key,) = SigningKey.query("team")
    assert client.delete(f"/dockless/admin/v1/keys/team/{key.fingerprint}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403


def test_the_signature_artifact_is_served_unsigned_but_an_image_under_its_tag_is_not(client, anonymous, clock,
                                                                                     push, signer):
    _, digest = push.image("team/app", "v1")
    signed = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, (signed, sign_bytes(signer, signed)))
    SettingsService(backend()).change("team", verified=True)
    tag = cosign.signature_tag(digest)
    assert get(anonymous, clock, f"/v2/team/app/manifests/{tag}").status_code == 200  # cosign verify reads it
    push.image("team/app", f"sha256-{'0' * 64}.sig", layers=(b"unsigned",))  # a runnable image under a cosign tag
    refused = get(anonymous, clock, f"/v2/team/app/manifests/sha256-{'0' * 64}.sig")
    assert refused.status_code == 403 and error_code(refused) == "DENIED"


def test_cosign_adds_a_signature_to_an_immutable_repository(client, push, signer):
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", immutable_tags=["*"])
    first = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, (first, sign_bytes(signer, first)))
    second = payload(digest, f"{HOST}/team/app:v1")
    push_signatures(push, "team/app", digest, (first, sign_bytes(signer, first)), (second, sign_bytes(signer, second)))
    refused = push.manifest("team/app", "v1", push.image("team/app", layers=(b"new",))[0])
    assert refused.status_code == 403 and error_code(refused) == "DENIED"  # the image's own tag stays immutable


def test_the_referrers_fallback_tag_moves_in_an_immutable_repository(client, push):
    """A client that does not use the referrers API keeps an index of a manifest's referrers at the
    tag `sha256-<hex>` and rewrites it as referrers are added (the distribution-spec's fallback)."""
    from tests.fixtures import OCI_INDEX
    _, digest = push.image("team/app", "v1")
    SettingsService(backend()).change("team", immutable_tags=["*"])
    fallback = digest.replace(":", "-")
    _, first = push.image("team/app", None, layers=(b"a referrer",))
    _, second = push.image("team/app", None, layers=(b"another referrer",))
    for listed in ([first], [first, second]):
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in listed]}).encode()
        answer = push.manifest("team/app", fallback, index, OCI_INDEX)
        assert answer.status_code == 201, answer.body



def test_automatic_signing_adds_a_signature_stock_cosign_verifies(client, anonymous, clock, push, registry_key):
    """The registry's cosign key (beside its GPG key in one secret) signs each tag push in cosign's
    format: a `.sig` manifest whose payload names the digest and `<host>/<repo>`, its signature
    checked here as cosign checks it, against the published /keys/_registry/cosign.pub."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from chalicelib.signing import gpg
    registry_key(gpg.generate_signing_key("Registry") + "\n" + cosign.generate_private_key())
    SettingsService(backend()).change("auto", auto_sign=True)
    _, digest = push.image("auto/app", "v1")
    published = anonymous.get("/keys/_registry/cosign.pub")
    assert published.status_code == 200
    public = load_pem_public_key(published.body)
    document = client.get(f"/v2/auto/app/manifests/{cosign.signature_tag(digest)}").json_body
    (layer,) = document["layers"]
    assert layer["mediaType"] == cosign.SIMPLE_SIGNING
    assert client.get(f"/v2/auto/app/blobs/{layer['digest']}").status_code == 307  # served as any blob
    data = backend().objects.get(BlobLink.get("auto/app", layer["digest"]).location)
    assert json.loads(data)["critical"] == {"identity": {"docker-reference": f"{HOST}/auto/app"},
                                            "image": {"docker-manifest-digest": digest}, "type": cosign.COSIGN_TYPE}
    public.verify(base64.b64decode(layer["annotations"][cosign.SIGNATURE_ANNOTATION]), data, ec.ECDSA(hashes.SHA256()))
    # Pushed again under another tag: signed already, nothing added. The `.sig` tag itself is not signed.
    assert push.manifest("auto/app", "v2", client.get(f"/v2/auto/app/manifests/{digest}").body).status_code == 201
    assert len(client.get(f"/v2/auto/app/manifests/{cosign.signature_tag(digest)}").json_body["layers"]) == 1
    sig_digest = client.get(f"/v2/auto/app/manifests/{cosign.signature_tag(digest)}").headers["Docker-Content-Digest"]
    assert client.get(f"/extensions/v2/auto/app/signatures/{sig_digest}").json_body["signatures"] == []
    assert client.get(f"/v2/auto/app/manifests/{cosign.signature_tag(sig_digest)}").status_code == 404


def test_the_registrys_cosign_signature_counts_in_verified_mode_beside_a_teams(client, anonymous, clock, push, signer,
                                                                              registry_key):
    from chalicelib.signing import gpg
    registry_key(gpg.generate_signing_key("Registry") + "\n" + cosign.generate_private_key())
    _, digest = push.image("team/app", None)
    team_signed = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, (team_signed, sign_bytes(signer, team_signed)))
    SettingsService(backend()).change("team", auto_sign=True, verified=True)
    assert push.manifest("team/app", "v1", client.get(f"/v2/team/app/manifests/{digest}").body).status_code == 201
    layers = client.get(f"/v2/team/app/manifests/{cosign.signature_tag(digest)}").json_body["layers"]
    assert len(layers) == 2  # the team's signature kept, the registry's added
    # Without the registry's GPG key, its cosign signature alone still vouches; without the team's key too.
    gpg_key = next(k for k in SigningKey.query("_registry") if not cosign.holds_public_keys(k.armored))
    assert client.delete(f"/dockless/admin/v1/keys/_registry/{gpg_key.fingerprint}").status_code == 204
    (team_key,) = SigningKey.query("team")
    assert client.delete(f"/dockless/admin/v1/keys/team/{team_key.fingerprint}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 200
    cosign_key = next(k for k in SigningKey.query("_registry"))
    assert client.delete(f"/dockless/admin/v1/keys/_registry/{cosign_key.fingerprint}").status_code == 204
    assert get(anonymous, clock, "/v2/team/app/manifests/v1").status_code == 403


def test_a_key_trusted_for_one_repository_vouches_for_no_other(client, anonymous, clock, push):
    private = ec.generate_private_key(ec.SECP256R1())
    assert client.put("/dockless/admin/v1/keys/team?repositories=app", body=pem(private),
                      headers={"Content-Type": "text/plain"}).status_code == 201
    SettingsService(backend()).change("team", verified=True)
    for repository, served in (("team/app", 200), ("team/other", 403)):
        _, digest = push.image(repository, "v1")
        signed = payload(digest, f"{HOST}/{repository}")
        push_signatures(push, repository, digest, (signed, sign_bytes(private, signed)))
        assert get(anonymous, clock, f"/v2/{repository}/manifests/v1").status_code == served, repository
    assert anonymous.get("/keys/team/cosign.pub?repository=team/app").body.decode() == pem(private)
    assert anonymous.get("/keys/team/cosign.pub?repository=team/other").body == b""
