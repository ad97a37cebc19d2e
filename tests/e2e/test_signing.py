"""Signed images with real gpg and skopeo: skopeo signs into the registry, a policy.json built on
the namespace's KEYS enforces it, and bad signatures and keys are refused."""
import base64
import json
import os


from tests.e2e.conftest import run, signed_by_policy
from tests.e2e.images import OciLayout


def export(gnupg, fingerprint, secret=False):
    return run("gpg", "--armor", "--export-secret-keys" if secret else "--export", fingerprint, env=gnupg["env"]).stdout


def test_skopeo_signs_and_a_signed_by_policy_enforces_it(stack, skopeo, http, gnupg, registry_auth, tmp_path):
    added = http.put(f"{stack.url}/dockless/admin/v1/keys/team", data=export(gnupg, gnupg["release"]))
    assert added.status_code == 201
    assert added.json()["keys"][0]["fingerprint"] == gnupg["release"]
    assert added.json()["warnings"] == []

    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([10_000]), "v1")
    layout.tag(layout.add_image([11_000]), "v2")
    sign_env = {**gnupg["env"], "REGISTRY_AUTH_FILE": str(registry_auth.path)}
    signed, unsigned, stranger = (f"{stack.host}/team/{n}:1" for n in ("signed", "unsigned", "stranger"))
    run("skopeo", "copy", "--dest-tls-verify=false", "--sign-by", gnupg["release"], f"oci:{layout.path}:v1",
        f"docker://{signed}", env=sign_env)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v2", f"docker://{unsigned}")
    run("skopeo", "copy", "--dest-tls-verify=false", "--sign-by", gnupg["stranger"], f"oci:{layout.path}:v2",
        f"docker://{stranger}", env=sign_env)

    digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{signed}").stdout)["Digest"]
    listed = http.get(f"{stack.url}/extensions/v2/team/signed/signatures/{digest}").json()["signatures"]
    assert len(listed) == 1
    assert listed[0]["schemaVersion"] == 2 and listed[0]["type"] == "atomic"
    assert listed[0]["name"].startswith(f"{digest}@")

    keys_file = tmp_path / "KEYS"
    keys_file.write_bytes(http.get(f"{stack.url}/keys/team/KEYS").content)
    imported = run("gpg", "--with-colons", "--show-keys", str(keys_file)).stdout
    assert gnupg["release"] in imported and gnupg["stranger"] not in imported
    policy = signed_by_policy(tmp_path, f"{stack.host}/team", keys_file)

    def pull(reference, check=True):
        # dir: keeps signatures (an OCI layout cannot); the policy judges the source either way.
        return skopeo("copy", "--policy", str(policy), "--src-tls-verify=false", f"docker://{reference}",
                      f"dir:{tmp_path / 'out'}", check=check)

    pull(signed)
    for refused in (unsigned, stranger):
        result = pull(refused, check=False)
        assert result.returncode != 0, refused
        assert "rejected" in result.stderr or "not signed" in result.stderr or "Signature" in result.stderr
    # A retagged copy carries the signature of another identity: refused too.
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{signed}",
           f"docker://{stack.host}/team/signed:retagged")
    assert pull(f"{stack.host}/team/signed:retagged", check=False).returncode != 0


