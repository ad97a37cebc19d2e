"""What scanning an image takes: the SBOM of a 1 GiB image (time, peak memory), matching 100,000
advisories against 1,000 packages, and what one scan costs on AWS. Not a test: it prints tables.

    make bench-scan                 # or: .venv/bin/python -m bench.scan [--gib 1]

1. The inventory of an image of `--gib` GiB, made on the fly (gzip layers of incompressible
   files, a dpkg status of 1,000 packages, Python and npm metadata), read in a child process
   whose peak RSS is the budget's measure (< 512 MB).
2. `advisories.match` of 1,000 packages against 100,000 advisories (20 per package name, each
   with a few ranges), the records held in memory: the matching's own time. On AWS a scan also
   makes one DynamoDB Query per distinct package (counted below).
3. One scan on moto in process, its AWS calls counted by operation and priced with
   chalicelib/lifecycle/prices.py (DynamoDB units estimated per call: 0.5 RRU a small
   eventually-consistent read, 1 WRU a small write, 2 a transactional one), Lambda at the
   measured time on a 1 GB function. The reference registry scans nothing: there is no
   side-by-side column.
"""
import argparse
import collections
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
import zlib

from chalicelib.lifecycle import prices
from chalicelib.scanning import advisories, inventory
from chalicelib.scanning.packages import Package
from tests import packages as made

FILE_BYTES = 8 * 1024 * 1024
LAYERS = 8
SCAN_FUNCTION_GB = 1.0  # the scan function's memory (Chalice's default for the stack's functions)


def _layer_pieces(size: int, extra: dict):
    """A gzip layer of about `size` expanded bytes, made while it is read (never held whole)."""
    compress = zlib.compressobj(1, zlib.DEFLATED, 31)

    class Sink:
        def __init__(self):
            self.out = []

        def write(self, data):
            self.out.append(compress.compress(data))
            return len(data)

    sink = Sink()
    archive = tarfile.open(fileobj=sink, mode="w|")
    for path, data in extra.items():
        info = tarfile.TarInfo(path)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        yield b"".join(sink.out)
        sink.out = []
    written = 0
    number = 0
    while written < size:
        data = os.urandom(FILE_BYTES)
        info = tarfile.TarInfo(f"data/file{number}")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        written += len(data)
        number += 1
        yield b"".join(sink.out)
        sink.out = []
    archive.close()
    yield b"".join(sink.out) + compress.flush()


def _inventory_child(gib: float) -> None:
    """Run in a child: the inventory of the big image; prints JSON of what it found and took."""
    status = made.dpkg_status([(f"lib{n}", f"1.{n}-1", "") for n in range(1000)])
    extra = [{"etc/os-release": made.os_release("debian", "12"), "var/lib/dpkg/status": status},
             {f"usr/lib/python3/dist-packages/p{n}-1.0.dist-info/METADATA": made.dist_info_metadata(f"p{n}", "1.0")
              for n in range(100)}]
    per_layer = int(gib * 1024 ** 3 / LAYERS)
    started = time.monotonic()
    found = inventory.read_image(
        (f"layer{n}", per_layer, lambda n=n: _layer_pieces(per_layer, extra[n] if n < len(extra) else {}))
        for n in range(LAYERS))
    print(json.dumps({"seconds": time.monotonic() - started, "packages": len(found.packages),
                      "expanded": found.bytes_expanded, "errors": found.errors,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def inventory_of_big_image(gib: float) -> dict:
    answer = subprocess.run([sys.executable, "-m", "bench.scan", "--child", str(gib)], capture_output=True, text=True,
                            check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def matching(advisory_count: int = 100_000, package_count: int = 1000) -> dict:
    names = [f"pkg{n}" for n in range(package_count)]
    packages = [Package("PyPI", name, f"1.{n % 50}.0", f"pkg:pypi/{name}@1.{n % 50}.0") for n, name in enumerate(names)]
    records = collections.defaultdict(list)
    for number in range(advisory_count):
        name = names[number % package_count]
        records[advisories.package_key("PyPI", name)].append(advisories.Record(
            advisories.package_key("PyPI", name), f"PYSEC-{number}", [{
                "ecosystem": "PyPI", "versions": [], "severity": "HIGH", "score": 7.5,
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": f"1.{number % 40}.0"},
                                                            {"fixed": f"1.{number % 40 + 5}.0"}]}]}],
            "HIGH", 7.5, "x", [], ""))
    started = time.monotonic()
    findings = advisories.match(packages, "", lambda keys: {key: records.get(key, []) for key in keys})
    return {"seconds": time.monotonic() - started, "findings": len(findings), "queries": package_count}


def one_scan_on_moto() -> dict:
    """A scan of a 20-layer image holding 1,000 Debian packages, in process on moto: its AWS calls."""
    import hashlib
    from moto import mock_aws
    from chalicelib.backend import build_backend, use_backend
    from chalicelib.metadata.models import create_tables
    from chalicelib.registry.blobs import BlobService
    from chalicelib.registry.manifests import ManifestService
    from chalicelib.runtime.config import Settings
    from chalicelib.scanning.service import ScanService
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    with mock_aws():
        backend = build_backend(Settings.from_environ({"DOCKLESS_BUCKET": "bench", "DOCKLESS_TABLE_PREFIX": "bench",
                                                       "DOCKLESS_TOKEN_SIGNING_KEY": "0" * 64}))
        use_backend(backend)
        backend.objects.create_bucket("us-east-1")
        create_tables()
        blobs = BlobService(backend)
        status = made.dpkg_status([(f"lib{n}", f"1.{n}-1", "") for n in range(1000)])
        layers = [made.tar_layer({"etc/os-release": made.os_release("debian", "12"), "var/lib/dpkg/status": status})]
        layers += [made.tar_layer({f"data/{n}": os.urandom(1024)}) for n in range(19)]
        descriptors = []
        for data in layers:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            blobs.push_monolithic("bench/app", digest, data)
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                                "size": len(data)})
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        blobs.push_monolithic("bench/app", config_digest, config)
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                                      "size": len(config)}, "layers": descriptors}).encode()
        manifest = ManifestService(backend).put("bench/app", "1", body, "application/vnd.oci.image.manifest.v1+json")
        calls = collections.Counter()
        started = time.monotonic()
        with _Counting(calls):
            ScanService(backend).scan("bench/app", manifest.digest)
        seconds = time.monotonic() - started
        use_backend(None)
    return {"seconds": seconds, "calls": dict(calls), "layers": len(layers)}


