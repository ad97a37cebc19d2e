"""The clients beyond docker, skopeo and ctr, each unmodified through the local stack's port with
auth on: podman (build, push, pull, pull by digest, a two-platform index, signing checked by a
signedBy policy), buildah, the oras Python SDK (an artifact of its own type, a referrer, the
filtered referrers listing), python-dxf (over the --tls stack, as it insists on HTTPS) and a client
that sends each request before it holds a token."""
import hashlib
import json
import os

import oras.client
import oras.oci
import requests
from dxf import DXF

from tests.e2e.conftest import run, signed_by_policy
from tests.e2e.programs import DOCKER
from tests.fixtures import UnauthenticatedFirst


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_context(directory, files: dict, platform_note=""):
    """A Containerfile FROM scratch copying random files: every run pushes new bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["FROM scratch"]
    for name, size in files.items():
        (directory / name).write_bytes(os.urandom(size))
        lines.append(f"COPY {name} /{name}")
    lines.append(f'LABEL note="{platform_note}"')
    (directory / "Containerfile").write_text("\n".join(lines) + "\n")
    return directory


def skopeo_digest(skopeo, reference) -> str:
    return json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reference}").stdout)["Digest"]


def test_podman_builds_pushes_pulls_and_pulls_by_digest(podman, stack, skopeo, tmp_path):
    image = f"{stack.host}/team/podman:1"
    run("podman", "login", "--tls-verify=false", "-u", "admin", "--password-stdin",
        "--authfile", str(tmp_path / "login.json"), stack.host, input=stack.admin_token)
    context = build_context(tmp_path / "ctx", {"a.bin": 300_000, "b.bin": 120_000})
    podman("build", "-t", image, str(context))
    built = podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    podman("push", "--tls-verify=false", image)
    podman("rmi", image)
    podman("pull", "--tls-verify=false", image)
    assert podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip() == built
    digest = skopeo_digest(skopeo, image)
    podman("rmi", image)
    podman("pull", "--tls-verify=false", f"{stack.host}/team/podman@{digest}")
    assert podman("image", "inspect", "--format", "{{.Id}}", f"{stack.host}/team/podman@{digest}").stdout.strip() \
        == built


def test_podman_pushes_a_two_platform_index_and_buildah_pushes_too(podman, stack, skopeo, tmp_path):
    index = f"{stack.host}/team/multi:1"
    podman("manifest", "create", index)
    for arch in ("amd64", "arm64"):
        context = build_context(tmp_path / arch, {f"{arch}.bin": 50_000}, arch)
        podman("build", "--arch", arch, "-t", f"{stack.host}/team/multi:{arch}", str(context))
        podman("manifest", "add", index, f"containers-storage:{stack.host}/team/multi:{arch}")
    podman("manifest", "push", "--all", "--tls-verify=false", index, f"docker://{index}")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{index}").stdout)
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    for entry in raw["manifests"]:
        child = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{stack.host}/team/multi@{entry['digest']}")
        assert sha256(child.stdout.encode()) == entry["digest"]
    local = podman("image", "inspect", "--format", "{{.Id}}", f"{stack.host}/team/multi:amd64").stdout.strip()
    podman.buildah("push", "--tls-verify=false", f"{stack.host}/team/multi:amd64",
                   f"docker://{stack.host}/team/buildah:1")
    podman("pull", "--tls-verify=false", f"{stack.host}/team/buildah:1")
    assert podman("image", "inspect", "--format", "{{.Id}}", f"{stack.host}/team/buildah:1").stdout.strip() == local


def test_podman_signs_and_a_signed_by_policy_checks_it(podman, stack, http, gnupg, tmp_path):
    public = run("gpg", "--armor", "--export", gnupg["release"], env=gnupg["env"]).stdout
    assert http.put(f"{stack.url}/dockless/admin/v1/keys/signed", data=public).status_code == 201
    context = build_context(tmp_path / "ctx", {"s.bin": 40_000})
    signed, unsigned = f"{stack.host}/signed/app:1", f"{stack.host}/signed/app:2"
    podman("build", "-t", signed, str(context))
    podman("tag", signed, unsigned)
    podman("push", "--tls-verify=false", "--sign-by", gnupg["release"], signed, env_extra=gnupg["env"])
    podman("push", "--tls-verify=false", unsigned)
    keys = tmp_path / "KEYS"
    keys.write_bytes(http.get(f"{stack.url}/keys/signed/KEYS").content)
    policy = signed_by_policy(tmp_path, f"{stack.host}/signed", keys)
    podman("rmi", signed, unsigned)
    podman("pull", "--tls-verify=false", "--signature-policy", str(policy), signed)
    refused = podman("pull", "--tls-verify=false", "--signature-policy", str(policy), unsigned, check=False)
    assert refused.returncode != 0 and "signature" in refused.stderr.lower()


def test_oras_sdk_pushes_an_artifact_and_a_referrer_and_lists_it_by_type(stack, tmp_path):
    # oras-py's basic backend sends the credentials with each request, which the registry takes
    # (its token backend asks for a token once and reuses it after a challenge for more scope).
    client = oras.client.OrasClient(hostname=stack.host, insecure=True, auth_backend="basic")
    client.login(username="admin", password=stack.admin_token, hostname=stack.host)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "report.txt").write_text("an SBOM, say")
    (tmp_path / "sig.txt").write_text("a signature")
    os.chdir(tmp_path)
    pushed = client.push(target=f"{stack.host}/team/artifact:v1", files=["report.txt:text/plain"],
                         manifest_config="config.json:application/vnd.example.report.v1+json")
    assert pushed.status_code == 201
    digest = pushed.headers["Docker-Content-Digest"]
    size = int(client.do_request(f"http://{stack.host}/v2/team/artifact/manifests/v1", "HEAD").headers["Content-Length"])
    subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json", digest=digest, size=size)
    referrer = client.push(target=f"{stack.host}/team/artifact:sig", files=["sig.txt:text/plain"], subject=subject,
                           manifest_config="config.json:application/vnd.example.signature.v1+json")
    assert referrer.status_code == 201 and referrer.headers["OCI-Subject"] == digest
    pulled = client.pull(target=f"{stack.host}/team/artifact:v1", outdir=str(tmp_path / "out"))
    assert [open(path).read() for path in pulled] == ["an SBOM, say"]
    listing = client.do_request(f"http://{stack.host}/v2/team/artifact/referrers/{digest}"
                                "?artifactType=application/vnd.example.signature.v1%2Bjson")
    assert listing.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in listing.json()["manifests"]] == [referrer.headers["Docker-Content-Digest"]]
    other = client.do_request(f"http://{stack.host}/v2/team/artifact/referrers/{digest}?artifactType=text%2Fnone")
    assert other.json()["manifests"] == []


def test_python_dxf_pushes_and_pulls_over_tls(tls_stack):
    def auth(dxf, response):
        dxf.authenticate("admin", tls_stack.admin_token, response=response)
    dxf = DXF(tls_stack.host, "team/dxf", auth=auth, tlsverify=str(tls_stack.ca_path))
    layer, config = os.urandom(200_000), b"{}"
    dxf.push_blob(data=layer, digest=sha256(layer))
    dxf.push_blob(data=config, digest=sha256(config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "digest": sha256(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "digest": sha256(layer), "size": len(layer)}]})
    dxf.set_manifest("v1", manifest)
    # One HEAD answers with the digest (python-dxf reads Docker-Content-Digest from it).
    digest, response = dxf.head_manifest_and_response("v1")
    assert digest == sha256(manifest.encode()) and int(response.headers["Content-Length"]) == len(manifest)
    assert b"".join(dxf.pull_blob(sha256(layer))) == layer
    assert dxf.blob_size(sha256(layer)) == len(layer)
    assert dxf.list_aliases() == ["v1"]


def test_a_client_that_sends_before_it_holds_a_token(stack):
    client = UnauthenticatedFirst(f"{stack.url}/token", "admin", stack.admin_token)
    layer, config = os.urandom(100_000), b"{}"
    for blob in (layer, config):
        started = client("POST", f"{stack.url}/v2/team/first/blobs/uploads/")
        assert client("PUT", started.headers["Location"], params={"digest": sha256(blob)},
                      data=blob).status_code == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha256(config), "size": 2},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": sha256(layer), "size": len(layer)}]}).encode()
    put = client("PUT", f"{stack.url}/v2/team/first/manifests/v1", data=manifest,
                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert put.status_code == 201
    assert client("GET", f"{stack.url}/v2/team/first/manifests/v1").content == manifest
    assert requests.get(f"{stack.url}/v2/team/first/manifests/v1").status_code == 401
    assert len(client.challenges) == 6


def test_podman_beside_a_docker_login_logs_in_as_the_readme_says(dockerd, podman, stack, tmp_path):
    """`docker login` keeps our refresh token as an identity token in docker's config.json, which
    podman 4.3's login also reads and refuses ("auth file contains an Identity token"), even with
    --authfile. The README's way: podman logs in with DOCKER_CONFIG pointing elsewhere; its pushes
    and pulls then work with docker's config.json still beside them."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    docker_env = {**dockerd, "DOCKER_CONFIG": str(home / ".docker"), "HOME": str(home)}
    run(DOCKER, "login", stack.host, "-u", "admin", "--password-stdin", env=docker_env, input=stack.admin_token)
    stored = json.loads((home / ".docker" / "config.json").read_text())["auths"][stack.host]
    assert stored.get("identitytoken", "").startswith("dkl_")  # the refresh token, not the password
    (tmp_path / "run").mkdir()
    podman_env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
                  "REGISTRY_AUTH_FILE": str(tmp_path / "run" / "auth.json")}
    plain = run("podman", "login", "--tls-verify=false", "-u", "admin", "--password-stdin", stack.host,
                env={**os.environ, **podman_env}, input=stack.admin_token, check=False)
    if plain.returncode != 0:  # podman 4.3; a podman that no longer refuses needs no advice
        assert "Identity token" in plain.stderr, plain.stderr
        run("podman", "login", "--tls-verify=false", "-u", "admin", "--password-stdin", stack.host,
            env={**os.environ, **podman_env, "DOCKER_CONFIG": "/nonexistent"}, input=stack.admin_token)
    image = f"{stack.host}/team/beside-docker:1"
    podman("build", "-t", image, str(build_context(tmp_path / "ctx", {"a.bin": 20_000})))
    podman("push", "--tls-verify=false", image, env_extra=podman_env)
    podman("rmi", image)
    podman("pull", "--tls-verify=false", image, env_extra=podman_env)
