"""Scheduled jobs: deployed as Chalice scheduled events, run on a timer by the local stack. Each
takes the backend it runs on (the process's, `backend()`, when scheduled), runs alone (its lease,
chalicelib/metadata/leases.py), and one that works through a table goes on where the last run stopped."""
from __future__ import annotations
import contextlib
from typing import Iterator, Optional

from chalicelib.backend import Backend, backend
from chalicelib.events import delivery
from chalicelib.lifecycle.gc import GarbageCollector
from chalicelib.lifecycle.retention import RetentionService
from chalicelib.metadata.leases import Lease
from chalicelib.oci import errors
from chalicelib.oci.errors import RegistryError
from chalicelib.registry.blobs import BlobService
from chalicelib.runtime.observe import JobRecord

# How often expired upload sessions and their staged chunks are removed.
CLEAN_UPLOADS_EVERY_MINUTES = 60
# How often direct multipart blobs that S3 proved only part by part are hashed as a whole.
VERIFY_BLOBS_EVERY_MINUTES = 15
# Garbage collection: each run dooms what nothing needs and deletes what a run at least the grace
# period (DOCKLESS_GC_GRACE_SECONDS, an hour) before doomed and nothing needs still.
COLLECT_GARBAGE_EVERY_MINUTES = 60
# The audit export goes on every quarter hour from where it stopped, a day at a time, once the day is over.
EXPORT_AUDIT_EVERY_MINUTES = 15
# The advisory feeds a team configured are fetched once a day (chalicelib/scanning/feeds.py).
IMPORT_ADVISORIES_EVERY_MINUTES = 24 * 60
# Each job's Lambda timeout: a run lasts at most this long (its lease a little longer). The
# verification job hashes multipart blobs of many GiB (DESIGN.md §3), garbage collection reads every
# repository: Lambda's maximum. The API's own (an admin's garbage collection run) is Chalice's setting.
LONG_RUN_SECONDS = 900
RUN_SECONDS = 30
API_RUN_SECONDS = RUN_SECONDS
# How much of its timeout a run goes on starting new work for (the last piece may take the rest).
WORK_SHARE = 2 / 3


@contextlib.contextmanager
def alone(on: Backend, job: str, run_seconds: float) -> Iterator[Optional[Lease]]:
    """The job's lease for this run, given back when it ends, or None while another run holds it
    (the run then does nothing)."""
    lease = Lease.take(job, run_seconds, on.clock)
    try:
        yield lease
    finally:
        if lease is not None:
            lease.give_back()


def clean_expired_uploads(on: Backend) -> int:
    with JobRecord("clean_expired_uploads") as record, alone(on, "clean_expired_uploads", RUN_SECONDS) as lease:
        record["removed"] = BlobService(on).clean_expired_uploads() if lease else 0
        record["skipped"] = lease is None
    return record["removed"]


def verify_unproven_blobs(on: Backend) -> int:
    with JobRecord("verify_unproven_blobs") as record, \
            alone(on, "verify_unproven_blobs", LONG_RUN_SECONDS) as lease:
        record["proven"] = BlobService(on).verify_unproven_blobs(lease, LONG_RUN_SECONDS * WORK_SHARE) if lease else 0
        record["skipped"] = lease is None
    return record["proven"]


def collect_garbage(on: Backend, dry_run: bool = False, namespace: Optional[str] = None,
                    run_seconds: float = LONG_RUN_SECONDS) -> dict:
    """Retention rules first (chalicelib/lifecycle/retention.py), expired upload sessions, then one garbage
    collection run over every repository and the bucket, or one namespace's repositories
    (chalicelib/lifecycle/gc.py). Its report and
    job record carry what it removed and what it cost; "expired" lists what retention expired.
    A dry run changes nothing and runs beside any other; a real one only alone (JOB_RUNNING)."""
    with contextlib.nullcontext(True) if dry_run else alone(on, "collect_garbage", run_seconds) as lease:
        if not lease:
            raise RegistryError(errors.JOB_RUNNING, "garbage collection is running: try again once it has ended")
        expired = [] if dry_run else RetentionService(on).apply(namespace)
        # Abandoned upload sessions go first, so that their staged objects are unreferenced this run.
        abandoned = 0 if dry_run or namespace else BlobService(on).clean_expired_uploads()
        report = GarbageCollector(on, dry_run=dry_run).run(namespace)
    report.update(expired=[expiry.as_dict() for expiry in expired], uploads_removed=abandoned)
    return report