def test_bad_signatures_and_keys_are_refused_and_nothing_is_stored(stack, skopeo, http, gnupg, registry_auth,
                                                                   tmp_path):
    http.put(f"{stack.url}/dockless/admin/v1/keys/team", data=export(gnupg, gnupg["release"]))
    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([12_000]), "v1")
    layout.tag(layout.add_image([13_000]), "v2")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{stack.host}/team/bad:1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v2", f"docker://{stack.host}/team/bad:2")
    digests = [json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{stack.host}/team/bad:{t}").stdout)["Digest"]
               for t in ("1", "2")]

    def signed_payload(digest, clearsign=False):
        payload = json.dumps({"critical": {"type": "atomic container signature",
                                           "image": {"docker-manifest-digest": digest},
                                           "identity": {"docker-reference": f"{stack.host}/team/bad:1"}},
                              "optional": {}})
        mode = "--clearsign" if clearsign else "--sign"
        return run("gpg", "--batch", "--local-user", gnupg["release"], mode, "--output", "-", env=gnupg["env"],
                   input=payload).stdout if clearsign else _binary_sign(gnupg, payload)

    good = _binary_sign(gnupg, json.dumps({"critical": {"type": "atomic container signature",
                                                        "image": {"docker-manifest-digest": digests[0]},
                                                        "identity": {"docker-reference": f"{stack.host}/team/bad:1"}},
                                           "optional": {}}))
    corrupted = good[:-20] + bytes(20)
    cases = {
        "corrupted": (digests[0], corrupted),
        "another digest": (digests[0], signed_payload(digests[1])),
        "cleartext": (digests[0], signed_payload(digests[0], clearsign=True).encode()),
    }
    for label, (digest, content) in cases.items():
        response = http.put(f"{stack.url}/extensions/v2/team/bad/signatures/{digest}",
                            json={"schemaVersion": 2, "type": "atomic", "name": f"{digest}@{label.replace(' ', '')}",
                                  "content": base64.b64encode(content).decode()})
        assert response.status_code == 400, label
        assert response.json()["errors"][0]["code"] == "SIGNATURE_INVALID", label
    for digest in digests:
        assert http.get(f"{stack.url}/extensions/v2/team/bad/signatures/{digest}").json()["signatures"] == []

    ok = http.put(f"{stack.url}/extensions/v2/team/bad/signatures/{digests[0]}",
                  json={"schemaVersion": 2, "type": "atomic", "name": f"{digests[0]}@one",
                        "content": base64.b64encode(good).decode()})
    assert ok.status_code == 201 and ok.content == b""
    again = http.put(f"{stack.url}/extensions/v2/team/bad/signatures/{digests[0]}",
                     json={"schemaVersion": 2, "type": "atomic", "name": f"{digests[0]}@one",
                           "content": base64.b64encode(good).decode()})
    assert again.status_code == 409
    wrong_name = http.put(f"{stack.url}/extensions/v2/team/bad/signatures/{digests[0]}",
                          json={"schemaVersion": 2, "type": "atomic", "name": f"{digests[1]}@x",
                                "content": base64.b64encode(good).decode()})
    assert wrong_name.status_code == 400

    secret = http.put(f"{stack.url}/dockless/admin/v1/keys/secretive", data=export(gnupg, gnupg["stranger"], secret=True))
    assert secret.status_code == 400
    assert http.get(f"{stack.url}/keys/secretive").json()["keys"] == []


def _binary_sign(gnupg, payload: str) -> bytes:
    import subprocess
    return subprocess.run(["gpg", "--batch", "--local-user", gnupg["release"], "--sign", "--output", "-"],
                          input=payload.encode(), env=gnupg["env"], capture_output=True, check=True).stdout


