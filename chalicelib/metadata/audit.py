"""The audit trail: one event for every decision that matters (authentication, token issue,
manifest push and pull, deletes, tag moves, permission and credential changes, mounts, denials).

A change of state and its event are written in the same DynamoDB transaction (`record_in`), so
neither exists without the other. Reads and denials are recorded on their own (`record`), and a
failure to record them never fails the request: it is logged loudly instead.

A denial of a caller who proved no identity (no valid token, wrong credentials) is written to the
UNAUTHENTICATED partition, never to the namespace it targets (anyone could otherwise write into
any namespace's trail), and at most 10 a minute per source address per container
(Backend.unproven_denials); the next one written says how many were left out ("suppressed").
The request's who and where-from come from a context set once per request by routes/dispatch.py;
the clock, settings and limits from the backend the trail belongs to (Backend.audit).
"""
from __future__ import annotations
import contextlib
import contextvars
import dataclasses
import datetime
import json
import logging
import random
import time
import uuid
from typing import Callable, Iterator, List, Optional, Tuple

from chalicelib.metadata import keys
from chalicelib.metadata.leases import Scan
from chalicelib.metadata.models import AuditEvent
from chalicelib.oci import errors
from chalicelib.oci.errors import RegistryError
from chalicelib.storage import paths

LOG = logging.getLogger("dockless.audit")
# Partitions per namespace and day: spreads one busy namespace's writes.
AUDIT_SHARDS = 4
REGISTRY_NAMESPACE = "_registry"
UNAUTHENTICATED_NAMESPACE = "_unauthenticated"
ALLOWED, DENIED, FAILED = "allowed", "denied", "failed"
# The most events one part of a day's export holds.
EXPORT_PART_EVENTS = 10_000
# The longest period one query of the trail reads (each day is AUDIT_SHARDS partitions).
QUERY_MAX_DAYS = 31


@dataclasses.dataclass
class RequestContext:
    request_id: str
    source_ip: Optional[str]
    user_agent: Optional[str]
    actor: Optional[str] = None
    credential_id: Optional[str] = None
    sequence: int = 0
    # A robot proved by a federated identity: issuer, subject and the CI run's claims, recorded
    # on every event of the request (chalicelib/access/federation.py).
    federated: Optional[dict] = None


_context: contextvars.ContextVar[Optional[RequestContext]] = contextvars.ContextVar("audit", default=None)


def begin(context: RequestContext):
    return _context.set(context)


