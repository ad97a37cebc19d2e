"""Scheduled jobs: deployed as Chalice scheduled events, run on a timer by the local stack. Each
takes the backend it runs on (the process's, `backend()`, when scheduled)."""
from __future__ import annotations
import datetime
from typing import Optional

from chalicelib.backend import Backend, backend
from chalicelib.lifecycle.gc import GarbageCollector
from chalicelib.lifecycle.retention import RetentionService
from chalicelib.registry.blobs import BlobService
from chalicelib.runtime.observe import JobRecord

# How often expired upload sessions and their staged chunks are removed.
CLEAN_UPLOADS_EVERY_MINUTES = 60
# How often direct multipart blobs that S3 proved only part by part are hashed as a whole.
VERIFY_BLOBS_EVERY_MINUTES = 15
# Garbage collection: each run dooms what nothing needs and deletes what a run at least the grace
# period (DOCKLESS_GC_GRACE_SECONDS, an hour) before doomed and nothing needs still.
COLLECT_GARBAGE_EVERY_MINUTES = 60
# The audit export writes yesterday's events once a day.
EXPORT_AUDIT_EVERY_MINUTES = 24 * 60


def clean_expired_uploads(on: Backend) -> int:
    with JobRecord("clean_expired_uploads") as record:
        record["removed"] = BlobService(on).clean_expired_uploads()
    return record["removed"]


def verify_unproven_blobs(on: Backend) -> int:
    with JobRecord("verify_unproven_blobs") as record:
        record["proven"] = BlobService(on).verify_unproven_blobs()
    return record["proven"]


def collect_garbage(on: Backend, dry_run: bool = False, namespace: Optional[str] = None) -> dict:
    """Retention rules first (chalicelib/lifecycle/retention.py), expired upload sessions, then one garbage
    collection run over every repository and the bucket, or one namespace's repositories
    (chalicelib/lifecycle/gc.py). Its report and
    job record carry what it removed and what it cost; "expired" lists what retention expired."""
    expired = [] if dry_run else RetentionService(on).apply(namespace)
    # Abandoned upload sessions go first, so that their staged objects are unreferenced this run.
    abandoned = 0 if dry_run or namespace else BlobService(on).clean_expired_uploads()
    report = GarbageCollector(on, dry_run=dry_run).run(namespace)
    report.update(expired=[expiry.as_dict() for expiry in expired], uploads_removed=abandoned)
    return report


def export_audit(on: Backend, day: datetime.date = None) -> int:
    """Write one day's audit events (yesterday by default) to S3 as JSON lines, oldest first."""
    day = day or (on.clock() - datetime.timedelta(days=1)).date()
    with JobRecord("export_audit") as record:
        record["day"] = day.isoformat()
        record["events"] = on.audit.export_day(day)
    return record["events"]


JOBS = {
    "clean_expired_uploads": (clean_expired_uploads, CLEAN_UPLOADS_EVERY_MINUTES),
    "verify_unproven_blobs": (verify_unproven_blobs, VERIFY_BLOBS_EVERY_MINUTES),
    "export_audit": (export_audit, EXPORT_AUDIT_EVERY_MINUTES),
    "collect_garbage": (collect_garbage, COLLECT_GARBAGE_EVERY_MINUTES),
}


def register_jobs(app) -> None:
    from chalice import Rate
    for name, (job, minutes) in JOBS.items():
        app.schedule(Rate(minutes, unit=Rate.MINUTES), name=name)(lambda event, job=job: job(backend()))
