"""One structured log record per request or job: the AWS calls it made, what it cost, and its
CloudWatch metrics (embedded metric format, so CloudWatch Logs turns the line into metrics without
a PutMetricData call).

boto3 clients report calls through botocore's `before-parameter-build` event (presigned URLs pass
through it too, flagged as such). pynamodb does not go through boto3: its `pre_dynamodb_send`
signal names the connection, whose botocore client then gets the same hooks, plus `after-call` for
the consumed capacity DynamoDB returns (pynamodb asks for it on every data call). Everything is
appended to the work in progress (a context variable, so concurrent requests in the local stack
stay apart). Calls made outside a request or job (the local stack creating its tables) are not
the app's and are not recorded.

`DOCKLESS_AWS_CALL_LOG` (tests only) appends every recorded call, with the resources it touched,
to a file: the IAM test checks them against the deployed policy.
"""
from __future__ import annotations
import contextvars
import dataclasses
import json
import logging
import threading
import time
from typing import List, Optional, Sequence

from pynamodb import signals

from chalicelib.runtime import retries
from chalicelib.runtime.config import aws_call_log

REQUEST_LOGGER = logging.getLogger("dockless.request")
JOB_LOGGER = logging.getLogger("dockless.jobs")
EVENT_LOGGER = logging.getLogger("dockless.events")
# The loggers of JSON records (one line each, embedded metric format), not of diagnostics.
RECORD_LOGGERS = (REQUEST_LOGGER, JOB_LOGGER, EVENT_LOGGER)
METRICS_NAMESPACE = "dockless"
_work: contextvars.ContextVar[Optional["Work"]] = contextvars.ContextVar("aws_work", default=None)
_call_log_lock = threading.Lock()
TRANSACTION_UNITS_PER_ITEM = 2
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


@dataclasses.dataclass
class Work:
    """What one request or job did in AWS."""
    calls: List[str] = dataclasses.field(default_factory=list)
    presigned: List[str] = dataclasses.field(default_factory=list)
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0

    def summary(self) -> dict:
        return {"aws_calls": self.calls, "presigned_urls": self.presigned,
                "s3_requests": sum(call.startswith("s3:") for call in self.calls),
                "dynamodb_read_units": round(self.dynamodb_read_units, 2),
                "dynamodb_write_units": round(self.dynamodb_write_units, 2)}


def _resources(service: str, operation: str, params: dict) -> list:
    """The resources a call names, as [kind, name, detail] triples for the call log."""
    if service == "dynamodb":
        if "TransactItems" in params:
            return [["table", body["TableName"], kind] for item in params["TransactItems"]
                    for kind, body in item.items()]
        if "RequestItems" in params:
            return [["table", table, None] for table in params["RequestItems"]]
        return [["table", params.get("TableName"), params.get("IndexName")]]
    if service == "s3":
        keys = ([entry["Key"] for entry in params["Delete"]["Objects"]] if "Delete" in params
                else [params.get("Key", params.get("Prefix"))])
        return [["bucket", params.get("Bucket"), key] for key in keys]
    if service == "sqs" and "QueueUrl" in params:
        return [["queue", params["QueueUrl"].rsplit("/", 1)[-1], None]]
    if service == "events" and "Entries" in params:
        return [["event-bus", bus, None] for bus in sorted({e.get("EventBusName", "default") for e in params["Entries"]})]
    for key in ("SecretId", "Name"):
        if key in params:
            return [[service, params[key], None]]
    return []


def _on_parameters(params, model, context=None, **_):
    work = _work.get()
    if work is None:
        return
    service, operation = model.service_model.service_name, model.name
    if context is not None and "TransactItems" in params:
        context["dockless_items"] = len(params["TransactItems"])
    presigned = bool(context and context.get("is_presign_request"))
    (work.presigned if presigned else work.calls).append(f"{service}:{operation}")
    call_log = aws_call_log()
    if call_log:
        line = json.dumps({"service": service, "operation": operation, "presigned": presigned,
                           "resources": _resources(service, operation, params)})
        with _call_log_lock, open(call_log, "a") as log:
            log.write(line + "\n")


def _on_dynamodb_answer(parsed, model, context=None, **_):
    work = _work.get()
    if work is None or not isinstance(parsed, dict):
        return
    consumed = parsed.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    units = sum(entry.get("CapacityUnits", 0) for entry in entries)
    if not entries and model.name == "TransactWriteItems":
        # DynamoDB reports a transaction's units; the moto server does not. DynamoDB's rule is two
        # write units per item of up to 1 KB, which is what our items are.
        units = TRANSACTION_UNITS_PER_ITEM * (context or {}).get("dockless_items", 0)
    if model.name in DYNAMODB_READS:
        work.dynamodb_read_units += units
    else:
        work.dynamodb_write_units += units


def watch_client(client) -> None:
    """Every AWS client the registry makes passes here once: record every call and presigned URL
    it makes, and retry a DynamoDB write that only conflicted with another (runtime/retries.py)."""
    if getattr(client, "_dockless_watched", False):
        return
    client._dockless_watched = True
    client.meta.events.register("before-parameter-build.*.*", _on_parameters)
    client.meta.events.register("after-call.dynamodb.*", _on_dynamodb_answer)
    client.meta.events.register("needs-retry.dynamodb", retries.on_needs_retry)


