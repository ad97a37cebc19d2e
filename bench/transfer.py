"""Push and pull times, dockless (`dockless serve`'s port, as `make serve` runs it: the gateway in
front of the API and the local S3) side by side with the reference registry (Debian's
`docker-registry`, filesystem storage, on loopback), in one run. Not a test: it prints tables.

    make bench                  # or: .venv/bin/python -m bench.transfer [--rounds 3] [--big-mib 1024]

Workloads, each pushed and pulled with `skopeo copy` between an OCI layout and the registry:
4 layers of 50 MiB (209.7 MB) and 20 layers of 5 MiB. Every round builds fresh random layers, so
every push moves every byte to both registries (neither has seen them); the table shows the median
of the rounds. Layers are uncompressed random bytes, so no time goes into gzip.

Then, from the API's request log of those rounds, each route's AWS calls and handler latency (the
record's `latency_ms`), as the budgets in DESIGN.md count them; and one layer of --big-mib pushed
through a `dockless gateway` process of its own, whose peak RSS is read from /proc (it holds
pieces, never a layer).
"""
import argparse
import collections
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e import programs
from tests.e2e.images import OciLayout, add_big_uncompressed_layer, image_from_layers

MiB = 1024 * 1024
WORKLOADS = {"4 layers / 209.7 MB": (4, 50 * MiB), "20 x 5 MiB": (20, 5 * MiB)}


def timed(*command, env=None) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.monotonic() - started


def fresh_layout(path: Path, count: int, size: int) -> Path:
    layout = OciLayout(path)
    layout.tag(image_from_layers(layout, [add_big_uncompressed_layer(layout, size) for _ in range(count)]), "1")
    return layout.path


def push_and_pull(layout: Path, host: str, repo: str, work: Path, creds: str = None) -> tuple:
    target = f"docker://{host}/{repo}:1"
    dest_creds, src_creds = ([f"--dest-creds={creds}"], [f"--src-creds={creds}"]) if creds else ([], [])
    push = timed("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", *dest_creds,
                 f"oci:{layout}:1", target)
    out = work / "pulled"
    shutil.rmtree(out, ignore_errors=True)
    pull = timed("skopeo", "copy", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
                 "--src-tls-verify=false", *src_creds, target, f"oci:{out}:1")
    shutil.rmtree(out)
    return push, pull


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh images per workload (the median is shown)")
    parser.add_argument("--big-mib", type=int, default=1024, help="the layer pushed to measure the gateway's memory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockless-bench-"))
    try:
        run(work, args.rounds, args.big_mib)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rounds: int, big_mib: int) -> None:
    for name in ("stack", "reference"):
        (work / name).mkdir()
    times = collections.defaultdict(list)
    with programs.dockless_serve(work / "stack") as stack, \
            programs.reference_registry(work / "reference", _free_port()) as reference:
        creds = f"admin:{stack.admin_token}"
        for number in range(rounds):
            for label, (count, size) in WORKLOADS.items():
                layout = fresh_layout(work / "layout", count, size)
                repo = f"bench/r{number}-{count}"
                # Alternate who goes first, so neither always finds the page cache warm.
                sides = [("dockless", stack.host, creds), ("reference", reference, None)]
                for side, host, side_creds in sides if number % 2 == 0 else reversed(sides):
                    push, pull = push_and_pull(layout, host, repo, work, side_creds)
                    times[(f"push, {label}", side)].append(push)
                    times[(f"pull, {label}", side)].append(pull)
                shutil.rmtree(layout)
        records = stack.requests()
        layout = fresh_layout(work / "layout", 1, big_mib * MiB)
        (work / "spool").mkdir()
        with programs.dockless_gateway(stack.api_url, work / "spool") as gateway:
            big = push_and_pull(layout, gateway.host, "bench/big", work, creds)
            peak = programs.peak_rss_kib(gateway.pid) / 1024

    print(f"\n{'workload (median of ' + str(rounds) + ')':34} {'dockless':>9} {'reference':>10} {'ratio':>7}")
    for label in dict.fromkeys(label for label, _ in times):
        ours, theirs = statistics.median(times[(label, "dockless")]), statistics.median(times[(label, "reference")])
        print(f"{label:34} {ours:8.2f}s {theirs:9.2f}s {ours / theirs:6.2f}x")
    print(f"\none {big_mib} MiB layer through a `dockless gateway` process of its own: push {big[0]:.1f}s, "
          f"pull {big[1]:.1f}s, the gateway's peak RSS {peak:.0f} MiB (goal: at most 64 MiB for any layer)")
    print_routes(records)
    print(f"\nmachine: {os.cpu_count()} cores; dockless = `dockless serve` (gateway, API, moto S3 and DynamoDB);"
          " reference = docker-registry (filesystem storage); skopeo on loopback")


def print_routes(records) -> None:
    """Per route: requests, AWS calls (median, and the most), handler latency p50 and p95."""
    by_route = collections.defaultdict(list)
    for record in records:
        by_route[f"{record['method']} {record['route']}"].append(record)
    print(f"\n{'route':52} {'requests':>8} {'AWS calls':>10} {'max':>4} {'p50 ms':>7} {'p95 ms':>7}")
    for route, items in sorted(by_route.items(), key=lambda entry: -len(entry[1])):
        calls = sorted(len(r["aws_calls"]) for r in items)
        latency = sorted(r["latency_ms"] for r in items)
        p95 = latency[min(len(latency) - 1, int(len(latency) * 0.95))]
        print(f"{route:52} {len(items):8} {statistics.median(calls):10.0f} {calls[-1]:4} "
              f"{statistics.median(latency):7.1f} {p95:7.1f}")


def _free_port() -> int:
    from dockless.local.stack import free_port
    return free_port()


if __name__ == "__main__":
    main()
