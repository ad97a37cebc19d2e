"""AWS list prices the cost estimates use: us-east-1, on-demand, no free tier, in US dollars; and
what the stack bills, item by item.

Recorded 2026-11-28 (arm64, the front door's functions, logs, metrics, alarms, secrets and KMS on
2026-12-07) from AWS's public pricing pages as last read by the authors (no AWS page is reachable
from the machine that wrote this); check them against the pages before quoting a figure. Every
estimate names these constants, so a price change is one edit here.

Each API request is billed by CloudFront, its viewer-request CloudFront Function, API Gateway (not
behind the function URL door: `door`), the
API's Lambda invocation (arm64), the origin-response Lambda@Edge function and CloudWatch Logs (the
request's JSON record and Lambda's START/END/REPORT lines, ingested and kept LOG_RETENTION_DAYS);
then by the DynamoDB units and S3 requests it made and the S3 requests of the URLs it presigned.
A blob GET the edge serves (`edge_request`) is billed by CloudFront, the blob gate and S3 alone
(and behind API Gateway the origin-response function).
Per month, whatever the traffic: the custom metrics, the alarms, the secrets and KMS for the
encrypted tables (`fixed_monthly`). S3 storage and transfer out come on top (`monthly_estimate`).
"""
from __future__ import annotations
from typing import Dict, Iterable

from chalicelib.lifecycle import quota
from chalicelib.metadata.models import TABLES
from chalicelib.runtime import config
from chalicelib.runtime.function_url import API_GATEWAY_DOOR
from chalicelib.runtime.observe import JOB_METRICS, REQUEST_METRICS, record_line

PRICES_AS_OF = "2026-12-07"
MILLION = 1_000_000
GiB = 1024 ** 3

LAMBDA_PER_REQUEST = 0.20 / MILLION
LAMBDA_PER_GB_SECOND = 0.0000133334          # arm64 (x86_64: 0.0000166667)
LAMBDA_MEMORY_GB = 1.0                       # .chalice/config.json lambda_memory_size 1024
API_GATEWAY_REST_PER_REQUEST = 3.50 / MILLION  # first 333 million a month
CLOUDFRONT_HTTPS_PER_REQUEST = 0.0100 / 10_000  # United States / Europe
CLOUDFRONT_FUNCTION_PER_INVOCATION = 0.10 / MILLION  # the viewer-host function, on every request
EDGE_PER_REQUEST = 0.60 / MILLION            # Lambda@Edge: the origin-response function, every request
EDGE_PER_GB_SECOND = 0.00005001              # Lambda@Edge duration, billed per millisecond
EDGE_MEMORY_GB = 128 / 1024                  # infra/stack.py edge_template MemorySize
EDGE_DURATION_MS = 2                         # assumed: it renames two headers (no account measured it)
LOGS_INGESTION_PER_GB = 0.50                 # CloudWatch Logs, standard class
LOGS_STORAGE_PER_GB_MONTH = 0.03             # billed compressed: the raw bytes are an upper bound
LOG_RETENTION_DAYS = config.LOG_RETENTION_DAYS  # the log groups' default (the LogRetentionDays parameter)
LAMBDA_REPORT_BYTES = 330                    # START, END and REPORT lines of one invocation
RECORD_BYTES = 1100                          # a request's JSON record, for estimates (records_cost measures each)
DYNAMODB_PER_READ_UNIT = 0.125 / MILLION     # on-demand read request unit
DYNAMODB_PER_WRITE_UNIT = 0.625 / MILLION    # on-demand write request unit
S3_PER_GET = 0.0004 / 1_000                  # GET, HEAD and other reads
S3_PER_PUT = 0.005 / 1_000                   # PUT, POST, LIST, multipart calls
S3_STORAGE_PER_GB_MONTH = 0.023              # Standard, first 50 TB
TRANSFER_OUT_PER_GB = 0.09                   # to the internet, first 10 TB (S3 and ECR alike)
ECR_STORAGE_PER_GB_MONTH = 0.10              # ECR charges no per-request fee
S3_READS = {"GetObject", "HeadObject", "ListParts"}