def test_dockless_sign_and_verify_interoperate_with_skopeo(stack, skopeo, http, gnupg, registry_auth, tmp_path):
    import sys
    cli_env = {**gnupg["env"], "DOCKLESS_CONFIG": str(tmp_path / "logins.json"),
               "DOCKLESS_USERNAME": "admin", "DOCKLESS_PASSWORD": stack.admin_token}

    def dockless(*args, check=True, input=None):
        return run(sys.executable, "-m", "dockless.cli", *args, env=cli_env, check=check, input=input)

    dockless("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token)
    (tmp_path / "release.asc").write_text(export(gnupg, gnupg["release"]))
    (tmp_path / "stranger.asc").write_text(export(gnupg, gnupg["stranger"]))
    assert gnupg["release"] in dockless("key", "add", "signed", str(tmp_path / "release.asc")).stdout
    assert gnupg["release"] in dockless("key", "list", "signed").stdout

    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([9_000]), "v1")
    layout.tag(layout.add_image([9_500]), "v2")
    by_dockless, by_skopeo = f"{stack.host}/signed/by-dockless:1", f"{stack.host}/signed/by-skopeo:1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{by_dockless}")
    run("skopeo", "copy", "--dest-tls-verify=false", "--sign-by", gnupg["release"], f"oci:{layout.path}:v2",
        f"docker://{by_skopeo}", env={**gnupg["env"], "REGISTRY_AUTH_FILE": str(registry_auth.path)})

    assert "signed" in dockless("sign", by_dockless, "--key", gnupg["release"]).stdout
    keys_file = tmp_path / "KEYS"
    keys_file.write_bytes(http.get(f"{stack.url}/keys/signed/KEYS").content)
    policy = signed_by_policy(tmp_path, f"{stack.host}/signed", keys_file)
    skopeo("copy", "--policy", str(policy), "--src-tls-verify=false", f"docker://{by_dockless}", f"dir:{tmp_path / 'out'}")

    verified = dockless("verify", by_skopeo)
    fingerprint = gnupg["release"]
    grouped = " ".join(fingerprint[i:i + 4] for i in range(0, 20, 4)) + "  " + \
        " ".join(fingerprint[i:i + 4] for i in range(20, 40, 4))
    assert f"Primary key fingerprint: {grouped}" in verified.stdout
    assert "trusted, verified" in verified.stdout
    untrusted = dockless("verify", by_skopeo, "--keyring", str(tmp_path / "stranger.asc"), check=False)
    assert untrusted.returncode == 1 and "NOT trusted" in untrusted.stdout
    unsigned_layout = OciLayout(tmp_path / "plain")
    unsigned_layout.tag(unsigned_layout.add_image([8_000]), "v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{unsigned_layout.path}:v1", f"docker://{stack.host}/signed/none:1")
    assert dockless("verify", f"{stack.host}/signed/none:1", check=False).returncode == 1
    # In verified mode an admin, with nothing but the stored login, still checks the unsigned
    # image (who may push is exempt), and is told it has no signatures rather than refused.
    dockless("repo", "set", "signed", "--verified")
    del cli_env["DOCKLESS_USERNAME"], cli_env["DOCKLESS_PASSWORD"]
    unsigned = dockless("verify", f"{stack.host}/signed/none:1", check=False)
    assert (unsigned.returncode, unsigned.stdout.strip()) == (1, f"{stack.host}/signed/none:1: no signatures"), \
        unsigned.stderr
    dockless("repo", "set", "signed", "--no-verified")


def test_signed_through_a_gateway_verifies_under_the_public_name(stack, skopeo, http, gnupg, registry_auth, tmp_path):
    """Pushed and signed through a local `dockless gateway`, under the registry's public name
    (`--sign-identity`), the image verifies when pulled from the public name."""
    from tests.e2e import programs
    http.put(f"{stack.url}/dockless/admin/v1/keys/via", data=export(gnupg, gnupg["release"]))
    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([7_000]), "v1")
    public = f"{stack.host}/via/gateway:1"
    with programs.dockless_gateway(stack.api_url, tmp_path) as gateway:
        registry_auth(gateway.host)
        run("skopeo", "copy", "--dest-tls-verify=false", "--sign-by", gnupg["release"], "--sign-identity", public,
            f"oci:{layout.path}:v1", f"docker://{gateway.host}/via/gateway:1",
            env={**gnupg["env"], "REGISTRY_AUTH_FILE": str(registry_auth.path)})
    keys_file = tmp_path / "KEYS"
    keys_file.write_bytes(http.get(f"{stack.url}/keys/via/KEYS").content)
    policy = signed_by_policy(tmp_path, f"{stack.host}/via", keys_file)
    skopeo("copy", "--policy", str(policy), "--src-tls-verify=false", f"docker://{public}", f"dir:{tmp_path / 'out'}")


