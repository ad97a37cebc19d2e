"""skopeo and containerd's ctr against `dockless serve`, with images generated as OCI layouts."""
import json

from tests.e2e.images import OCI_INDEX, OciLayout, blob_digests


def test_skopeo_copies_oci_layout_in_and_out_unchanged(stack, skopeo, tmp_path):
    layout = OciLayout(tmp_path / "in")
    layout.tag(layout.add_image([150_000, 80_000, 1_000]), "v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{stack.host}/team/sk:v1")
    skopeo("copy", "--src-tls-verify=false", f"docker://{stack.host}/team/sk:v1", f"oci:{tmp_path / 'out'}:v1")
    assert blob_digests(tmp_path / "out") == blob_digests(layout.path)


def test_multi_platform_index_with_two_children(stack, skopeo, http, tmp_path):
    layout = OciLayout(tmp_path / "in")
    amd64 = layout.add_image([20_000], "amd64")
    arm64 = layout.add_image([30_000], "arm64")
    index = layout.add_index([amd64, arm64])
    layout.tag(index, "multi")
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout.path}:multi",
           f"docker://{stack.host}/team/multi:1")

    response = http.get(f"{stack.url}/v2/team/multi/manifests/1", headers={"Accept": OCI_INDEX})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.headers["Docker-Content-Digest"] == index["digest"]
    assert response.content == layout.blob(index["digest"])
    for child in (amd64, arm64):
        child_response = http.get(f"{stack.url}/v2/team/multi/manifests/{child['digest']}")
        assert child_response.content == layout.blob(child["digest"])

    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{stack.host}/team/multi:1",
           f"oci:{tmp_path / 'out'}:multi")
    assert blob_digests(tmp_path / "out") == blob_digests(layout.path)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{stack.host}/team/multi:1").stdout
    assert [m["platform"]["architecture"] for m in json.loads(raw)["manifests"]] == ["amd64", "arm64"]


def test_ctr_pull_then_push_to_another_repository_mounts_blobs(stack, skopeo, ctr, tmp_path):
    layout = OciLayout(tmp_path / "in")
    image = layout.add_image([64_000, 32_000])
    layout.tag(image, "v1")
    source, target = f"{stack.host}/team/ctr:1", f"{stack.host}/copies/ctr:1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{source}")

    ctr("images", "pull", "--plain-http", source)
    mark = stack.mark()
    ctr("images", "push", "--plain-http", target, source)

    answered = stack.requests_since(mark)
    mounts = [r for r in answered if r["method"] == "POST" and r["query"].get("from") == "team/ctr"]
    # Two layers and the config: all mounted (201), none uploaded.
    assert len(mounts) == 3 and all(r["status"] == 201 for r in mounts), answered
    assert not [r for r in answered if r["method"] in ("PATCH",) or
                (r["method"] == "PUT" and "/blobs/uploads/" in r["path"])]
    manifest_puts = [r for r in answered if r["method"] == "PUT" and "/manifests/" in r["path"]]
    assert [r["status"] for r in manifest_puts] == [201]
    # And ctr can pull what it pushed, by tag.
    ctr("images", "rm", target)
    ctr("images", "pull", "--plain-http", target)
    listed = ctr("images", "ls", "-q").stdout.split()
    assert target in listed
