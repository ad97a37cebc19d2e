"""What a `docker pull` and a `docker push` cost, counted from the local stack's request records.
Not a test: it prints a table.

    make bench-cost                 # or: .venv/bin/python -m bench.cost [--layers 1 5 20]

For each N, an image of N layers (10 KiB each, FROM scratch) is built with docker, pushed through
`dockless serve` (gateway on port 5000 in front of the API, as a team runs it), removed and
pulled. The API's per-request records (chalicelib/runtime/observe.py; a blob GET the edge served,
`served_by: "edge"`, is logged by the local front door) give the requests, DynamoDB units
(consumed capacity as the moto server reports it), S3 calls the API made and presigned URLs it
issued (each one S3 request by the client). Dollars use the dated list prices of
chalicelib/lifecycle/prices.py, item by item (CloudFront and its function, Lambda@Edge, API Gateway,
Lambda on arm64 at the latency measured here, each record's log bytes, DynamoDB, S3), for each
door (`dockless deploy --door`: API Gateway, or the function URL without its per-request fee),
then what the registry bills per month whatever its traffic; the last line is the default door's
`cost: pull-20 $A/M push-20 $B/M`. ECR charges no request fee: its cost of a pull is
transfer out, which S3 charges the same; storage differs.
"""
import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from chalicelib.lifecycle import prices
from chalicelib.runtime.function_url import DOORS
from tests.e2e import programs
from tests.e2e.conftest import DOCKER
from tests.e2e.images import dockerfile_context

LAYER_BYTES = 10 * 1024
# The lever the stack offers on logs (`dockless deploy --log-retention-days`), priced beside the default.
SHORT_LOG_DAYS = 30


# The requests and units are the app's whatever its door (DOORS, the default first); the door
# changes what they are billed.


def measure(records) -> dict:
    items = {door: prices.records_items(records, door) for door in DOORS}
    return {"api": sum(r.get("served_by") != "edge" for r in records),
            "edge": sum(r.get("served_by") == "edge" for r in records),
            "rru": sum(r["dynamodb_read_units"] for r in records),
            "wru": sum(r["dynamodb_write_units"] for r in records),
            "s3_api": sum(r["s3_requests"] for r in records),
            "s3_client": sum(len(r["presigned_urls"]) for r in records),
            "items": items,
            "usd": {door: sum(found.values()) for door, found in items.items()},
            "usd_logs_short": {door: prices.records_cost(records, door, SHORT_LOG_DAYS) for door in DOORS},
            "routes": _by_route(records)}


def _by_route(records) -> dict:
    """Per route and method: requests, read units, write units (which calls a layer costs most)."""
    routes: dict = {}
    for record in records:
        found = routes.setdefault(f"{record['method']} {record['route']}", [0, 0.0, 0.0])
        found[0] += 1
        found[1] += record["dynamodb_read_units"]
        found[2] += record["dynamodb_write_units"]
    return routes


def run(work: Path, layer_counts) -> list:
    rows = []
    (work / "stack").mkdir()
    (work / "docker").mkdir()
    with programs.dockless_serve(work / "stack") as stack, programs.dockerd(work / "docker") as env:
        subprocess.run([DOCKER, "login", stack.host, "-u", "admin", "--password-stdin"], env=env,
                       input=stack.admin_token, text=True, check=True, capture_output=True)
        for count in layer_counts:
            image = f"{stack.host}/bench/cost-{count}:1"
            context = dockerfile_context(work / f"ctx-{count}", [LAYER_BYTES] * count)
            subprocess.run([DOCKER, "build", "-q", "-t", image, str(context)], env=env, check=True, capture_output=True)
            mark = stack.mark()
            subprocess.run([DOCKER, "push", image], env=env, check=True, capture_output=True)
            push = measure(stack.requests_since(mark))
            subprocess.run([DOCKER, "rmi", image], env=env, check=True, capture_output=True)
            mark = stack.mark()
            subprocess.run([DOCKER, "pull", image], env=env, check=True, capture_output=True)
            pull = measure(stack.requests_since(mark))
            image_bytes = count * LAYER_BYTES
            rows.append((count, push, pull, image_bytes))
    return rows


