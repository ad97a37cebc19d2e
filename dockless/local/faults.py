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
    dynamodb.Contention                   not drawn: what DynamoDB does when writes overlap. A
                                          transaction naming an item another write in progress
                                          holds is cancelled (reason TransactionConflict at that
                                          item), as is a TransactGetItems; a single write to an
                                          item a transaction in progress holds is refused
                                          (TransactionConflictException). A transaction holds
                                          its items while carried out and for 20 ms after (what
                                          DynamoDB's commit takes; the local one's is instant and
                                          one request at a time). The rate is the share of such
                                          overlaps answered so (1 if given without one).

The public S3 door (presigned URLs, which clients follow) is left alone: the faults are the
registry's to absorb (runtime/retries.py), not the clients'.
"""
from __future__ import annotations
import collections
import json
import logging
import random
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Deque, Dict, Iterator, List, Optional, Tuple

KINDS = ("dynamodb.TransactionConflict", "dynamodb.ProvisionedThroughputExceeded", "dynamodb.Throttling",
         "s3.SlowDown", "dynamodb.Contention")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
Answer = Tuple[int, List[Tuple[str, str]], bytes]
LOG = logging.getLogger("dockless.local.faults")
# How long a DynamoDB transaction holds its items: about its latency (tens of milliseconds).
TRANSACTION_HOLD_SECONDS = 0.02


class Faults:
    def __init__(self, rates: Dict[str, float], seed: Optional[int] = None):
        self.rates = dict(rates)
        self.armed = False  # from arm() on: the stack's own setup comes first
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Dict[str, int] = {kind: 0 for kind in rates}
        self._key_names: Dict[str, List[str]] = {}  # table -> its key's attribute names (CreateTable)
        # item -> the writes holding it: [a transaction?, until (None: in progress)]
        self._held: Dict[tuple, List[list]] = {}
        self._ending: Deque[tuple] = collections.deque()  # (until, items, hold), in the order they end
        self.transaction_hold_seconds = TRANSACTION_HOLD_SECONDS

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

    @contextmanager
    def holding(self, target: str, body: bytes) -> Iterator[Optional[Answer]]:
        """Around one DynamoDB request as it is carried out: the conflict DynamoDB would answer
        because a write holds an item it names, or None while the request holds its items (writes
        only; a transaction until TRANSACTION_HOLD_SECONDS after its answer, as DynamoDB's take
        that long to commit where the local one commits at once)."""
        if "dynamodb.Contention" not in self.rates:
            yield None
            return
        operation = target.rpartition(".")[2]
        request = json.loads(body or b"{}")
        if operation == "CreateTable":
            self._key_names[request.get("TableName", "")] = [k["AttributeName"] for k in request.get("KeySchema", ())]
        items = self._items(operation, request)
        transaction = operation.startswith("Transact")
        writes = operation != "TransactGetItems"
        with self._lock:
            now = time.monotonic()
            self._forget_holds(now)
            holders = {item: [h for h in self._held.get(item, ()) if h[1] is None or h[1] > now] for item in items}
            if not self.armed:
                held = []
            elif transaction:
                held = [number for number, item in enumerate(items) if holders[item]]
            else:
                held = [0] if items and any(h[0] for h in holders[items[0]]) else []
            conflict = bool(held) and self._random.random() < self.rates["dynamodb.Contention"]
            if conflict:
                self.injected["dynamodb.Contention"] += 1
            mine = [transaction, None]
            for item in items if writes and not conflict else ():
                self._held[item] = holders[item] + [mine]
        if conflict:
            LOG.info("fault injected: dynamodb.Contention")
            yield _transaction_cancelled(len(items), held) if transaction else _single_write_conflict()
            return
        try:
            yield None
        finally:
            with self._lock:
                mine[1] = time.monotonic() + (self.transaction_hold_seconds if transaction else 0)
                if writes:
                    self._ending.append((mine[1], items, mine))

    def _forget_holds(self, now: float) -> None:
        """Drop the holds that have ended (oldest first), so a long-running stack keeps only the
        items held now."""
        while self._ending and self._ending[0][0] <= now:
            _, items, hold = self._ending.popleft()
            for item in items:
                holders = self._held.get(item, [])
                if hold in holders:
                    holders.remove(hold)
                if not holders:
                    self._held.pop(item, None)

    def _items(self, operation: str, request: dict) -> List[tuple]:
        """The items a write (or a transaction's read) names, as (table, key)."""
        def item(table: str, key: Optional[dict] = None, whole: Optional[dict] = None) -> tuple:
            if key is None:
                key = {name: (whole or {}).get(name) for name in self._key_names.get(table, ())}
            return table, json.dumps(key, sort_keys=True)

        if operation in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for entry in request.get("TransactItems") or ():
                (part,) = entry.values()
                found.append(item(part.get("TableName", ""), part.get("Key"), part.get("Item")))
            return found
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [item(request.get("TableName", ""), request.get("Key"), request.get("Item"))]
        return []

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
                items = len(json.loads(body or b"{}").get("TransactItems") or [None])
                return _transaction_cancelled(items, [self._random.randrange(items)])
            return _single_write_conflict()
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


def _single_write_conflict() -> Answer:
    return _dynamodb_error("com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                           "Transaction is ongoing for the item")


def _transaction_cancelled(items: int, held: List[int]) -> Answer:
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if number in held
               else {"Code": "None"} for number in range(items)]
    message = ("Transaction cancelled, please refer cancellation reasons for specific reasons ["
               + ", ".join(reason["Code"] for reason in reasons) + "]")
    return _dynamodb_error("com.amazonaws.dynamodb.v20120810#TransactionCanceledException", message,
                           CancellationReasons=reasons)


def _s3_slow_down() -> Answer:
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
    return 503, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