def end(token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def acting_as(actor: str):
    """The registry's own work (garbage collection, retention), recorded as `actor` with a request id
    of its own, whoever started it."""
    token = begin(RequestContext(request_id=f"{actor}-{uuid.uuid4().hex[:16]}", source_ip=None, user_agent=None,
                                 actor=actor))
    try:
        yield
    finally:
        end(token)


def identify(actor: Optional[str], credential_id: Optional[str], federated: Optional[dict] = None) -> None:
    """Who the request turned out to be (after the token was verified or the credential checked),
    and, for a robot proved by an ID token, the federated identity behind it."""
    context = _context.get()
    if context is not None:
        context.actor, context.credential_id = actor, credential_id
        context.federated = federated if isinstance(federated, dict) else None


def current() -> RequestContext:
    """The request's who and where-from (an empty context outside a request: a job, a test)."""
    return _context.get() or RequestContext(request_id="-", source_ip=None, user_agent=None)


def _namespace(repository: Optional[str]) -> str:
    return keys.namespace_of(repository) if repository else REGISTRY_NAMESPACE


# Who is told of each audited change once it is made (events.delivery.emit, registered by the
# app): called with the backend and the events, after their transaction committed.
_LISTENERS: List[Callable] = []


def tell_changes_to(listener: Callable) -> None:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


class AuditTrail:
    """Writes and reads events with one backend's clock, settings and limits (Backend.audit)."""

    def __init__(self, backend):
        self._backend = backend

    def event(self, action: str, repository: Optional[str] = None, reference: Optional[str] = None,
              outcome: str = ALLOWED, actor: Optional[str] = None, namespace: Optional[str] = None,
              **detail) -> AuditEvent:
        context = current()
        context.sequence += 1
        now = self._backend.clock()
        who = actor or context.actor or "-"
        retention = datetime.timedelta(days=self._backend.settings.audit_retention_days)
        shard = random.randrange(AUDIT_SHARDS)
        if context.federated and who == context.actor:
            detail = dict(detail, federated=context.federated)
        return AuditEvent(
            keys.audit_partition(namespace or _namespace(repository), now.date(), shard),
            keys.event_at(now, context.request_id, context.sequence),
            actor_day=keys.actor_day(who, now.date(), shard), time=now, actor=who, credential_id=context.credential_id,
            source_ip=context.source_ip, user_agent=context.user_agent, action=action, repository=repository,
            reference=reference, outcome=outcome, request_id=context.request_id,
            detail=json.dumps(detail, sort_keys=True) if detail else None,
            expires_at=int((now + retention).timestamp()))

    def record_in(self, txn, action: str, repository: Optional[str] = None, reference: Optional[str] = None,
                  **detail) -> None:
        """Within `txn`: the event of the change `txn` makes (told to the listeners once `txn`
        has committed)."""
        event = self.event(action, repository, reference, **detail)
        txn.save(event)
        if _LISTENERS:
            committed = getattr(txn, "_audited", None)
            if committed is None:
                committed = txn._audited = []
                txn.after(lambda: self._tell(committed))
            committed.append(event)

    def _tell(self, events: List[AuditEvent]) -> None:
        for listener in _LISTENERS:
            try:
                listener(self._backend, events)
            except Exception:  # noqa: BLE001 - the change is made; telling of it is best effort
                LOG.exception("EVENT LOST: %s", ", ".join(e.action for e in events))

    def record(self, action: str, repository: Optional[str] = None, reference: Optional[str] = None,
               outcome: str = ALLOWED, actor: Optional[str] = None, namespace: Optional[str] = None,
               bounded: bool = False, **detail) -> None:
        """A read, a denial or an authentication: best effort, never failing the request. An event
        of no repository goes to `namespace`'s trail, or the registry's. A denial of an unproven
        caller counts against its address's cap, unless its caller bounds it itself (`bounded`:
        one per burst of sign-ins)."""
        context = _context.get()
        if outcome == DENIED and (context is None or context.actor is None):
            if not bounded:
                left_out = self._backend.unproven_denials.admit(context.source_ip if context else None,
                                                                time.monotonic())
                if left_out is None:
                    return
                if left_out:
                    detail["suppressed"] = left_out
            namespace = UNAUTHENTICATED_NAMESPACE
        try:
            event = self.event(action, repository, reference, outcome, actor, namespace, **detail)
            event.save()
        except Exception:  # noqa: BLE001 - losing an event must be loud, not fatal
            LOG.exception("AUDIT EVENT LOST: %s %s %s %s", action, repository, reference, outcome)
            return
        if _LISTENERS and outcome == ALLOWED:
            self._tell([event])

    def export(self, lease, seconds: float) -> dict:
        """Go on exporting, from the lease's cursor, for about `seconds`: each day once it is over,
        oldest first, to S3 as parts of JSON lines (paths.audit_part_key, each part oldest event
        first) and, once all its parts are written, the day's summary (paths.audit_day_key: its
        events and parts). A day is read by a scan of the table a page at a time (the trail keeps
        no index by day alone), so a day of many events takes several runs; a part is written
        before the cursor that goes on after it is saved, and a run ended between the two writes
        the same part again; a day's summary is written before the cursor moves to the next day.
        The first export starts with yesterday. What this run wrote."""
        deadline = time.monotonic() + seconds
        today = self._backend.clock().date()
        cursor = lease.cursor or {"day": (today - datetime.timedelta(days=1)).isoformat(),
                                  "after": None, "part": 1, "events": 0}
        written = {"events": 0, "parts": 0, "days": []}
        while datetime.date.fromisoformat(cursor["day"]) < today:  # each run reads at least one page
            day = datetime.date.fromisoformat(cursor["day"])
            start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.timezone.utc)
            scan = Scan(AuditEvent, cursor["after"], deadline - time.monotonic(),
                        AuditEvent.time.between(start, start + datetime.timedelta(days=1)))
            part: List[AuditEvent] = []
            for event in scan:
                if event.time.date() == day:  # `between` includes the next midnight
                    part.append(event)
                if len(part) == EXPORT_PART_EVENTS:
                    cursor = self._write_part(day, part, cursor, scan.cursor, written)
                    lease.keep(cursor)
                    part = []
            if part:
                cursor = self._write_part(day, part, cursor, scan.cursor, written)
            if scan.finished:
                summary = {"day": day.isoformat(), "events": cursor["events"], "parts": cursor["part"] - 1}
                self._backend.objects.put(paths.audit_day_key(day), json.dumps(summary, sort_keys=True).encode(),
                                          content_type="application/json")
                cursor = {"day": (day + datetime.timedelta(days=1)).isoformat(), "after": None, "part": 1, "events": 0}
                written["days"].append(day.isoformat())
            else:
                cursor = dict(cursor, after=scan.cursor)
            lease.keep(cursor)
            if time.monotonic() >= deadline:
                break
        return written

    def _write_part(self, day: datetime.date, events: List[AuditEvent], cursor: dict, after, written: dict) -> dict:
        """Write the day's next part: the cursor that goes on after it (for the caller to save)."""
        events = sorted(events, key=lambda e: e.at)
        lines = "".join(json.dumps(as_dict(e), sort_keys=True) + "\n" for e in events)
        self._backend.objects.put(paths.audit_part_key(day, cursor["part"]), lines.encode(),
                                  content_type="application/x-ndjson")
        written.update(events=written["events"] + len(events), parts=written["parts"] + 1)
        return dict(cursor, after=after, part=cursor["part"] + 1, events=cursor["events"] + len(events))


