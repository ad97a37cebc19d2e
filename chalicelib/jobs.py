"""Scheduled jobs: deployed as Chalice scheduled events, run on a timer by the local stack."""
import json
import logging

from chalicelib.blobs import BlobService
from chalicelib.services import services

LOG = logging.getLogger("dockless.jobs")
# How often expired upload sessions and their staged chunks are removed.
CLEAN_UPLOADS_EVERY_MINUTES = 60


def clean_expired_uploads() -> int:
    removed = BlobService(services()).clean_expired_uploads()
    LOG.info(json.dumps({"job": "clean_expired_uploads", "removed": removed}))
    return removed


JOBS = {"clean_expired_uploads": (clean_expired_uploads, CLEAN_UPLOADS_EVERY_MINUTES)}


def register_jobs(app) -> None:
    from chalice import Rate
    for name, (job, minutes) in JOBS.items():
        app.schedule(Rate(minutes, unit=Rate.MINUTES), name=name)(lambda event, job=job: job())
