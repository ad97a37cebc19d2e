"""Gigabyte layers through `dockless serve` and a standalone `dockless gateway`: docker, skopeo and
ctr push and pull them, the API never sees a body above its limit, and the gateway's memory stays
bounded while it moves the layer."""
import os
import sys

import pytest

from chalicelib.oci import spec
from tests.e2e import programs
from tests.e2e.conftest import docker_login, run
from tests.e2e.images import (OciLayout, add_big_uncompressed_layer, blob_digests, image_from_layers,
                              write_random_file)

GiB = 1024 ** 3
# Generous: the gateway holds pieces of 1 MiB per transfer, never a layer.
GATEWAY_PEAK_RSS_BOUND_KIB = 256 * 1024
# dockless diff holds 1 MiB pieces and one entry per path, never a layer: the interpreter and its
# imports are most of it.
DIFF_PEAK_RSS_BOUND_KIB = 128 * 1024


@pytest.fixture
def gateway(stack, tmp_path, dockerd, registry_auth):
    """A `dockless gateway` process of its own in front of the stack's API, with docker and skopeo
    logged in to it (the gateway passes credentials through and keeps none)."""
    with programs.dockless_gateway(stack.api_url, tmp_path) as process:
        docker_login(dockerd, process.host, stack.admin_token)
        registry_auth(process.host)
        yield process


def assert_api_saw_no_big_body(records):
    assert records
    assert max(r["body_bytes"] for r in records) <= spec.API_MAX_BODY_BYTES
    assert not [r for r in records if r["method"] == "PATCH"]


def test_docker_pushes_and_pulls_a_1_gib_layer_through_the_gateway(stack, docker, gateway, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    write_random_file(context / "big.bin", GiB)
    (context / "small.txt").write_text("small layer\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY big.bin /big.bin\nCOPY small.txt /small.txt\n")
    pushed_name = f"{gateway.host}/team/big:1"
    docker("build", "-q", "-t", pushed_name, str(context))
    (context / "big.bin").unlink()
    image_id = docker("image", "inspect", pushed_name, "--format", "{{.Id}}").stdout.strip()

    mark = stack.mark()
    out = docker("push", pushed_name).stdout
    digest = out.split("digest: ")[1].split()[0]
    peak = programs.peak_rss_kib(gateway.pid)
    print(f"\ngateway peak RSS during a 1 GiB docker push: {peak / 1024:.1f} MiB")
    assert peak < GATEWAY_PEAK_RSS_BOUND_KIB
    pushed = stack.requests_since(mark)
    assert_api_saw_no_big_body(pushed)
    assert len([r for r in pushed if r["route"].endswith("/direct")]) == 3  # two layers and the config

    pulled_name = f"{stack.host}/team/big:1"
    docker("rmi", pushed_name)
    assert f"Digest: {digest}" in docker("pull", pulled_name).stdout
    assert docker("image", "inspect", pulled_name, "--format", "{{.Id}}").stdout.strip() == image_id


def test_skopeo_copies_a_1_gib_layer_in_and_out(stack, skopeo, tmp_path):
    layout = OciLayout(tmp_path / "in")
    small = add_big_uncompressed_layer(layout, 10_000)
    big = add_big_uncompressed_layer(layout, GiB)
    layout.tag(image_from_layers(layout, [big, small]), "v1")
    mark = stack.mark()
    # Uncompressed layers would be gzipped on the way (hours of CPU for nothing here): keep them.
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.path}:v1",
           f"docker://{stack.host}/team/skbig:v1")
    assert_api_saw_no_big_body(stack.requests_since(mark))
    out = tmp_path / "out"
    skopeo("copy", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", "--src-tls-verify=false",
           f"docker://{stack.host}/team/skbig:v1", f"oci:{out}:v1")
    assert blob_digests(out) == blob_digests(layout.path)

    # dockless diff reads the 1 GiB layer as a stream from the bucket: its memory stays small.
    layout.tag(image_from_layers(layout, [small]), "v0")
    layout.tag(image_from_layers(layout, [small, big]), "v2")
    for tag in ("v0", "v2"):
        skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.path}:{tag}",
               f"docker://{stack.host}/team/skbig:{tag}")
    output, peak = diff_with_peak_rss(stack, tmp_path, "team/skbig:v0", "team/skbig:v2")
    print(f"\ndockless diff peak RSS across a 1 GiB layer: {peak / 1024:.1f} MiB")
    assert output.splitlines()[-2] == "files: 0 added, 0 removed, 1 changed"
    assert output.splitlines()[-1].startswith("  M /big.bin: size 9.8 KiB -> 1 GiB, content ")
    assert peak < DIFF_PEAK_RSS_BOUND_KIB


def diff_with_peak_rss(stack, tmp_path, before: str, after: str):
    """`dockless diff` in a process of its own: what it printed, and its peak RSS (KiB), read from its
    own VmHWM as it exits (a child's ru_maxrss would include the test process it was forked from)."""
    env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}
    run(sys.executable, "-m", "dockless.cli", "login", stack.url, "-u", "admin", "--password-stdin", env=env,
        input=stack.admin_token)
    peak_file = tmp_path / "peak"
    script = ("import atexit, sys\n"
              "from tests.e2e.programs import peak_rss_kib\n"
              f"atexit.register(lambda: open({str(peak_file)!r}, 'w').write(str(peak_rss_kib('self'))))\n"
              "from dockless.cli import main\n"
              f"main(['diff', {before!r}, {after!r}])\n")
    result = run(sys.executable, "-c", script, env=env)
    return result.stdout, int(peak_file.read_text())


def test_ctr_pushes_a_1_gib_layer_with_one_put(stack, skopeo, ctr, gateway, http, tmp_path):
    layout = OciLayout(tmp_path / "in")
    big = add_big_uncompressed_layer(layout, GiB)
    layout.tag(image_from_layers(layout, [big]), "v1")
    source = f"{stack.host}/team/ctrbig:1"
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.path}:v1",
           f"docker://{source}")
    ctr("images", "pull", "--plain-http", "--all-platforms", source)
    # Unlink the source's blobs: containerd's mount attempts then fall back to upload sessions,
    # and it uploads each blob with one PUT, which the gateway sends to the bucket.
    manifest = http.get(f"{stack.url}/v2/team/ctrbig/manifests/1").json()
    for blob in [manifest["config"]] + manifest["layers"]:
        assert http.delete(f"{stack.url}/v2/team/ctrbig/blobs/{blob['digest']}").status_code == 202
    target = f"{gateway.host}/copies/ctrbig:1"
    mark = stack.mark()
    ctr("images", "push", "--plain-http", target, source)
    pushed = stack.requests_since(mark)
    assert_api_saw_no_big_body(pushed)
    assert [r["status"] for r in pushed if r["route"].endswith("/direct")] == [200, 200]
    ctr("images", "rm", source, target)
    ctr("images", "pull", "--plain-http", "--all-platforms", f"{stack.host}/copies/ctrbig:1")
    ctr("images", "rm", f"{stack.host}/copies/ctrbig:1")
    ctr("content", "prune", "references", check=False)