class _Counting:
    """Counts the AWS operations made while it is open, by botocore's before-call event."""

    def __init__(self, calls):
        self.calls = calls

    def __enter__(self):
        import botocore.client
        self._original = botocore.client.BaseClient._make_api_call
        calls = self.calls

        def counted(client, operation, params):
            calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
            return self._original(client, operation, params)
        botocore.client.BaseClient._make_api_call = counted
        return self

    def __exit__(self, *_):
        import botocore.client
        botocore.client.BaseClient._make_api_call = self._original


# DynamoDB units per call, as estimated for small items (a Query of one package's advisories, a
# scan item of a few KB): reads eventually consistent, transactions twice.
UNITS = {"dynamodb:Query": ("read", 0.5), "dynamodb:GetItem": ("read", 1.0), "dynamodb:BatchGetItem": ("read", 1.0),
         "dynamodb:PutItem": ("write", 1.0), "dynamodb:UpdateItem": ("write", 1.0),
         "dynamodb:TransactWriteItems": ("write", 4.0), "dynamodb:BatchWriteItem": ("write", 25.0)}


def scan_cost(measured: dict) -> dict:
    """Dollars of one scan, item by item."""
    calls = measured["calls"]
    rru = sum(n * UNITS[op][1] for op, n in calls.items() if UNITS.get(op, ("", 0))[0] == "read")
    wru = sum(n * UNITS[op][1] for op, n in calls.items() if UNITS.get(op, ("", 0))[0] == "write")
    s3_gets = sum(n for op, n in calls.items() if op in ("s3:GetObject", "s3:HeadObject"))
    s3_puts = sum(n for op, n in calls.items() if op in ("s3:PutObject",))
    items = {"Lambda": prices.LAMBDA_PER_REQUEST + measured["seconds"] * SCAN_FUNCTION_GB * prices.LAMBDA_PER_GB_SECOND,
             "DynamoDB": rru * prices.DYNAMODB_PER_READ_UNIT + wru * prices.DYNAMODB_PER_WRITE_UNIT,
             "S3": s3_gets * prices.S3_PER_GET + s3_puts * prices.S3_PER_PUT,
             "SQS": 3 * 0.40 / prices.MILLION}  # the scan message sent, received, deleted
    return {"items": items, "usd": sum(items.values()), "rru": rru, "wru": wru}


def print_tables(gib: float) -> None:
    big = inventory_of_big_image(gib)
    print(f"\nThe SBOM of a {gib:g} GiB image ({LAYERS} gzip layers, streamed):\n")
    print("| expanded | packages | seconds | peak RSS | budget |\n|---:|---:|---:|---:|---|")
    print(f"| {big['expanded'] / 1024 ** 3:.2f} GiB | {big['packages']} | {big['seconds']:.1f} | "
          f"{big['max_rss_mb']:.0f} MB | < 512 MB |")
    matched = matching()
    print("\nMatching 100,000 advisories against 1,000 packages (records in memory):\n")
    print("| findings | seconds | DynamoDB queries on AWS |\n|---:|---:|---:|")
    print(f"| {matched['findings']} | {matched['seconds']:.2f} | {matched['queries']} |")
    measured = one_scan_on_moto()
    cost = scan_cost(measured)
    print(f"\nOne scan of a {measured['layers']}-layer image of 1,000 Debian packages, on moto "
          f"({measured['seconds']:.2f} s):\n")
    print("| AWS call | count |\n|---|---:|")
    for operation, count in sorted(measured["calls"].items()):
        print(f"| {operation} | {count} |")
    print("\n| item | $ per million scans |\n|---|---:|")
    for item, usd in cost["items"].items():
        print(f"| {item} | {usd * prices.MILLION:.2f} |")
    print(f"\nscan: ${cost['usd'] * prices.MILLION:.2f}/M images ({cost['rru']:.0f} RRU, {cost['wru']:.0f} WRU each)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _inventory_child(float(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="the big image's size")
    print_tables(parser.parse_args().gib)


if __name__ == "__main__":
    main()
