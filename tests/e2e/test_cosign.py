"""cosign-format signatures against real clients: a signature made here as cosign makes one (an
ECDSA P-256 key, a simple-signing payload, the `sha256-<hex>.sig` manifest: Debian's skopeo and
podman are built with sigstore disabled and no cosign is installable here) is pushed through the
registry API, the namespace trusts the cosign public key through the CLI, and verified mode serves
docker what that key signed and refuses the rest; skopeo reads the signature artifact back. The
same for keyless signatures against a trusted root and identity imported through the CLI, sigstore
bundles and notation signatures attached as referrers."""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.signing import cosign
from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import OciLayout


def push_blob(http, url, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    answer = http.post(f"{url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data,
                       headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 201, answer.text
    return {"digest": digest, "size": len(data)}


def simple_signing(host, repo, digest) -> bytes:
    return json.dumps({"critical": {"identity": {"docker-reference": f"{host}/{repo}"},
                                    "image": {"docker-manifest-digest": digest}, "type": cosign.COSIGN_TYPE},
                       "optional": None}).encode()


def push_signature(http, url, repo, digest, payload, annotations):
    """The `.sig` manifest cosign pushes for one signed payload."""
    document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(push_blob(http, url, repo, b"{}"), mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": [dict(push_blob(http, url, repo, payload), mediaType=cosign.SIMPLE_SIGNING,
                                annotations=annotations)]}
    answer = http.put(f"{url}/v2/{repo}/manifests/{cosign.signature_tag(digest)}", data=json.dumps(document),
                      headers={"Content-Type": document["mediaType"]})
    assert answer.status_code == 201, answer.text


def cosign_sign(http, url, host, repo, digest, private):
    """What `cosign sign --key cosign.key host/repo@digest` pushes."""
    payload = simple_signing(host, repo, digest)
    signature = private.sign(payload, ec.ECDSA(hashes.SHA256()))
    push_signature(http, url, repo, digest, payload, {cosign.SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()})


def attach(http, url, repo, subject, artifact_type, layer_type, data):
    """An OCI 1.1 referrer of `subject` holding `data` as its one layer (cosign's bundles, notation)."""
    layer = dict(push_blob(http, url, repo, data), mediaType=layer_type)
    empty = dict(push_blob(http, url, repo, b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "artifactType": artifact_type, "config": empty, "layers": [layer],
                       "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject,
                                   "size": 1}})
    referrer = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    answer = http.put(f"{url}/v2/{repo}/manifests/{referrer}", data=body,
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert answer.status_code == 201, answer.text


def signed_in(stack, tmp_path):
    """`dockless(*args, check=True)`: the CLI, logged in to the stack as its admin."""
    env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}
    run(sys.executable, "-m", "dockless.cli", "login", stack.url, "-u", "admin", "--password-stdin", env=env,
        input=stack.admin_token)
    return lambda *args, check=True: run(sys.executable, "-m", "dockless.cli", *args, env=env, check=check)


def served_only_if_signed(dockless, docker, dockerd, namespace, signed, unsigned):
    """With verified mode on for `namespace`, docker pulls `signed` and is refused `unsigned`;
    `dockless verify` then passes the one (its output returned) and fails the other (returned too)."""
    dockless("repo", "set", namespace, "--verified")
    docker("pull", signed)
    refused = run(DOCKER, "pull", unsigned, env=dockerd, check=False)
    assert refused.returncode != 0
    assert f"verified mode: no signature by a key trusted for {namespace}" in refused.stderr
    docker("rmi", signed)
    good, bad = dockless("verify", signed, check=False), dockless("verify", unsigned, check=False)
    assert good.returncode == 0, good.stderr
    assert bad.returncode == 1, bad.stdout
    return good.stdout, bad.stdout


def two_images(skopeo, stack, tmp_path, namespace, sizes):
    """`namespace/app:1` and `namespace/other:1`, pushed with skopeo: (references, digests)."""
    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([sizes[0]]), "v1")
    layout.tag(layout.add_image([sizes[1]]), "v2")
    references = f"{stack.host}/{namespace}/app:1", f"{stack.host}/{namespace}/other:1"
    for version, reference in zip(("v1", "v2"), references):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:{version}", f"docker://{reference}")
    return references, [json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{r}").stdout)["Digest"]
                        for r in references]


def test_verified_mode_serves_docker_what_a_trusted_cosign_key_signed(stack, skopeo, docker, dockerd, http,
                                                                       tmp_path):
    private = ec.generate_private_key(ec.SECP256R1())
    public_key = tmp_path / "cosign.pub"
    public_key.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    dockless = signed_in(stack, tmp_path)
    assert "ecdsa-secp256r1" in dockless("key", "add", "cosigned", str(public_key)).stdout
    assert http.get(f"{stack.url}/keys/cosigned/cosign.pub").content == public_key.read_bytes()

    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "cosigned", (14_000, 15_000))
    cosign_sign(http, stack.url, stack.host, "cosigned/app", digest, private)
    stranger = ec.generate_private_key(ec.SECP256R1())
    cosign_sign(http, stack.url, stack.host, "cosigned/other", other, stranger)  # by a key nobody trusts
    # The signature artifact, as a verifier reads it back (pull-only callers: tests/api/test_cosign.py).
    tag = cosign.signature_tag(digest)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{stack.host}/cosigned/app:{tag}").stdout)
    assert raw["layers"][0]["mediaType"] == cosign.SIMPLE_SIGNING

    # dockless verify reports each cosign signature, its key and its verdict.
    good, bad = served_only_if_signed(dockless, docker, dockerd, "cosigned", signed, unsigned)
    fingerprint = http.get(f"{stack.url}/keys/cosigned").json()["keys"][0]["fingerprint"]
    assert f"{tag} #1\n  cosign key {fingerprint}\n  trusted, verified; identity {stack.host}/cosigned/app" in good
    assert "cosign: no trusted key\n  NOT trusted or not verified" in bad


