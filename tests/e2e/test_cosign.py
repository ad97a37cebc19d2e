"""cosign-format signatures against real clients: a signature made here as cosign makes one (an
ECDSA P-256 key, a simple-signing payload, the `sha256-<hex>.sig` manifest: Debian's skopeo and
podman are built with sigstore disabled and no cosign is installable here) is pushed through the
registry API, the namespace trusts the cosign public key through the CLI, and verified mode serves
docker what that key signed and refuses the rest; skopeo reads the signature artifact back. The
same for keyless signatures against a trusted root and identity imported through the CLI."""
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
    cli_env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}
    run(sys.executable, "-m", "dockless.cli", "login", stack.url, "-u", "admin", "--password-stdin",
        env=cli_env, input=stack.admin_token)
    added = run(sys.executable, "-m", "dockless.cli", "key", "add", "cosigned", str(public_key), env=cli_env).stdout
    assert "ecdsa-secp256r1" in added
    assert http.get(f"{stack.url}/keys/cosigned/cosign.pub").content == public_key.read_bytes()

    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "cosigned", (14_000, 15_000))
    cosign_sign(http, stack.url, stack.host, "cosigned/app", digest, private)
    stranger = ec.generate_private_key(ec.SECP256R1())
    cosign_sign(http, stack.url, stack.host, "cosigned/other", other, stranger)  # by a key nobody trusts

    run(sys.executable, "-m", "dockless.cli", "repo", "set", "cosigned", "--verified", env=cli_env)
    docker("pull", signed)
    refused = run(DOCKER, "pull", unsigned, env=dockerd, check=False)
    assert refused.returncode != 0
    assert "verified mode: no signature by a key trusted for cosigned" in refused.stderr
    # The signature artifact, as a verifier reads it back (pull-only callers: tests/api/test_cosign.py).
    tag = cosign.signature_tag(digest)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{stack.host}/cosigned/app:{tag}").stdout)
    assert raw["layers"][0]["mediaType"] == cosign.SIMPLE_SIGNING
    docker("rmi", signed)

    # dockless verify reports each cosign signature, its key and its verdict.
    def verify(reference):
        return run(sys.executable, "-m", "dockless.cli", "verify", reference, env=cli_env, check=False)
    fingerprint = http.get(f"{stack.url}/keys/cosigned").json()["keys"][0]["fingerprint"]
    good = verify(signed)
    assert good.returncode == 0, good.stderr
    assert f"{tag} #1\n  cosign key {fingerprint}\n  trusted, verified; identity {stack.host}/cosigned/app" in good.stdout
    bad = verify(unsigned)
    assert bad.returncode == 1
    assert "cosign: no trusted key\n  NOT trusted or not verified" in bad.stdout


def test_verified_mode_serves_docker_what_a_trusted_identity_signed_keylessly(stack, skopeo, docker, dockerd, http,
                                                                               tmp_path):
    """Keyless: the namespace imports a trusted root and trusts one workflow's identity through the
    CLI; the signature is made as `cosign sign` without a key makes it (tests/sigstore.py)."""
    from tests.sigstore import ISSUER, Sigstore
    sigstore = Sigstore()
    root = tmp_path / "trusted_root.json"
    root.write_text(sigstore.trusted_root())
    subject = "https://github.test/acme/app/.github/workflows/release.yml@refs/heads/main"
    cli_env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}
    run(sys.executable, "-m", "dockless.cli", "login", stack.url, "-u", "admin", "--password-stdin",
        env=cli_env, input=stack.admin_token)
    assert "sigstore-trusted-root" in run(sys.executable, "-m", "dockless.cli", "key", "add", "keyless", str(root),
                                          env=cli_env).stdout
    added = run(sys.executable, "-m", "dockless.cli", "key", "add", "keyless", "--issuer", ISSUER, "--subject",
                "https://github.test/acme/*@refs/heads/main", env=cli_env).stdout
    assert f"https://github.test/acme/*@refs/heads/main ({ISSUER})" in added

    (signed, unsigned), (digest, other) = two_images(skopeo, stack, tmp_path, "keyless", (16_000, 17_000))
    payload = simple_signing(stack.host, "keyless/app", digest)
    push_signature(http, stack.url, "keyless/app", digest, payload, sigstore.sign(payload, subject))
    payload = simple_signing(stack.host, "keyless/other", other)
    push_signature(http, stack.url, "keyless/other", other, payload,
                   sigstore.sign(payload, "https://github.test/mallory/app/.github/workflows/x.yml@refs/heads/main"))

    run(sys.executable, "-m", "dockless.cli", "repo", "set", "keyless", "--verified", env=cli_env)
    docker("pull", signed)
    refused = run(DOCKER, "pull", unsigned, env=dockerd, check=False)
    assert refused.returncode != 0 and "verified mode: no signature by a key trusted for keyless" in refused.stderr
    docker("rmi", signed)

    # dockless verify, with the registry's published trust, names the certificate and its verdict.
    good = run(sys.executable, "-m", "dockless.cli", "verify", signed, env=cli_env, check=False)
    assert good.returncode == 0, good.stderr
    assert f"cosign keyless: certificate for {subject} ({ISSUER}), trusted identity" in good.stdout
    bad = run(sys.executable, "-m", "dockless.cli", "verify", unsigned, env=cli_env, check=False)
    assert bad.returncode == 1 and "no trusted identity\n  NOT trusted or not verified" in bad.stdout
