"""Push and pull times, dockless (through `dockless gateway`) side by side with the reference
registry (Debian's `docker-registry`, on loopback), in one run. Not a test: it prints a table.

    make bench                      # or: .venv/bin/python -m bench.transfer [--big-mib 1024]

Workloads: (a) one big layer (1 GiB by default), (b) 20 layers of 5 MiB, each pushed and pulled
with `skopeo copy` between an OCI layout and the registry; then an image with the same layers
pushed with `dockless push` (to dockless) and `docker push` (to the reference registry). Layers
are uncompressed random bytes, so no time goes into gzip. The gateway's peak RSS is read from
/proc after the pushes.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e import programs
from tests.e2e.images import (OciLayout, add_big_uncompressed_layer, image_from_layers,
                              write_random_file)

MiB = 1024 * 1024


def timed(*command, env=None) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.monotonic() - started


def skopeo_round_trip(layout: Path, tag: str, host: str, repo: str, work: Path, creds: str = None) -> tuple:
    target = f"docker://{host}/{repo}:{tag}"
    dest_creds, src_creds = ([f"--dest-creds={creds}"], [f"--src-creds={creds}"]) if creds else ([], [])
    push = timed("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", *dest_creds,
                 f"oci:{layout}:{tag}", target)
    out = work / f"pulled-{repo.replace('/', '-')}"
    shutil.rmtree(out, ignore_errors=True)
    pull = timed("skopeo", "copy", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
                 "--src-tls-verify=false", *src_creds, target, f"oci:{out}:{tag}")
    shutil.rmtree(out)
    return push, pull


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big layer in MiB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockless-bench-"))
    try:
        run(work, args.big_mib)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, big_mib: int) -> None:
    layouts = {}
    layout = OciLayout(work / "big")
    layout.tag(image_from_layers(layout, [add_big_uncompressed_layer(layout, big_mib * MiB)]), "big")
    layouts["big"] = layout.path
    layout = OciLayout(work / "many")
    layout.tag(image_from_layers(layout, [add_big_uncompressed_layer(layout, 5 * MiB) for _ in range(20)]),
               "many")
    layouts["many"] = layout.path

    rows = []
    (work / "stack").mkdir()
    (work / "spool").mkdir()
    (work / "reference").mkdir()
    (work / "docker").mkdir()
    with programs.dockless_serve(work / "stack") as stack, \
            programs.dockless_gateway(stack.api_url, work / "spool") as gateway, \
            programs.reference_registry(work / "reference", _free_port()) as reference:
        for label, tag in ((f"one {big_mib} MiB layer", "big"), ("20 layers of 5 MiB", "many")):
            ours = skopeo_round_trip(layouts[tag], tag, gateway.host, f"bench/{tag}", work,
                                     creds=f"admin:{stack.admin_token}")
            theirs = skopeo_round_trip(layouts[tag], tag, reference, f"bench/{tag}", work)
            rows.append((f"skopeo push, {label}", ours[0], theirs[0]))
            rows.append((f"skopeo pull, {label}", ours[1], theirs[1]))
        peak = programs.peak_rss_kib(gateway.pid) / 1024

        with programs.dockerd(work / "docker") as docker_env:
            context = work / "context"
            context.mkdir()
            write_random_file(context / "big.bin", big_mib * MiB)
            lines = ["FROM scratch", "COPY big.bin /big.bin"]
            for number in range(20):
                write_random_file(context / f"f{number}.bin", 5 * MiB)
                lines.append(f"COPY f{number}.bin /f{number}.bin")
            (context / "Dockerfile").write_text("\n".join(lines) + "\n")
            image = f"{reference}/bench/docker:1"
            subprocess.run([programs.DOCKER, "build", "-q", "-t", image, str(context)], check=True,
                           capture_output=True, env=docker_env)
            ours = timed(sys.executable, "-m", "dockless.cli", "push", image, f"{stack.host}/bench/docker:1",
                         env={**docker_env, "DOCKLESS_USERNAME": "admin", "DOCKLESS_PASSWORD": stack.admin_token})
            theirs = timed(programs.DOCKER, "push", image, env=docker_env)
            rows.append((f"dockless push vs docker push, {big_mib} MiB + 20 x 5 MiB", ours, theirs))

    print(f"\n{'workload':58} {'dockless':>10} {'reference':>10} {'ratio':>7}")
    for label, ours, theirs in rows:
        print(f"{label:58} {ours:9.1f}s {theirs:9.1f}s {ours / theirs:7.2f}")
    print(f"\ndockless gateway peak RSS: {peak:.1f} MiB")
    print(f"machine: {os.cpu_count()} cores; dockless = local stack (moto S3) behind `dockless gateway`;"
          " reference = docker-registry (filesystem storage)")


def _free_port() -> int:
    from dockless.localstack import free_port
    return free_port()


if __name__ == "__main__":
    main()