def _on_pynamodb_send(sender, operation_name, table_name, req_uuid):
    watch_client(sender.client)


signals.pre_dynamodb_send.connect(_on_pynamodb_send)


def emit_to_stdout() -> None:
    """In Lambda: each record is one bare JSON line on stdout, which CloudWatch Logs stores and
    reads as embedded metric format (the runtime's own log format would prefix it)."""
    import sys
    for logger in RECORD_LOGGERS:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _metrics(dimension: Optional[str], names: Sequence[tuple]) -> dict:
    """The embedded metric format's `_aws` member for the given (name, unit) pairs, whose values
    are fields of the same record: per value of `dimension`, or (None) one series for the registry."""
    return {"Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE, "Dimensions": [[dimension] if dimension else []],
                                   "Metrics": [{"Name": name, "Unit": unit} for name, unit in names]}]}


def record_line(fields: dict) -> str:
    """A record as its one log line: compact JSON (logs are billed by the byte), keys sorted."""
    return json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))


def emit_metric(name: str, dimension: str, value: str, count: int = 1, **fields) -> dict:
    """One event worth an alarm (a namespace reaching its quota) as its own record: a count of
    `name` under `dimension`=`value`, with the event's facts beside it."""
    record = {**fields, dimension: value, name: count, "_aws": _metrics(dimension, [(name, "Count")])}
    EVENT_LOGGER.info(record_line(record))
    return record


# The request record's metrics: one series each for the whole registry, not one per route. Each
# custom metric is billed monthly (81 routes x 5 metrics came to ~$120 a month); a route's numbers
# stay in its records, for CloudWatch Logs Insights (docs/costs.md).
REQUEST_METRICS = (("Requests", "Count"), ("ServerErrors", "Count"), ("Latency", "Milliseconds"),
                   ("DynamoDBUnits", "Count"), ("S3Requests", "Count"))
# The job record's metric, one series per job.
JOB_METRICS = (("JobFailures", "Count"),)


class _Record:
    """What request and job records share: the work in progress, its latency, one JSON line."""
    fields: dict

    def _begin(self) -> None:
        self._started = time.monotonic()
        self._work = Work()
        self._token = _work.set(self._work)

    def _end(self) -> Work:
        _work.reset(self._token)
        self.fields.update(latency_ms=round((time.monotonic() - self._started) * 1000, 1), **self._work.summary())
        return self._work

    def _emit(self, logger: logging.Logger, dimension: Optional[str], metrics: Sequence[tuple]) -> dict:
        self.fields["_aws"] = _metrics(dimension, metrics)
        logger.info(record_line(self.fields))
        return self.fields


class RequestRecord(_Record):
    """Collects one request's facts and emits them as one JSON log line with its metrics."""

    def __init__(self, request_id: str, method: str, path: str, route: str, query: dict,
                 body_bytes: int):
        self.fields = {"request_id": request_id, "method": method, "path": path, "route": route,
                       "query": query, "body_bytes": body_bytes}
        self._begin()

    def finish(self, status: int, invocations: int = 1, **extra) -> dict:
        """`invocations`: 0 for a request the edge answered (`served_by`: "edge") without the function."""
        work = self._end()
        self.fields.update(status=status, invocations=invocations, **extra,
                           Route=f"{self.fields['method']} {self.fields['route']}",
                           Requests=1, ServerErrors=int(status >= 500), Latency=self.fields["latency_ms"],
                           DynamoDBUnits=work.dynamodb_read_units + work.dynamodb_write_units,
                           S3Requests=self.fields["s3_requests"])
        return self._emit(REQUEST_LOGGER, None, REQUEST_METRICS)


class JobRecord(_Record):
    """The same record for a scheduled job: `with JobRecord(name) as fields: fields[...] = ...`."""

    def __init__(self, name: str):
        self.fields = {"job": name}

    def __enter__(self) -> dict:
        self._begin()
        return self.fields

    def __exit__(self, kind, *_):
        self._end()
        self.fields.update(failed=kind is not None, Job=self.fields["job"], JobFailures=int(kind is not None))
        self._emit(JOB_LOGGER, "Job", JOB_METRICS)
        return False


class StepRecord(_Record):
    """The record of one step of an event's way (chalicelib/events/delivery.py: a dispatch, a
    delivery; `emitted` False for the local stack's pumping of the queues): its AWS calls in the
    call log and, when emitted, one JSON line without a metric (the dead-letter queue's alarm
    stands for failed deliveries)."""

    def __init__(self, step: str, emitted: bool = True, **fields):
        self.fields, self._emitted = {"step": step, **fields}, emitted

    def __enter__(self) -> dict:
        self._begin()
        return self.fields

    def __exit__(self, kind, *_):
        self._end()
        if self._emitted:
            self.fields["failed"] = kind is not None
            JOB_LOGGER.info(record_line(self.fields))
        return False
