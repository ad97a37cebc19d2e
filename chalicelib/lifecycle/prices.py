"""AWS list prices the cost estimates use: us-east-1, on-demand, no free tier, in US dollars.

Recorded 2026-11-28 from AWS's public pricing pages as last read by the authors (no AWS page is
reachable from the machine that wrote this); check them against the pages before quoting a figure.
Every estimate names these constants, so a price change is one edit here.
"""
from __future__ import annotations
PRICES_AS_OF = "2026-11-28"
MILLION = 1_000_000
GiB = 1024 ** 3

LAMBDA_PER_REQUEST = 0.20 / MILLION
LAMBDA_PER_GB_SECOND = 0.0000166667          # x86_64
LAMBDA_MEMORY_GB = 1.0                       # .chalice/config.json lambda_memory_size 1024
API_GATEWAY_REST_PER_REQUEST = 3.50 / MILLION  # first 333 million a month
CLOUDFRONT_HTTPS_PER_REQUEST = 0.0100 / 10_000  # United States / Europe
DYNAMODB_PER_READ_UNIT = 0.125 / MILLION     # on-demand read request unit
DYNAMODB_PER_WRITE_UNIT = 0.625 / MILLION    # on-demand write request unit
S3_PER_GET = 0.0004 / 1_000                  # GET, HEAD and other reads
S3_PER_PUT = 0.005 / 1_000                   # PUT, POST, LIST, multipart calls
S3_STORAGE_PER_GB_MONTH = 0.023              # Standard, first 50 TB
TRANSFER_OUT_PER_GB = 0.09                   # to the internet, first 10 TB (S3 and ECR alike)
ECR_STORAGE_PER_GB_MONTH = 0.10              # ECR charges no per-request fee
S3_READS = {"GetObject", "HeadObject", "ListParts"}


def api_request(latency_ms: float) -> float:
    """One registry API request: CloudFront, API Gateway, one Lambda invocation of that duration."""
    return (CLOUDFRONT_HTTPS_PER_REQUEST + API_GATEWAY_REST_PER_REQUEST + LAMBDA_PER_REQUEST
            + LAMBDA_PER_GB_SECOND * LAMBDA_MEMORY_GB * latency_ms / 1000)


def s3_request(operation: str) -> float:
    return S3_PER_GET if operation in S3_READS else S3_PER_PUT


def dynamodb(read_units: float, write_units: float) -> float:
    return read_units * DYNAMODB_PER_READ_UNIT + write_units * DYNAMODB_PER_WRITE_UNIT


def records_cost(records) -> float:
    """The request-driven cost of the given per-request records (chalicelib/runtime/observe.py): the API
    request itself, the DynamoDB units and S3 calls it made, and one S3 request per presigned URL
    it handed out (the client's GET, HEAD or PUT)."""
    total = 0.0
    for record in records:
        total += api_request(record["latency_ms"])
        total += dynamodb(record["dynamodb_read_units"], record["dynamodb_write_units"])
        total += sum(s3_request(call.split(":", 1)[1]) for call in record["aws_calls"] if call.startswith("s3:"))
        total += sum(s3_request(url.split(":", 1)[1]) for url in record["presigned_urls"])
    return total


# What one pull and one push of an N-layer image make, as `bench/cost.py` measured them with docker
# 20.10 on 2026-11-28 (N = 1, 5, 20): requests and DynamoDB units as linear fits, S3 requests by
# the client one per layer (pull) and two per layer (push, through the gateway).
PULL_REQUESTS = (1, 6)          # N + 6
PULL_READ_UNITS = (0.5, 10)     # 0.5 N + 10
PULL_WRITE_UNITS = (0, 4.5)
PUSH_REQUESTS = (4, 8)          # 4 N + 8
PUSH_READ_UNITS = (3.5, 8)
PUSH_WRITE_UNITS = (6.5, 17)    # transactions: two units per item
MEASURED_LATENCY_MS = 100       # priced per invocation; the local stack answered faster


def _at(fit: tuple, layers: float) -> float:
    return fit[0] * layers + fit[1]


def pull_cost(layers: float) -> float:
    return (_at(PULL_REQUESTS, layers) * api_request(MEASURED_LATENCY_MS)
            + dynamodb(_at(PULL_READ_UNITS, layers), _at(PULL_WRITE_UNITS, layers)) + (layers + 1) * S3_PER_GET)


def push_cost(layers: float) -> float:
    return (_at(PUSH_REQUESTS, layers) * api_request(MEASURED_LATENCY_MS)
            + dynamodb(_at(PUSH_READ_UNITS, layers), _at(PUSH_WRITE_UNITS, layers)) + 2 * (layers + 1) * S3_PER_PUT)


def monthly_estimate(stored_bytes: int, pushes: int, pulls: int, days: float, layers_per_image: float) -> float:
    """A repository's month: S3 storage, plus the period's pushes and pulls scaled to 30 days at
    the measured request counts above. Transfer out is left out: ECR charges it the same."""
    per_month = 30 / max(days, 1)
    return (stored_bytes / GiB * S3_STORAGE_PER_GB_MONTH
            + per_month * (pulls * pull_cost(layers_per_image) + pushes * push_cost(layers_per_image)))
