"""A pull-through cache as a platform team meets it: `dockless cache add`, docker pulls of a
multi-layer image and of a 2-platform index through the cache namespace from an upstream
docker-registry on loopback, then the upstream goes down and the same pulls still work, while
what was never cached fails with a message saying why, and a push into the cache is refused."""
import json
import os

from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import OciLayout, build
from tests.upstream import upstream_registry


def test_docker_pulls_through_a_cache_and_keeps_pulling_while_the_upstream_is_down(stack, docker, dockerd,
                                                                                   dockless, skopeo, tmp_path):
    with upstream_registry(tmp_path / "upstream") as upstream:
        host = f"127.0.0.1:{upstream.port}"
        source = f"{host}/lib/app:1"
        build(docker, tmp_path / "ctx", source, {"keep.txt": "one", "big.bin": os.urandom(40_000).hex()},
              "N=1", "one")
        docker("push", source)
        image_id = docker("image", "inspect", "-f", "{{.Id}}", source).stdout.strip()
        layout = OciLayout(tmp_path / "multi")
        index = layout.add_index([layout.add_image([2000, 3000], "amd64"), layout.add_image([1000], "arm64")])
        layout.tag(index, "1")
        run("skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{layout.path}:1",
            f"docker://{host}/lib/multi:1")

        said = dockless("cache", "add", "hub", "--upstream", upstream.url, "--freshness", "1h").stdout
        assert said.startswith(f"hub: a cache of {upstream.url} (as anonymous; tags checked again after 3600 s)")
        assert said.startswith(dockless("cache", "list").stdout.strip())
        cached, multi = f"{stack.host}/hub/lib/app:1", f"{stack.host}/hub/lib/multi:1"
        docker("pull", cached)
        assert docker("image", "inspect", "-f", "{{.Id}}", cached).stdout.strip() == image_id
        docker("pull", multi)
        digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", multi).stdout)
        assert f"{stack.host}/hub/lib/multi@{index['digest']}" in digests
        # skopeo takes every platform: the arm64 child comes from the upstream when asked for.
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{multi}", f"oci:{tmp_path / 'all'}:1")
        assert {f"sha256:{p.name}" for p in (tmp_path / "all" / "blobs" / "sha256").iterdir()} == \
            {f"sha256:{p.name}" for p in (layout.path / "blobs" / "sha256").iterdir()}

        # Nobody pushes into a cache, not even an admin.
        docker("tag", cached, f"{stack.host}/hub/lib/app:mine")
        pushed = run(DOCKER, "push", f"{stack.host}/hub/lib/app:mine", env=dockerd, check=False)
        assert pushed.returncode != 0 and f"unauthorized: hub is a cache of {upstream.url}: pull only" in \
            pushed.stderr, pushed.stderr

        upstream.stop()
        docker("rmi", "-f", cached, multi, f"{stack.host}/hub/lib/app:mine")
        docker("pull", cached)
        docker("pull", multi)
        assert docker("image", "inspect", "-f", "{{.Id}}", cached).stdout.strip() == image_id
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{multi}", f"oci:{tmp_path / 'again'}:1")
        never = run(DOCKER, "pull", f"{stack.host}/hub/lib/app:2", env=dockerd, check=False)
        assert never.returncode != 0 and "the upstream registry did not answer" in never.stderr, never.stderr

    trail = [json.loads(line) for line in dockless("audit", "--namespace", "hub", "--json").stdout.splitlines()]
    fetched = {(e["repository"], e["reference"]) for e in trail if e["action"] == "manifest.push"
               and e["actor"] == "cache"}
    assert {("hub/lib/app", "1"), ("hub/lib/multi", "1")} <= fetched