def test_automatic_signing_and_verified_mode_with_docker(stack, docker, dockerd, skopeo, http, gnupg, tmp_path):
    import sys

    from tests.e2e.conftest import DOCKER
    from tests.e2e.images import dockerfile_context
    cli_env = {**gnupg["env"], "DOCKLESS_CONFIG": str(tmp_path / "logins.json"),
               "DOCKLESS_USERNAME": "admin", "DOCKLESS_PASSWORD": stack.admin_token}

    def dockless(*args, check=True, input=None):
        return run(sys.executable, "-m", "dockless.cli", *args, env=cli_env, check=check, input=input)

    dockless("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token)

    # Automatic signing: a docker push to the namespace is signed with the registry's key.
    dockless("repo", "set", "autosign", "--auto-sign")
    image = f"{stack.host}/autosign/app:1"
    dockerfile_context(tmp_path / "ctx", [15_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    docker("push", image)
    keys_file = tmp_path / "REGISTRY-KEYS"
    keys_file.write_bytes(http.get(f"{stack.url}/keys/_registry/KEYS").content)
    policy = signed_by_policy(tmp_path, f"{stack.host}/autosign", keys_file)
    skopeo("copy", "--policy", str(policy), "--src-tls-verify=false", f"docker://{image}", f"dir:{tmp_path / 'out'}")
    # And in cosign's format, as `cosign verify --key <(curl .../keys/_registry/cosign.pub)` checks it.
    import base64
    import json
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from chalicelib.signing import cosign
    digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{image}").stdout)["Digest"]
    signatures = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                                   f"docker://{stack.host}/autosign/app:{cosign.signature_tag(digest)}").stdout)
    (layer,) = signatures["layers"]
    payload = http.get(f"{stack.url}/v2/autosign/app/blobs/{layer['digest']}").content
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    assert json.loads(payload)["critical"]["identity"]["docker-reference"] == f"{stack.host}/autosign/app"
    load_pem_public_key(http.get(f"{stack.url}/keys/_registry/cosign.pub").content).verify(
        base64.b64decode(layer["annotations"][cosign.SIGNATURE_ANNOTATION]), payload, ec.ECDSA(hashes.SHA256()))

    # Verified mode: an unsigned image is refused to docker pull with a clear message, until signed.
    (tmp_path / "release.asc").write_text(export(gnupg, gnupg["release"]))
    dockless("key", "add", "strict", str(tmp_path / "release.asc"))
    strict = f"{stack.host}/strict/app:1"
    docker("tag", image, strict)
    docker("push", strict)
    dockless("repo", "set", "strict", "--verified")
    docker("rmi", strict)
    refused = run(DOCKER, "pull", strict, env=dockerd, check=False)
    assert refused.returncode != 0
    assert "verified mode: no signature by a key trusted for strict" in refused.stderr
    dockless("sign", strict, "--key", gnupg["release"])
    docker("pull", strict)
    trail = dockless("audit", "--repo", "strict/app", "--json").stdout
    assert '"verified.refused"' in trail


def test_a_key_whose_primary_cannot_sign_is_accepted_with_a_warning(stack, http, tmp_path):
    home = tmp_path / "gnupg-subkey"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    uid = "Subkey Signer <subkey@example.com>"
    run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "cert", "never", env=env)
    fingerprint = next(line.split(":")[9] for line in run("gpg", "--with-colons", "--list-keys", uid, env=env)
                       .stdout.splitlines() if line.startswith("fpr:"))
    run("gpg", "--batch", "--passphrase", "", "--quick-add-key", fingerprint, "rsa2048", "sign", "never", env=env)
    armored = run("gpg", "--armor", "--export", fingerprint, env=env).stdout
    added = http.put(f"{stack.url}/dockless/admin/v1/keys/subkeys", data=armored)
    assert added.status_code == 201
    assert "primary key cannot sign" in added.json()["warnings"][0]
    run("gpgconf", "--kill", "all", env=env, check=False)
