"""AWS list prices the cost estimates use: us-east-1, on-demand, no free tier, in US dollars.

Recorded 2026-11-28 from AWS's public pricing pages as last read by the authors (no AWS page is
reachable from the machine that wrote this); check them against the pages before quoting a figure.
Every estimate names these constants, so a price change is one edit here.
"""
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
    """The request-driven cost of the given per-request records (chalicelib/observe.py): the API
    request itself, the DynamoDB units and S3 calls it made, and one S3 request per presigned URL
    it handed out (the client's GET, HEAD or PUT)."""
    total = 0.0
    for record in records:
        total += api_request(record["latency_ms"])
        total += dynamodb(record["dynamodb_read_units"], record["dynamodb_write_units"])
        total += sum(s3_request(call.split(":", 1)[1]) for call in record["aws_calls"] if call.startswith("s3:"))
        total += sum(s3_request(url.split(":", 1)[1]) for url in record["presigned_urls"])
    return total


def monthly_estimate(stored_bytes: int, pushes: int, pulls: int, days: float, layers_per_image: float) -> float:
    """A repository's month: storage, plus its pushes and pulls at the request counts
    `bench/cost.py` measures (a pull: N + 6 API requests, N S3 GETs; a push: about 3N + 6), each
    API request priced at 100 ms. Transfer out is left out: it is the same for ECR."""
    per_month = 30 / max(days, 1)
    pull = (layers_per_image + 6) * (api_request(100) + 4 * DYNAMODB_PER_READ_UNIT) + layers_per_image * S3_PER_GET
    push = (3 * layers_per_image + 6) * (api_request(100) + 4 * DYNAMODB_PER_WRITE_UNIT) + layers_per_image * 2 * S3_PER_PUT
    return stored_bytes / GiB * S3_STORAGE_PER_GB_MONTH + per_month * (pulls * pull + pushes * push)