CUSTOM_METRIC_PER_MONTH = 0.30               # first 10,000 metrics
ALARM_PER_MONTH = 0.10                       # standard resolution
SECRET_PER_MONTH = 0.40                      # Secrets Manager
KMS_PER_REQUEST = 0.03 / 10_000              # the tables' AWS-managed key: no key fee, requests only
SQS_FIFO_PER_REQUEST = 0.50 / MILLION        # per 64 KB chunk of a request
EVENTBRIDGE_PER_EVENT = 1.00 / MILLION       # custom events put on a bus
DISPATCH_MS = 50                             # assumed: the dispatch function's run for one event
# What one change's events cost once sent (chalicelib/events/delivery.py): the send, Lambda's poll
# (receive, delete) of the events queue, the bus, the dispatch function. Webhook deliveries come on
# top, per webhook: their queue's three requests and the delivery function's run.
EVENT_COST = 3 * SQS_FIFO_PER_REQUEST + EVENTBRIDGE_PER_EVENT + LAMBDA_PER_REQUEST \
    + LAMBDA_PER_GB_SECOND * LAMBDA_MEMORY_GB * DISPATCH_MS / 1000
# What the template holds (tests/infra/test_stack.py counts them in the packaged template).
STACK_ALARMS = 65
STACK_SECRETS = 5
STACK_JOBS = 5
# DynamoDB asks KMS for a table's key at most about every 5 minutes per table while it is in use:
# an upper bound of 12 an hour per table, all month.
KMS_REQUESTS_PER_TABLE_MONTH = 12 * 730


_EDGE_INVOCATION = EDGE_PER_REQUEST + EDGE_PER_GB_SECOND * EDGE_MEMORY_GB * EDGE_DURATION_MS / 1000


def api_request(latency_ms: float, log_bytes: float = RECORD_BYTES, door: str = API_GATEWAY_DOOR,
                log_days: int = LOG_RETENTION_DAYS) -> Dict[str, float]:
    """What one registry API request costs, by item: the front door, API Gateway (nothing behind
    the function URL door, which bills only the invocation), one Lambda invocation of that
    duration, and its log lines kept `log_days`."""
    logged_gb = (log_bytes + LAMBDA_REPORT_BYTES) / GiB
    return {"CloudFront": CLOUDFRONT_HTTPS_PER_REQUEST,
            "CloudFront Functions": CLOUDFRONT_FUNCTION_PER_INVOCATION,
            "Lambda@Edge": _EDGE_INVOCATION,
            "API Gateway": API_GATEWAY_REST_PER_REQUEST if door == API_GATEWAY_DOOR else 0.0,
            "Lambda": LAMBDA_PER_REQUEST + LAMBDA_PER_GB_SECOND * LAMBDA_MEMORY_GB * latency_ms / 1000,
            "CloudWatch Logs": logged_gb * (LOGS_INGESTION_PER_GB + LOGS_STORAGE_PER_GB_MONTH * log_days / 30)}


def edge_request(door: str = API_GATEWAY_DOOR) -> Dict[str, float]:
    """What a blob GET the edge answered from the bucket costs (chalicelib/access/edge.py), by item:
    CloudFront, its blob gate, and behind API Gateway the origin-response Lambda@Edge that also
    sees the bucket's answer; no API Gateway, invocation or log line. The bucket's GET comes with
    the record's presigned URL."""
    return {"CloudFront": CLOUDFRONT_HTTPS_PER_REQUEST,
            "CloudFront Functions": CLOUDFRONT_FUNCTION_PER_INVOCATION,
            "Lambda@Edge": _EDGE_INVOCATION if door == API_GATEWAY_DOOR else 0.0}


def s3_request(operation: str) -> float:
    return S3_PER_GET if operation in S3_READS else S3_PER_PUT


def dynamodb(read_units: float, write_units: float) -> float:
    return read_units * DYNAMODB_PER_READ_UNIT + write_units * DYNAMODB_PER_WRITE_UNIT


def _add(total: Dict[str, float], items: Dict[str, float]) -> Dict[str, float]:
    for item, cost in items.items():
        total[item] = total.get(item, 0.0) + cost
    return total


def records_items(records: Iterable[dict], door: str = API_GATEWAY_DOOR,
                  log_days: int = LOG_RETENTION_DAYS) -> Dict[str, float]:
    """The request-driven cost of the given per-request records (chalicelib/runtime/observe.py), by
    item: each API request at its latency and its record's size (one the edge served at the edge's
    price), the DynamoDB units and S3 calls it made, and one S3 request per presigned URL it handed
    out (the client's GET, HEAD or PUT)."""
    total: Dict[str, float] = {}
    for record in records:
        if record.get("served_by") == "edge":
            _add(total, edge_request(door))
        else:
            _add(total, api_request(record["latency_ms"], len(record_line(record)), door, log_days))
        _add(total, {"DynamoDB": dynamodb(record["dynamodb_read_units"], record["dynamodb_write_units"]),
                     "S3 requests": sum(s3_request(call.split(":", 1)[1]) for call in record["aws_calls"]
                                        if call.startswith("s3:"))
                     + sum(s3_request(url.split(":", 1)[1]) for url in record["presigned_urls"])})
        events = sum(call == "sqs:SendMessageBatch" for call in record["aws_calls"])
        if events:
            _add(total, {"Events": events * EVENT_COST})
    return total


