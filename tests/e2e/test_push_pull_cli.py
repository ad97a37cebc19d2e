"""`dockless push` and `dockless pull` as a user runs them, with docker on the other side."""
import os
import sys

from tests.e2e.conftest import run
from tests.e2e.images import blob_digests, dockerfile_context


def dockless(*args, env=None, check=True):
    return run(sys.executable, "-m", "dockless.cli", *args, env=env, check=check)


def as_admin(stack, env=None):
    """The environment `dockless push/pull` reads credentials from."""
    return {**(env or os.environ), "DOCKLESS_USERNAME": "admin", "DOCKLESS_PASSWORD": stack.admin_token}


def test_push_from_the_docker_daemon_then_docker_pull(stack, docker, dockerd, tmp_path):
    local = "localhost/team/fromdaemon:1"
    dockerfile_context(tmp_path / "ctx", [200_000, 100_000, 3_000])
    docker("build", "-q", "-t", local, str(tmp_path / "ctx"))
    image_id = docker("image", "inspect", local, "--format", "{{.Id}}").stdout.strip()
    destination = f"{stack.host}/team/fromdaemon:1"

    first = dockless("push", local, destination, env=as_admin(stack, dockerd))
    assert first.stdout.startswith(f"pushed {stack.host}/team/fromdaemon@sha256:")
    assert "4 blobs" in first.stdout and "0 already there" in first.stdout
    again = dockless("push", local, destination, env=as_admin(stack, dockerd))
    assert "0 blobs" in again.stdout and "4 already there" in again.stdout

    docker("rmi", local)
    docker("pull", destination)
    assert docker("image", "inspect", destination, "--format", "{{.Id}}").stdout.strip() == image_id

    out = tmp_path / "layout"
    pulled = dockless("pull", destination, str(out), env=as_admin(stack))
    assert "pulled" in pulled.stdout
    assert len(blob_digests(out)) == 5  # manifest, config, three layers


def test_push_from_a_docker_archive(stack, docker, dockerd, tmp_path):
    local = "localhost/team/archive:1"
    dockerfile_context(tmp_path / "ctx", [50_000, 60_000])
    docker("build", "-q", "-t", local, str(tmp_path / "ctx"))
    image_id = docker("image", "inspect", local, "--format", "{{.Id}}").stdout.strip()
    archive = tmp_path / "image.tar"
    docker("save", "-o", str(archive), local)
    destination = f"{stack.host}/team/archive:1"
    dockless("push", str(archive), destination, env=as_admin(stack))
    docker("pull", destination)
    assert docker("image", "inspect", destination, "--format", "{{.Id}}").stdout.strip() == image_id


def test_push_failure_is_a_clear_error_and_exit_code(stack, tmp_path):
    result = dockless("push", str(tmp_path / "missing.tar"), f"{stack.host}/team/x:1", check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error:" in result.stderr
