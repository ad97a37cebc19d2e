"""Load on the local stack: concurrent pulls and pushes against `dockless serve`, bounded by count,
on loopback. Not a test: it prints throughput, latency percentiles per operation (as the clients
saw them) and per route (the handlers' own `latency_ms`), and errors.

    make bench-load             # or: .venv/bin/python -m bench.load [--pullers 50] [--pushers 10] [--rounds 10]

A puller GETs a manifest by tag and each of its blobs (the API's 307, then the bytes from the local
S3), checking every digest. A pusher pushes a fresh image (two random 64 KiB layers and a config:
HEAD, monolithic POST, manifest PUT) to a repository of its own. Each client is its own session,
with its own token, as separate machines would be.
"""
import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from dockless.client.auth import RegistryAuth
from tests.e2e import programs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
LAYER_BYTES = 64 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    """One client: a session with its own token, and what each of its operations took."""

    def __init__(self, url: str, token: str, timings, errors):
        self.url, self.timings, self.errors = url, timings, errors
        self.http = requests.Session()
        self.http.auth = RegistryAuth("admin", token)

    def call(self, operation: str, method: str, url: str, expected, **kwargs):
        started = time.monotonic()
        try:
            response = self.http.request(method, url, timeout=120, allow_redirects=False, **kwargs)
        except requests.RequestException as failure:
            self.errors.append(f"{operation}: {failure}")
            return None
        self.timings[operation].append((time.monotonic() - started) * 1000)
        if response.status_code not in expected:
            self.errors.append(f"{operation}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def pull(self, repo: str, tag: str) -> None:
        manifest = self.call("manifest GET", "GET", f"{self.url}/v2/{repo}/manifests/{tag}", (200,),
                             headers={"Accept": OCI_MANIFEST})
        if manifest is None:
            return
        document = manifest.json()
        for descriptor in [document["config"], *document["layers"]]:
            redirect = self.call("blob GET (API)", "GET", f"{self.url}/v2/{repo}/blobs/{descriptor['digest']}", (307,))
            if redirect is None:
                continue
            fetched = self.call("blob GET (S3)", "GET", redirect.headers["Location"], (200,))
            if fetched is not None and digest_of(fetched.content) != descriptor["digest"]:
                self.errors.append(f"blob GET (S3): wrong bytes for {descriptor['digest']}")

    def push(self, repo: str, tag: str) -> None:
        config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
        layers = [os.urandom(LAYER_BYTES) for _ in range(2)]
        for data in [config, *layers]:
            digest = digest_of(data)
            if self.call("blob HEAD", "HEAD", f"{self.url}/v2/{repo}/blobs/{digest}", (200, 404)) is None:
                return
            if self.call("blob POST", "POST", f"{self.url}/v2/{repo}/blobs/uploads/", (201,),
                         params={"digest": digest}, data=data,
                         headers={"Content-Type": "application/octet-stream"}) is None:
                return
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
                           "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(d), "size": len(d)}
                                      for d in layers]}).encode()
        self.call("manifest PUT", "PUT", f"{self.url}/v2/{repo}/manifests/{tag}", (201,), data=body,
                  headers={"Content-Type": OCI_MANIFEST})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pullers", type=int, default=50)
    parser.add_argument("--pushers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10, help="operations per client")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockless-load-"))
    try:
        run(work, args.pullers, args.pushers, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, pullers: int, pushers: int, rounds: int) -> None:
    timings, errors = collections.defaultdict(list), []
    with programs.dockless_serve(work) as stack:
        Client(stack.url, stack.admin_token, collections.defaultdict(list), errors).push("load/base", "1")
        mark = stack.mark()
        clients = [("pull", Client(stack.url, stack.admin_token, timings, errors)) for _ in range(pullers)] + \
                  [("push", Client(stack.url, stack.admin_token, timings, errors)) for _ in range(pushers)]

        def work_of(number, role, client):
            for round_number in range(rounds):
                if role == "pull":
                    client.pull("load/base", "1")
                else:
                    client.push(f"load/w{number}", f"r{round_number}")

        threads = [threading.Thread(target=work_of, args=(n, role, client)) for n, (role, client) in enumerate(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        records = stack.requests_since(mark)

    print(f"\n{pullers} pullers and {pushers} pushers, {rounds} operations each, in {elapsed:.1f} s: "
          f"{pullers * rounds / elapsed:.1f} pulls/s, {pushers * rounds / elapsed:.1f} pushes/s, "
          f"{len(records) / elapsed:.0f} API requests/s; errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    print(f"\n{'as the clients saw it':28} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for operation, values in sorted(timings.items()):
        print(f"{operation:28} {len(values):6} " + " ".join(f"{p:8.1f}" for p in percentiles(values)))
    by_route = collections.defaultdict(list)
    for record in records:
        by_route[f"{record['method']} {record['route']}"].append(record)
    print(f"\n{'handler (request log)':52} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'5xx':>4}")
    for route, items in sorted(by_route.items(), key=lambda entry: -len(entry[1])):
        values = [r["latency_ms"] for r in items]
        print(f"{route:52} {len(items):6} " + " ".join(f"{p:8.1f}" for p in percentiles(values))
              + f" {sum(r['status'] >= 500 for r in items):4}")
    print(f"\nmachine: {os.cpu_count()} cores; the clients, the gateway, the API and the local S3 and DynamoDB"
          " share them (the local stack serves DynamoDB one request at a time)")


def percentiles(values) -> list:
    if len(values) < 2:
        return [values[0]] * 3 if values else [0.0] * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[49], cuts[94], cuts[98]]


if __name__ == "__main__":
    main()
