"""One structured log record per request, with the AWS calls the request made.

boto3 clients report calls through botocore's `before-call` event; pynamodb does not go through
boto3, so its `pre_dynamodb_send` signal reports DynamoDB calls. Both append to the list of the
request in progress (a context variable, so concurrent requests in the local stack stay apart).
"""
import contextvars
import json
import logging
import time
from typing import List, Optional

from pynamodb import signals

REQUEST_LOGGER = logging.getLogger("dockless.request")
_calls: contextvars.ContextVar[Optional[List[str]]] = contextvars.ContextVar("aws_calls", default=None)


def record_call(call: str) -> None:
    calls = _calls.get()
    if calls is not None:
        calls.append(call)


def _on_boto_call(model, **_):
    record_call(f"{model.service_model.service_name}:{model.name}")


def _on_pynamodb_send(sender, operation_name, table_name, req_uuid):
    record_call(f"dynamodb:{operation_name}")


signals.pre_dynamodb_send.connect(_on_pynamodb_send)


def watch_client(client) -> None:
    """Record every call the given boto3 client makes."""
    client.meta.events.register("before-call.*.*", _on_boto_call)


class RequestRecord:
    """Collects one request's facts and emits them as one JSON log line."""

    def __init__(self, request_id: str, method: str, path: str, route: str, query: dict,
                 body_bytes: int):
        self.fields = {"request_id": request_id, "method": method, "path": path, "route": route,
                       "query": query, "body_bytes": body_bytes}
        self._started = time.monotonic()
        self._calls: List[str] = []
        self._token = _calls.set(self._calls)

    def finish(self, status: int, **extra) -> dict:
        _calls.reset(self._token)
        self.fields.update(status=status, latency_ms=round((time.monotonic() - self._started) * 1000, 1),
                           aws_calls=self._calls, **extra)
        REQUEST_LOGGER.info(json.dumps(self.fields, sort_keys=True))
        return self.fields
