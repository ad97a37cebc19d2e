"""`dockless mirror` as a team uses it: tags matching a pattern from Debian's docker-registry into
the local stack (a dry run first, then a run killed in the middle of a layer and run again), an
image back into the reference registry (which has no direct-upload extension), and a signed image
with a referrer between two namespaces of the stack."""
import json
import os
import subprocess
import sys
import time

from tests.e2e.conftest import run
from tests.e2e.images import OCI_MANIFEST, OciLayout
from tests.e2e.test_referrers import digest, push_blob
from tests.upstream import upstream_registry


def inspect_digest(skopeo, reference: str) -> str:
    return json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reference}").stdout)["Digest"]


def _partial_bytes(spool) -> int:
    """The most of one layer downloaded so far (a partial file may be renamed while we look)."""
    sizes = [0]
    for path in spool.glob("*.partial") if spool.exists() else ():
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            pass
    return max(sizes)


def test_mirror_tags_from_the_reference_registry_resuming_after_a_kill(stack, skopeo, dockless, tmp_path):
    with upstream_registry(tmp_path / "upstream") as upstream:
        host = f"127.0.0.1:{upstream.port}"
        layout = OciLayout(tmp_path / "src")
        layout.tag(layout.add_image([96 * 1024 * 1024, 20_000]), "v1")  # one big layer to be killed in
        layout.tag(layout.add_image([30_000]), "v2")
        layout.tag(layout.add_image([10_000]), "other")
        for tag in ("v1", "v2", "other"):
            run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout.path}:{tag}", f"docker://{host}/lib/app:{tag}")
        source, target = f"{host}/lib/app", f"{stack.host}/mirror/app"

        dry = dockless("mirror", source, target, "--tags", "v*", "--dry-run").stdout
        assert dry.splitlines()[-1] == "dry run: 2 images; nothing copied"
        assert "lib/app:v1 -> mirror/app:v1" in dry and "3 of 3 blobs to copy" in dry and ":other" not in dry
        listed = skopeo("list-tags", "--tls-verify=false", f"docker://{target}", check=False)
        assert listed.returncode != 0  # nothing was copied

        spool = tmp_path / "spool"
        command = [sys.executable, "-m", "dockless.cli", "mirror", source, target, "--tags", "v*", "--spool", str(spool)]
        env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}
        killed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and killed.poll() is None:
            if _partial_bytes(spool) > 1024 * 1024:
                killed.kill()
                break
            time.sleep(0.002)
        killed.wait(timeout=30)
        assert killed.returncode != 0, "the mirror finished before it could be killed mid-layer"

        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        summary = again.stdout.splitlines()[-1]
        assert summary.startswith(f"mirrored 2 images to {stack.host}/mirror/app:") and "resumed" in summary, summary
        for tag in ("v1", "v2"):
            assert inspect_digest(skopeo, f"{target}:{tag}") == inspect_digest(skopeo, f"{source}:{tag}")
        assert json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{target}").stdout)["Tags"] == \
            ["v1", "v2"]
        assert not list(spool.iterdir())  # every spooled layer went up and was removed

        # A rule kept in the registry, applied by `dockless mirror sync`: first nothing to do, then
        # the tag pushed upstream since.
        added = dockless("mirror", "rule", "add", "nightly", source, target, "--tags", "v*").stdout.strip()
        assert added == f"nightly: {source} -> {target} (tags v*)"
        assert dockless("mirror", "rule", "list").stdout.strip() == added
        synced = dockless("mirror", "sync").stdout.splitlines()
        assert synced[-1] == f"rule nightly: mirrored 2 images to {stack.host}/mirror/app: 0 blobs copied (0 B), " \
                             "5 already there"
        layout.tag(layout.add_image([15_000]), "v3")
        run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout.path}:v3", f"docker://{host}/lib/app:v3")
        synced = dockless("mirror", "sync").stdout.splitlines()
        assert any(line.startswith("lib/app:v3 -> mirror/app:v3 ") and "2 of 2 blobs to copy" in line
                   for line in synced), synced
        assert synced[-1].startswith(f"rule nightly: mirrored 3 images to {stack.host}/mirror/app: 2 blobs copied")
        assert inspect_digest(skopeo, f"{target}:v3") == inspect_digest(skopeo, f"{source}:v3")
        assert dockless("mirror", "rule", "remove", "nightly").stdout.strip() == "removed mirror rule nightly"

        # Back into the reference registry, which has no direct-upload extension: the standard upload.
        back = dockless("mirror", f"{target}:v2", f"{host}/back/app:restored").stdout.splitlines()[-1]
        assert back.startswith(f"mirrored 1 images to {host}/back/app: 2 blobs copied"), back
        assert inspect_digest(skopeo, f"{host}/back/app:restored") == inspect_digest(skopeo, f"{source}:v2")