def print_table(rows) -> None:
    print(f"Measured with docker {_docker_version()} against the local stack; prices of {prices.PRICES_AS_OF} "
          "(chalicelib/lifecycle/prices.py), us-east-1.\n")
    print("| N layers | operation | API requests | blob GETs at the edge | DynamoDB RRU / WRU | S3 by API | S3 by client | "
          + " | ".join(f"$ per million, {door} door" for door in DOORS) + " | ECR $ per million (requests) |")
    print("|---:|---|---:|---:|---:|---:|---:|" + "---:|" * len(DOORS) + "---:|")
    for count, push, pull, _ in rows:
        for name, m in (("pull", pull), ("push", push)):
            print(f"| {count} | docker {name} | {m['api']} | {m['edge']} | {m['rru']:.1f} / {m['wru']:.1f} | "
                  f"{m['s3_api']} | {m['s3_client']} | "
                  + " | ".join(f"{m['usd'][door] * prices.MILLION:.2f}" for door in DOORS) + " | 0.00 |")
    for door in DOORS:
        items = list(dict.fromkeys(item for row in rows for m in row[1:3] for item in m["items"][door]))
        print(f"\nBy item, {door} door, $ per million operations:\n")
        print("| N layers | operation | " + " | ".join(items) + " |")
        print("|---:|---|" + "---:|" * len(items))
        for count, push, pull, _ in rows:
            for name, m in (("pull", pull), ("push", push)):
                print(f"| {count} | docker {name} | "
                      + " | ".join(f"{m['items'][door].get(item, 0.0) * prices.MILLION:.2f}" for item in items) + " |")
    fixed = prices.fixed_monthly()
    print(f"\nWhatever the traffic, per month: ${sum(fixed.values()):.2f} ("
          + ", ".join(f"{item} ${cost:.2f}" for item, cost in fixed.items()) + ").")
    print("\nBoth pay transfer out of AWS the same way "
          f"(${prices.TRANSFER_OUT_PER_GB}/GB: a million pulls of a 100 MiB image is "
          f"${prices.TRANSFER_OUT_PER_GB * 100 / 1024 * prices.MILLION:,.0f} on either). Storage per GB-month: "
          f"dockless (S3) ${prices.S3_STORAGE_PER_GB_MONTH}, ECR ${prices.ECR_STORAGE_PER_GB_MONTH}.")
    from bench import scan
    scanned = scan.scan_cost(scan.one_scan_on_moto())
    print(f"\nA push's scan (its SBOM and findings, off the request path), an image of 20 layers and 1,000 "
          f"packages: ${scanned['usd'] * prices.MILLION:.2f} per million images (`make bench-scan`: by item).")
    largest = max(rows, key=lambda row: row[0])
    for name, m in (("pull", largest[2]), ("push", largest[1])):
        print(f"\nWhere a {largest[0]}-layer {name}'s requests and units go:\n")
        print("| route | requests | RRU | WRU |\n|---|---:|---:|---:|")
        for route, (count, rru, wru) in sorted(m["routes"].items(), key=lambda item: -item[1][2]):
            print(f"| `{route}` | {count} | {rru:.1f} | {wru:.1f} |")
    print(f"\nWith logs kept {SHORT_LOG_DAYS} days (`dockless deploy --log-retention-days {SHORT_LOG_DAYS}`) instead of "
          f"{prices.LOG_RETENTION_DAYS}: " + "; ".join(
              f"pull-{largest[0]} ${largest[2]['usd_logs_short'][door] * prices.MILLION:.2f}/M, push-{largest[0]} "
              f"${largest[1]['usd_logs_short'][door] * prices.MILLION:.2f}/M ({door} door)" for door in DOORS) + ".")
    print(f"\ncost: pull-{largest[0]} ${largest[2]['usd'][DOORS[0]] * prices.MILLION:.2f}/M "
          f"push-{largest[0]} ${largest[1]['usd'][DOORS[0]] * prices.MILLION:.2f}/M ({DOORS[0]} door)")


def _docker_version() -> str:
    result = subprocess.run([DOCKER, "--version"], capture_output=True, text=True)
    return result.stdout.split(",")[0].replace("Docker version ", "").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 5, 20], help="layer counts N")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockless-cost-"))
    try:
        print_table(run(work, args.layers))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
