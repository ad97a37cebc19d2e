"""docker push and pull through `dockless serve`, with Debian's dockerd."""
import json
import os

from tests.e2e import programs
from tests.e2e.conftest import docker_login
from tests.e2e.images import dockerfile_context


def test_push_remove_pull_keeps_image_id_and_digest(stack, docker, tmp_path):
    image = f"{stack.host}/team/app:1"
    dockerfile_context(tmp_path / "ctx", [300_000, 200_000, 50_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    image_id = docker("image", "inspect", image, "--format", "{{.Id}}").stdout.strip()
    layers = json.loads(docker("image", "inspect", image, "--format", "{{json .RootFS.Layers}}").stdout)
    assert len(layers) == 3

    pushed = docker("push", image).stdout
    digest = pushed.split("digest: ")[1].split()[0]

    docker("rmi", image)
    mark = stack.mark()
    pulled = docker("pull", image).stdout
    assert f"Digest: {digest}" in pulled
    assert docker("image", "inspect", image, "--format", "{{.Id}}").stdout.strip() == image_id
    repo_digests = docker("image", "inspect", image, "--format", "{{json .RepoDigests}}").stdout
    assert f"{stack.host}/team/app@{digest}" in repo_digests

    pull_requests = stack.requests_since(mark)
    # DESIGN §6: N + 5 (ping, token, manifest by tag, manifest by digest, config) for N layers,
    # plus the HEAD of the tag that docker 20.10 sends before it GETs the tag.
    assert [r["route"].rsplit("/", 1)[-1] for r in pull_requests[:2]] == ["", "token"]
    assert len(pull_requests) <= len(layers) + 6, [r["path"] for r in pull_requests]
    blob_gets = [r for r in pull_requests if r["route"] == "/v2/{name}/blobs/{digest}"]
    assert blob_gets and all(r["status"] == 307 for r in blob_gets)
    # Every blob GET answered at the edge (the pull token's claim lists the image's blobs): no
    # function woken, no AWS call; S3 serves the bytes.
    assert all(r["served_by"] == "edge" and r["invocations"] == 0 and r["aws_calls"] == [] for r in blob_gets)
    assert len(blob_gets) == len(layers) + 1


def test_pushing_same_layers_to_second_repository_reuses_blobs(stack, docker, tmp_path):
    first, second = f"{stack.host}/team/base:1", f"{stack.host}/other/copy:1"
    dockerfile_context(tmp_path / "ctx", [100_000, 100_000])
    docker("build", "-q", "-t", first, str(tmp_path / "ctx"))
    docker("push", first)
    docker("tag", first, second)
    mark = stack.mark()
    out = docker("push", second).stdout
    assert "Mounted from team/base" in out
    answered = stack.requests_since(mark)
    mounts = [r for r in answered if r["method"] == "POST" and r["query"].get("from") == "team/base"]
    assert len(mounts) == 2 and all(r["status"] == 201 for r in mounts)
    # docker mounts layers, not the image config: that one small blob is uploaded again, through
    # the gateway straight to the bucket; the API sees no PATCH.
    assert [r["route"] for r in answered if r["route"].endswith("/direct")] == [
        "/dockless/v1/{name}/uploads/{upload_id}/direct"]
    assert not [r for r in answered if r["method"] == "PATCH"]


def test_in_aws_verification_mode_completion_reads_no_layer_bytes(docker, dockerd, tmp_path):
    """A stack in the deployed verification mode (s3-checksum): every upload completion asks S3
    for the checksum it keeps (HeadObject) and never reads or copies the blob."""
    env = {**os.environ, "DOCKLESS_BLOB_VERIFICATION": "s3-checksum"}
    (tmp_path / "stack").mkdir()
    with programs.dockless_serve(tmp_path / "stack", env=env) as aws_mode:
        docker_login(dockerd, aws_mode.host, aws_mode.admin_token)
        image = f"{aws_mode.host}/team/awsmode:1"
        dockerfile_context(tmp_path / "ctx", [300_000, 100_000])
        docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
        docker("push", image)
        completions = [r for r in aws_mode.requests()
                       if r["method"] == "PUT" and r["route"] == "/v2/{name}/blobs/uploads/{upload_id}"]
        assert len(completions) == 3
        for record in completions:
            assert record["status"] == 201
            assert "s3:HeadObject" in record["aws_calls"]
            assert not {"s3:GetObject", "s3:CopyObject", "s3:UploadPartCopy"} & set(record["aws_calls"])
        docker("rmi", image)
        docker("pull", image)


def test_docker_push_and_pull_behind_the_function_url_door(docker, dockerd, tmp_path):
    """`dockless serve --door function-url`: the API answers events of the function URL's payload
    format 2.0 (chalicelib/runtime/function_url.py), with no API Gateway in front; docker logs in,
    pushes through the gateway and pulls the same image back."""
    (tmp_path / "stack").mkdir()
    with programs.dockless_serve(tmp_path / "stack", args=("--door", "function-url")) as door:
        docker_login(dockerd, door.host, door.admin_token)
        image = f"{door.host}/team/door:1"
        dockerfile_context(tmp_path / "ctx", [200_000, 30_000])
        docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
        image_id = docker("image", "inspect", image, "--format", "{{.Id}}").stdout.strip()
        digest = docker("push", image).stdout.split("digest: ")[1].split()[0]
        docker("rmi", image)
        assert f"Digest: {digest}" in docker("pull", image).stdout
        assert docker("image", "inspect", image, "--format", "{{.Id}}").stdout.strip() == image_id
        docker("rmi", image)
        statuses = {(r["method"], r["route"], r["status"]) for r in door.requests()}
        assert ("PUT", "/v2/{name}/manifests/{reference}", 201) in statuses
        assert ("GET", "/v2/{name}/blobs/{digest}", 307) in statuses