def _days(since: datetime.datetime, until: datetime.datetime) -> List[datetime.date]:
    days, day = [], since.date()
    while day <= until.date():
        days.append(day)
        day += datetime.timedelta(days=1)
    return days


def query(namespace: Optional[str], actor: Optional[str], since: datetime.datetime,
          until: datetime.datetime) -> Iterator[AuditEvent]:
    """Events in [since, until], oldest first, for a namespace or an actor (one of them)."""
    low, high = keys.instant(since), keys.events_until(until)
    found: List[AuditEvent] = []
    for day in _days(since, until):
        if actor:
            for shard in (*range(AUDIT_SHARDS), None):  # None: events from before the index was sharded
                found.extend(AuditEvent.by_actor.query(keys.actor_day(actor, day, shard),
                                                       AuditEvent.at.between(low, high)))
        else:
            for shard in range(AUDIT_SHARDS):
                found.extend(AuditEvent.query(keys.audit_partition(namespace, day, shard),
                                              AuditEvent.at.between(low, high)))
    if actor and namespace:
        found = [e for e in found if _namespace(e.repository) == namespace]
    return iter(sorted(found, key=lambda e: e.at))


def as_dict(item: AuditEvent) -> dict:
    return {"time": item.time.isoformat(), "actor": item.actor, "credential_id": item.credential_id,
            "source_ip": item.source_ip, "user_agent": item.user_agent, "action": item.action,
            "repository": item.repository, "reference": item.reference, "outcome": item.outcome,
            "request_id": item.request_id, "detail": json.loads(item.detail) if item.detail else None}


def _time(query: Callable[[str], Optional[str]], name: str, default: datetime.datetime) -> datetime.datetime:
    raw = query(name)
    if not raw:
        return default
    try:
        value = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise RegistryError(errors.ADMIN_INVALID, f"{name} is an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def period(query: Callable[[str], Optional[str]], now: datetime.datetime,
           default_days: int) -> Tuple[datetime.datetime, datetime.datetime]:
    """`since` and `until` of a request that reads the trail, from its query parameters (until:
    now; since: default_days before it), at most QUERY_MAX_DAYS apart."""
    until = _time(query, "until", now)
    since = _time(query, "since", until - datetime.timedelta(days=default_days))
    if until - since > datetime.timedelta(days=QUERY_MAX_DAYS):
        raise RegistryError(errors.ADMIN_INVALID, f"at most {QUERY_MAX_DAYS} days per query")
    return since, until
