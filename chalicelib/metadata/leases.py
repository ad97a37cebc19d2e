"""One run of a job at a time, and each run going on where the last one stopped.

A run takes its job's lease (JobState, one item per job) with a conditional write that holds only
when no run holds it, or the holder's lease has run out; a run that cannot take it does nothing.
The lease lasts longer than the run can (its Lambda's timeout and a margin), so a run that Lambda
ends at its timeout, which never gives the lease back, is followed only after it has ended.

A run that works through a table does so a budget of time at a time: `Scan` reads from the cursor
the last run saved, and the run saves the cursor (`Lease.keep`) after what it has finished, so
that a run ended at any moment repeats at most what it had not saved.
"""
from __future__ import annotations
import json
import time
import uuid
from typing import Iterator, Optional

from pynamodb.exceptions import UpdateError

from chalicelib.metadata.models import JobState

# Beyond the run's own limit: for clocks that differ a little between the hosts that run the job.
LEASE_MARGIN_SECONDS = 60


class LeaseLost(Exception):
    """Another run holds the job's lease now (ours ran out): this run must stop writing."""


def _refused(error: UpdateError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


class Lease:
    """A run's hold on its job: its cursor, as the last run left it."""

    def __init__(self, job: str, holder: str, seconds: float, clock, cursor: Optional[dict]):
        self.job, self.holder, self._seconds, self._clock = job, holder, seconds, clock
        self.cursor = cursor

    @classmethod
    def take(cls, job: str, run_seconds: float, clock) -> Optional["Lease"]:
        """The job's lease for a run that lasts at most `run_seconds` (by `clock`, the backend's),
        or None while another run holds it."""
        seconds = run_seconds + LEASE_MARGIN_SECONDS
        holder = uuid.uuid4().hex
        now = clock().timestamp()
        item = JobState(job)
        try:
            item.update(actions=[JobState.holder.set(holder), JobState.lease_until.set(now + seconds)],
                        condition=JobState.lease_until.does_not_exist() | (JobState.lease_until < now))
        except UpdateError as error:
            if _refused(error):
                return None
            raise
        return cls(job, holder, seconds, clock, json.loads(item.cursor) if item.cursor else None)

    def _write(self, *actions) -> None:
        try:
            JobState(self.job).update(actions=list(actions), condition=JobState.holder == self.holder)
        except UpdateError as error:
            if _refused(error):
                raise LeaseLost(self.job) from None
            raise

    def keep(self, cursor: Optional[dict]) -> None:
        """Save where the next run goes on (None: from the start), and hold the lease a run longer."""
        self.cursor = cursor
        self._write(JobState.cursor.set(json.dumps(cursor, sort_keys=True)) if cursor is not None
                    else JobState.cursor.remove(),
                    JobState.lease_until.set(self._clock().timestamp() + self._seconds))

    def give_back(self) -> None:
        """The run has ended: the next one may start (its cursor stays)."""
        self._write(JobState.holder.remove(), JobState.lease_until.remove())


class Scan:
    """The items of `model`'s table matching `condition`, from where `cursor` (a scan's key, or
    None for the start) left off, read for about `seconds` (by the process's monotonic clock).
    While an item is given, `cursor` goes on after it; once the reading stops, `finished` says whether
    the table's end was reached (and `cursor` is then None) or the time ran out."""

    def __init__(self, model, cursor: Optional[dict], seconds: float, condition=None):
        self._model, self._condition = model, condition
        self._deadline = time.monotonic() + seconds
        self.cursor, self.finished = cursor, False

    def __iter__(self) -> Iterator:
        pages = self._model.scan(self._condition, last_evaluated_key=self.cursor, page_size=PAGE_ITEMS).page_iter
        for page in pages:
            for raw in page.get("Items", []):
                item = self._model.from_raw_data(raw)
                self.cursor = _key_of(item)
                yield item
                if self._out_of_time():
                    return
            self.cursor = pages.last_evaluated_key
            if self.cursor is None:
                self.finished = True
                return
            if self._out_of_time():
                return

    def _out_of_time(self) -> bool:
        return time.monotonic() >= self._deadline


PAGE_ITEMS = 100


def _key_of(item) -> dict:
    """The ExclusiveStartKey that goes on after `item` (its table's key attributes, serialized)."""
    key = {}
    for attribute in (item._hash_key_attribute(), item._range_key_attribute()):
        if attribute is not None:
            key[attribute.attr_name] = {attribute.attr_type: attribute.serialize(getattr(item, attribute.attr_name))}
    return key
