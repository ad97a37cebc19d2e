"""Scheduled jobs: deployed as Chalice scheduled events, run on a timer by the local stack."""
import datetime
import json
import logging

from chalicelib.blobs import BlobService
from chalicelib.services import services

LOG = logging.getLogger("dockless.jobs")
# How often expired upload sessions and their staged chunks are removed.
CLEAN_UPLOADS_EVERY_MINUTES = 60
# How often direct multipart blobs that S3 proved only part by part are hashed as a whole.
VERIFY_BLOBS_EVERY_MINUTES = 15
# The audit export writes yesterday's events once a day.
EXPORT_AUDIT_EVERY_MINUTES = 24 * 60


def clean_expired_uploads() -> int:
    removed = BlobService(services()).clean_expired_uploads()
    LOG.info(json.dumps({"job": "clean_expired_uploads", "removed": removed}))
    return removed


def verify_unproven_blobs() -> int:
    proven = BlobService(services()).verify_unproven_blobs()
    LOG.info(json.dumps({"job": "verify_unproven_blobs", "proven": proven}))
    return proven


def export_audit(day: datetime.date = None) -> int:
    """Write one day's audit events (yesterday by default) to S3 as JSON lines, oldest first."""
    from chalicelib import audit
    day = day or (services().clock() - datetime.timedelta(days=1)).date()
    count = audit.export_day(day)
    LOG.info(json.dumps({"job": "export_audit", "day": day.isoformat(), "events": count}))
    return count


JOBS = {
    "clean_expired_uploads": (clean_expired_uploads, CLEAN_UPLOADS_EVERY_MINUTES),
    "verify_unproven_blobs": (verify_unproven_blobs, VERIFY_BLOBS_EVERY_MINUTES),
    "export_audit": (export_audit, EXPORT_AUDIT_EVERY_MINUTES),
}


def register_jobs(app) -> None:
    from chalice import Rate
    for name, (job, minutes) in JOBS.items():
        app.schedule(Rate(minutes, unit=Rate.MINUTES), name=name)(lambda event, job=job: job())