def records_cost(records: Iterable[dict], door: str = API_GATEWAY_DOOR, log_days: int = LOG_RETENTION_DAYS) -> float:
    return sum(records_items(records, door, log_days).values())


def fixed_monthly() -> Dict[str, float]:
    """What the stack bills per month whatever the traffic, by item."""
    metrics = len(REQUEST_METRICS) + len(JOB_METRICS) * STACK_JOBS + len(quota.ALERT_ACTIONS)
    return {f"CloudWatch custom metrics ({metrics})": metrics * CUSTOM_METRIC_PER_MONTH,
            f"CloudWatch alarms ({STACK_ALARMS})": STACK_ALARMS * ALARM_PER_MONTH,
            f"Secrets Manager secrets ({STACK_SECRETS})": STACK_SECRETS * SECRET_PER_MONTH,
            f"KMS requests for {len(TABLES)} encrypted tables (at most)":
                len(TABLES) * KMS_REQUESTS_PER_TABLE_MONTH * KMS_PER_REQUEST}


# What one pull and one push of an N-layer image make, as `bench/cost.py` measured them with docker
# 20.10 on 2026-12-08 (N = 1, 5, 20): requests and DynamoDB units as linear fits, S3 requests by
# the client one per layer (pull) and two per layer (push, through the gateway). A pull's N + 1
# blob GETs are served at the edge (chalicelib/access/edge.py), its other requests by the API.
PULL_REQUESTS = (0, 4)          # ping, token, the tag's HEAD and GET
PULL_EDGE_REQUESTS = (1, 1)     # N + 1: the layers and the config
PULL_READ_UNITS = (0, 11.5)
PULL_WRITE_UNITS = (0, 5)
PUSH_REQUESTS = (4, 8)          # 4 N + 8
PUSH_READ_UNITS = (11.5, 25)
PUSH_WRITE_UNITS = (9.47, 20.7)  # transactions: two units per item
MEASURED_LATENCY_MS = 100       # priced per invocation; the local stack answered faster


def _at(fit: tuple, layers: float) -> float:
    return fit[0] * layers + fit[1]


def pull_cost(layers: float, door: str = API_GATEWAY_DOOR, log_days: int = LOG_RETENTION_DAYS) -> float:
    return (_at(PULL_REQUESTS, layers) * sum(api_request(MEASURED_LATENCY_MS, door=door, log_days=log_days).values())
            + _at(PULL_EDGE_REQUESTS, layers) * sum(edge_request(door).values())
            + dynamodb(_at(PULL_READ_UNITS, layers), _at(PULL_WRITE_UNITS, layers)) + (layers + 1) * S3_PER_GET)


def push_cost(layers: float, door: str = API_GATEWAY_DOOR, log_days: int = LOG_RETENTION_DAYS) -> float:
    return (_at(PUSH_REQUESTS, layers) * sum(api_request(MEASURED_LATENCY_MS, door=door, log_days=log_days).values())
            + dynamodb(_at(PUSH_READ_UNITS, layers), _at(PUSH_WRITE_UNITS, layers)) + 2 * (layers + 1) * S3_PER_PUT)


def monthly_estimate(stored_bytes: int, pushes: int, pulls: int, days: float, layers_per_image: float,
                     door: str = API_GATEWAY_DOOR, log_days: int = LOG_RETENTION_DAYS) -> float:
    """A repository's month: S3 storage, plus the period's pushes and pulls scaled to 30 days at
    the measured request counts above. Transfer out is left out: ECR charges it the same; so are
    the registry's fixed monthly items (`fixed_monthly`), which no one repository makes."""
    per_month = 30 / max(days, 1)
    return (stored_bytes / GiB * S3_STORAGE_PER_GB_MONTH
            + per_month * (pulls * pull_cost(layers_per_image, door, log_days)
                           + pushes * push_cost(layers_per_image, door, log_days)))