def test_mirror_a_signed_image_with_its_signatures_and_referrer(stack, skopeo, http, gnupg, registry_auth,
                                                                 dockless, tmp_path):
    from tests.e2e.test_signing import export
    assert http.put(f"{stack.url}/dockless/admin/v1/keys/team", data=export(gnupg, gnupg["release"])).status_code == 201
    layout = OciLayout(tmp_path / "img")
    image = layout.add_image([12_000])
    layout.tag(image, "v1")
    run("skopeo", "copy", "--dest-tls-verify=false", "--sign-by", gnupg["release"], f"oci:{layout.path}:v1",
        f"docker://{stack.host}/team/signed-src:v1", env={**gnupg["env"], "REGISTRY_AUTH_FILE": str(registry_auth.path)})
    empty = dict(push_blob(http, stack.url, "team/signed-src", b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    sbom = dict(push_blob(http, stack.url, "team/signed-src", b'{"spdxVersion": "SPDX-2.3"}'),
                mediaType="application/spdx+json")
    artifact = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
                           "config": empty, "layers": [sbom],
                           "subject": {"mediaType": OCI_MANIFEST, "digest": image["digest"],
                                       "size": image["size"]}}).encode()
    assert http.put(f"{stack.url}/v2/team/signed-src/manifests/{digest(artifact)}", data=artifact,
                    headers={"Content-Type": OCI_MANIFEST}).status_code == 201

    said = dockless("mirror", f"{stack.host}/team/signed-src:v1", f"{stack.host}/copies/app:v1",
                    "--with-signatures", "--with-referrers").stdout.splitlines()
    assert said[-1].endswith(", 1 signatures"), said
    assert any(f"-> copies/app:{digest(artifact)}" in line for line in said), said
    copied = http.get(f"{stack.url}/extensions/v2/copies/app/signatures/{image['digest']}").json()["signatures"]
    original = http.get(f"{stack.url}/extensions/v2/team/signed-src/signatures/{image['digest']}").json()["signatures"]
    assert copied == original and len(copied) == 1
    referrers = http.get(f"{stack.url}/v2/copies/app/referrers/{image['digest']}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [digest(artifact)]
    assert inspect_digest(skopeo, f"{stack.host}/copies/app:v1") == image["digest"]


def test_mirror_within_one_registry_with_credentials_from_the_environment(stack, skopeo, tmp_path):
    layout = OciLayout(tmp_path / "img")
    image = layout.add_image([3_000])
    layout.tag(image, "v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{stack.host}/team/env-src:v1")
    env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "no-logins.json"), "DOCKLESS_USERNAME": "admin",
           "DOCKLESS_PASSWORD": stack.admin_token}
    done = subprocess.run([sys.executable, "-m", "dockless.cli", "mirror", f"{stack.host}/team/env-src:v1",
                           f"{stack.host}/team/env-copy"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert inspect_digest(skopeo, f"{stack.host}/team/env-copy:v1") == image["digest"]
