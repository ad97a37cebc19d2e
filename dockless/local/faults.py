"""Faults the local stack's AWS injects, as AWS answers them, so that what a busy account does to
the registry shows here: `dockless serve --faults dynamodb.TransactionConflict=0.2,s3.SlowDown=0.05`.

Each fault is drawn per request to the internal door (the registry's own calls), at its rate:

    dynamodb.TransactionConflict          a write another transaction holds: a transaction is
                                          cancelled (TransactionCanceledException, one reason per
                                          item, one of them TransactionConflict), a single write
                                          refused (TransactionConflictException); reads never
    dynamodb.ProvisionedThroughputExceeded  any DynamoDB call, 400 as DynamoDB answers it
    dynamodb.Throttling                   any DynamoDB call, 400 ThrottlingException
    s3.SlowDown                           any S3 call, 503 SlowDown

The public S3 door (presigned URLs, which clients follow) is left alone: the faults are the
registry's to absorb (runtime/retries.py), not the clients'.
"""
from __future__ import annotations
import json
import logging
import random
import threading
import uuid
from typing import Dict, List, Optional, Tuple

KINDS = ("dynamodb.TransactionConflict", "dynamodb.ProvisionedThroughputExceeded", "dynamodb.Throttling",
         "s3.SlowDown")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
Answer = Tuple[int, List[Tuple[str, str]], bytes]
LOG = logging.getLogger("dockless.local.faults")


class Faults:
    def __init__(self, rates: Dict[str, float], seed: Optional[int] = None):
        self.rates = dict(rates)
        self.armed = False  # from arm() on: the stack's own setup comes first
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Dict[str, int] = {kind: 0 for kind in rates}

    @classmethod
    def parse(cls, text: Optional[str], seed: Optional[int] = None) -> Optional["Faults"]:
        """`kind=rate,…` (rates between 0 and 1), or None for none; ValueError naming what is wrong."""
        if not text:
            return None
        rates = {}
        for part in text.split(","):
            kind, equals, rate = part.strip().partition("=")
            if kind not in KINDS:
                raise ValueError(f"unknown fault {kind!r}: one of {', '.join(KINDS)}")
            try:
                rates[kind] = float(rate) if equals else 1.0
            except ValueError:
                raise ValueError(f"{kind}: the rate is a number between 0 and 1, not {rate!r}") from None
            if not 0 <= rates[kind] <= 1:
                raise ValueError(f"{kind}: the rate is a number between 0 and 1, not {rate!r}")
        return cls(rates, seed)

    def arm(self) -> None:
        self.armed = True

    def _drawn(self, kind: str) -> bool:
        with self._lock:
            if self.armed and kind in self.rates and self._random.random() < self.rates[kind]:
                self.injected[kind] += 1
                LOG.info("fault injected: %s", kind)
                return True
            return False

    def answer(self, service: str, target: str, body: bytes) -> Optional[Answer]:
        """The error AWS would answer instead, for a request of `service` (`target`: DynamoDB's
        X-Amz-Target operation), or None to let it through."""
        if service == "s3":
            return _s3_slow_down() if self._drawn("s3.SlowDown") else None
        if service != "dynamodb":
            return None
        operation = target.rpartition(".")[2]
        if operation in ("TransactWriteItems", *DYNAMODB_WRITES) and self._drawn("dynamodb.TransactionConflict"):
            if operation == "TransactWriteItems":
                return _transaction_cancelled(len(json.loads(body or b"{}").get("TransactItems") or [None]),
                                              self._random)
            return _dynamodb_error("com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                                   "Transaction is ongoing for the item")
        if self._drawn("dynamodb.ProvisionedThroughputExceeded"):
            return _dynamodb_error("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                                   "The level of configured provisioned throughput for the table was exceeded. "
                                   "Consider increasing your provisioning level with the UpdateTable API.")
        if self._drawn("dynamodb.Throttling"):
            return _dynamodb_error("com.amazon.coral.availability#ThrottlingException",
                                   "Rate of requests exceeds the allowed throughput.")
        return None


def _dynamodb_error(kind: str, message: str, **more) -> Answer:
    body = json.dumps({"__type": kind, "message": message, **more}).encode()
    return 400, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", uuid.uuid4().hex),
                 ("Content-Length", str(len(body)))], body


def _transaction_cancelled(items: int, chooser: random.Random) -> Answer:
    held = chooser.randrange(items)
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if number == held
               else {"Code": "None"} for number in range(items)]
    message = ("Transaction cancelled, please refer cancellation reasons for specific reasons ["
               + ", ".join(reason["Code"] for reason in reasons) + "]")
    return _dynamodb_error("com.amazonaws.dynamodb.v20120810#TransactionCanceledException", message,
                           CancellationReasons=reasons)


def _s3_slow_down() -> Answer:
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
    return 503, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