def scheduled_collect_garbage(on: Backend) -> Optional[dict]:
    """The hourly run: none while an admin's is under way (the next hour's goes on)."""
    try:
        return collect_garbage(on)
    except RegistryError as running:
        if running.error is not errors.JOB_RUNNING:
            raise
        return None


def export_audit(on: Backend) -> int:
    """Go on with the audit export (AuditTrail.export): the events it wrote this run."""
    with JobRecord("export_audit") as record, alone(on, "export_audit", RUN_SECONDS) as lease:
        record.update(on.audit.export(lease, RUN_SECONDS * WORK_SHARE) if lease else {"events": 0})
        record["skipped"] = lease is None
    return record["events"]


def import_advisories(on: Backend) -> dict:
    """Fetch the advisory feeds (chalicelib/scanning/feeds.py) and import what changed."""
    with JobRecord("import_advisories") as record, alone(on, "import_advisories", LONG_RUN_SECONDS) as lease:
        if lease and on.settings.advisory_feeds:
            from chalicelib.scanning.service import ScanService
            record.update(ScanService(on).import_feeds(lease))
        record["skipped"] = lease is None
    return record


# Each job, how often it runs, and its Lambda timeout.
JOBS = {
    "clean_expired_uploads": (clean_expired_uploads, CLEAN_UPLOADS_EVERY_MINUTES, RUN_SECONDS),
    "verify_unproven_blobs": (verify_unproven_blobs, VERIFY_BLOBS_EVERY_MINUTES, LONG_RUN_SECONDS),
    "export_audit": (export_audit, EXPORT_AUDIT_EVERY_MINUTES, RUN_SECONDS),
    "collect_garbage": (scheduled_collect_garbage, COLLECT_GARBAGE_EVERY_MINUTES, LONG_RUN_SECONDS),
    "import_advisories": (import_advisories, IMPORT_ADVISORIES_EVERY_MINUTES, LONG_RUN_SECONDS),
}


def scan_records(on: Backend, records) -> None:
    """The scans queue's consumer (chalicelib/scanning), imported only by the function that scans."""
    from chalicelib.scanning import service
    service.on_scan_records(on, records, LONG_RUN_SECONDS * WORK_SHARE)


# The queues' consumers (chalicelib/events/delivery.py): function name -> (the queue's name
# suffix, its handler). The stack names each queue dockless-<stage>-<suffix> and points the
# function's event source at it (infra/stack.py); the name given to Chalice here is a placeholder.
QUEUE_CONSUMERS = {
    "dispatch_events": ("events.fifo", delivery.on_event_records),
    "deliver_webhooks": ("deliveries.fifo", delivery.on_delivery_records),
    # A scan streams every layer of an image (chalicelib/scanning): Lambda's longest run.
    "scan_images": ("scans", lambda on, records: scan_records(on, records)),
}
QUEUE_CONSUMER_SECONDS = 60
# Each consumer's Lambda timeout, where it is not QUEUE_CONSUMER_SECONDS.
QUEUE_CONSUMER_TIMEOUTS = {"scan_images": LONG_RUN_SECONDS}


def register_jobs(app) -> dict:
    """Each job on its schedule and each queue's consumer, as Chalice functions; the handlers by
    name, which app.py must hold as its own names (Lambda calls `app.<name>`)."""
    from chalice import Rate
    handlers = {}

    def named(name, run):
        run.__name__ = run.__qualname__ = name  # Chalice's handler is app.<the function's name>
        return run
    for name, (job, minutes, _) in JOBS.items():
        handlers[name] = app.schedule(Rate(minutes, unit=Rate.MINUTES), name=name)(
            named(name, lambda event, job=job: job(backend())))
    for name, (suffix, consume) in QUEUE_CONSUMERS.items():
        handlers[name] = app.on_sqs_message(queue=f"dockless-{suffix}", batch_size=1, name=name)(
            named(name, lambda event, consume=consume: consume(backend(), list(event))))
    return handlers