SUBJECT = "https://github.test/acme/app/.github/workflows/release.yml@refs/heads/main"


def test_verified_mode_serves_docker_what_a_trusted_identity_signed_keylessly(stack, skopeo, docker, dockerd, http,
                                                                               tmp_path):
    """Keyless: the namespace imports a trusted root and trusts one workflow's identity through the
    CLI; the signature is made as `cosign sign` without a key makes it (tests/sigstore.py)."""
    from tests.sigstore import ISSUER, Sigstore
    sigstore = Sigstore()
    root = tmp_path / "trusted_root.json"
    root.write_text(sigstore.trusted_root())
    dockless = signed_in(stack, tmp_path)
    assert "sigstore-trusted-root" in dockless("key", "add", "keyless", str(root)).stdout
    added = dockless("key", "add", "keyless", "--issuer", ISSUER, "--subject", "https://github.test/acme/*@refs/heads/main")
    assert f"https://github.test/acme/*@refs/heads/main ({ISSUER})" in added.stdout
    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "keyless", (16_000, 17_000))
    for repo, image, signer in (("keyless/app", digest, SUBJECT),
                                ("keyless/other", other, "https://github.test/mallory/app/x.yml@refs/heads/main")):
        payload = simple_signing(stack.host, repo, image)
        push_signature(http, stack.url, repo, image, payload, sigstore.sign(payload, signer))
    good, bad = served_only_if_signed(dockless, docker, dockerd, "keyless", signed, unsigned)
    assert f"cosign keyless: certificate for {SUBJECT} ({ISSUER}), trusted identity" in good
    assert "no trusted identity\n  NOT trusted or not verified" in bad


def test_verified_mode_serves_docker_what_a_sigstore_bundle_vouches_for(stack, skopeo, docker, dockerd, http,
                                                                         tmp_path):
    """`cosign sign --new-bundle-format`: a referrer of the image holding a keyless sigstore bundle,
    logged as Rekor v2 logs it (an inclusion proof, a timestamp authority's time); the other
    image's, as Rekor v1 does (a signed entry timestamp), by an identity nobody trusts."""
    from tests.sigstore import ISSUER, Sigstore
    sigstore = Sigstore()
    root = tmp_path / "trusted_root.json"
    root.write_text(sigstore.trusted_root())
    dockless = signed_in(stack, tmp_path)
    dockless("key", "add", "bundled", str(root))
    dockless("key", "add", "bundled", "--issuer", ISSUER, "--subject", SUBJECT)
    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "bundled", (18_000, 19_000))
    media_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
    attach(http, stack.url, "bundled/app", digest, media_type, media_type, sigstore.v2_bundle(SUBJECT, digest=digest))
    attach(http, stack.url, "bundled/other", other, media_type, media_type,
           sigstore.bundle(other, "mallory@example.test"))
    good, bad = served_only_if_signed(dockless, docker, dockerd, "bundled", signed, unsigned)
    assert f"sigstore bundle: certificate for {SUBJECT} ({ISSUER}), trusted" in good
    assert "nothing trusted made it\n  NOT trusted or not verified" in bad


def test_verified_mode_serves_docker_what_a_trusted_notation_signature_vouches_for(stack, skopeo, docker, dockerd,
                                                                                   http, tmp_path):
    """`notation sign --timestamp-url`: a referrer holding a JWS envelope with a TSA's timestamp; the
    trust store's root and the TSA's root added through the CLI."""
    from datetime import datetime, timezone
    from cryptography.hazmat.primitives import serialization
    from tests.notary import ARTIFACT_TYPE, Notary
    from tests.sigstore import TimestampAuthority
    notary, stranger, authority = Notary(), Notary(), TimestampAuthority()
    root, tsa_root = tmp_path / "wabbit-networks.crt", tmp_path / "tsa-root.crt"
    root.write_text(notary.root_pem)
    tsa_root.write_bytes(authority.root.public_bytes(serialization.Encoding.PEM))
    dockless = signed_in(stack, tmp_path)
    assert "wabbit-networks root" in dockless("key", "add", "notary", str(root)).stdout
    assert "tsa-root" in dockless("key", "add", "notary", str(tsa_root), "--trust-store", "tsa").stdout
    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "notary", (20_000, 21_000))
    stamp = (lambda signature: authority.notation_token(signature, datetime.now(timezone.utc)))
    attach(http, stack.url, "notary/app", digest, ARTIFACT_TYPE, "application/jose+json",
           notary.envelope(digest, stamp=stamp))
    attach(http, stack.url, "notary/other", other, ARTIFACT_TYPE, "application/jose+json",
           stranger.envelope(other, stamp=stamp))
    good, bad = served_only_if_signed(dockless, docker, dockerd, "notary", signed, unsigned)
    assert "notation: certificate CN=wabbit-networks signer,O=wabbit-networks.test,ST=WA,C=US, trusted root" in good
    assert "no trusted root\n  NOT trusted or not verified" in bad
