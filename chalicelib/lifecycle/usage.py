"""What each repository and namespace holds and how much it is used: the facts behind `dockless usage`.

A repository's stored bytes are the sizes of the blobs and manifests it links (a blob shared by two
repositories counts in both; S3 stores it once). A namespace's are what its quota counts
(chalicelib/lifecycle/quota.py: distinct blobs, each once). Pushes and pulls are counted from the audit trail
(`manifest.push`, `manifest.pull` allowed), also per day, and what garbage collection freed from
its `gc.run` events, so all of them cover the audit query's window. The monthly estimate is
chalicelib/lifecycle/prices.py's: S3 storage plus the period's pushes and pulls scaled to 30 days;
beside them, what the registry bills per month whatever its traffic (metrics, alarms, secrets, KMS).
Per tag, the vulnerability summary of what it names (chalicelib/scanning: an index's, its images'
summed), as its stored scans say.
"""
from __future__ import annotations
import collections
import datetime
import json
from typing import Dict, List, Optional, Tuple

from chalicelib.lifecycle import prices, quota
from chalicelib.metadata import audit, keys, queries
from chalicelib.metadata.models import ImageScan, Manifest, read_together

COUNTED = {"manifest.push": "pushes", "manifest.pull": "pulls"}


def repositories(namespace: Optional[str]) -> List[str]:
    return queries.catalog(namespace)


def report(namespace: Optional[str], since: datetime.datetime, until: datetime.datetime,
           door: str = prices.API_GATEWAY_DOOR, log_days: int = prices.LOG_RETENTION_DAYS) -> Dict:
    """Per repository, per namespace, and the bucket's size as garbage collection found it; costs
    as the registry's door bills them, its logs kept `log_days`."""
    runs = [json.loads(event.detail or "{}") for event in audit.query(audit.REGISTRY_NAMESPACE, None, since, until)
            if event.action == "gc.run"]
    names = repositories(namespace)
    namespaces = sorted({keys.namespace_of(name) for name in names} | ({namespace} if namespace else set()))
    rows, days = repository_rows(names, since, until, door, log_days)
    return {"repositories": rows, "days": days,
            "namespaces": [namespace_row(space, runs) for space in namespaces],
            "bucket": bucket_row(runs), "tags": [row for name in names for row in tag_vulnerabilities(name)],
            "fixed_monthly_usd": {item: round(cost, 4) for item, cost in prices.fixed_monthly().items()}}


def tag_vulnerabilities(repository: str, tags: Optional[list] = None) -> List[Dict]:
    """{"repository", "tag", "digest", "status", "summary", "complete"} per tag (of `tags`, the
    repository's Tag items, read here if not given): a query of its scans and a batch read of the
    manifests that have none (an index: its images' summaries summed)."""
    scans = {item.digest: item for item in ImageScan.query(repository)}
    tags = list(queries.tags(repository)) if tags is None else tags
    unscanned = sorted({tag.digest for tag in tags if tag.digest not in scans})
    indexes = {item.digest: item for item in read_together(*((Manifest, (repository, d)) for d in unscanned))
               if item is not None and item.children} if unscanned else {}
    rows = []
    for tag in tags:
        images = [scans.get(child) for child in sorted(indexes[tag.digest].children)] \
            if tag.digest in indexes else [scans.get(tag.digest)]
        statuses = {image.status if image else "pending" for image in images}
        summary: collections.Counter = collections.Counter()
        for image in images:
            summary.update(json.loads(image.summary) if image is not None and image.summary else {})
        status = next((s for s in ("failed", "pending") if s in statuses), "done" if "done" in statuses else "skipped")
        rows.append({"repository": repository, "tag": tag.tag, "digest": tag.digest, "status": status,
                     "summary": dict(summary) if status == "done" else None,
                     "complete": all(image is not None and not image.problems for image in images)})
    return rows


def namespace_row(namespace: str, runs: List[dict]) -> Dict:
    total = quota.total(namespace)
    stored, limit = int(total.bytes or 0), None if total.quota is None else int(total.quota)
    return {"namespace": namespace, "stored_bytes": stored, "quota_bytes": limit,
            "used_percent": None if not limit else round(stored * 100 / limit, 1),
            "gc_freed_bytes": sum(run.get("namespace_bytes_freed", {}).get(namespace, 0) for run in runs)}


def bucket_row(runs: List[dict]) -> Dict:
    """The bucket's bytes at the period's first full collection and after its last, and what the
    collections deleted from it in between."""
    full = [run for run in runs if "bucket_bytes_before" in run]
    return {"gc_runs": len(runs), "bytes_before": full[0]["bucket_bytes_before"] if full else None,
            "bytes_after": full[-1]["bucket_bytes_after"] if full else None,
            "gc_freed_bytes": sum(run.get("bytes_deleted", 0) for run in full)}


def repository_rows(names: List[str], since: datetime.datetime, until: datetime.datetime,
                    door: str = prices.API_GATEWAY_DOOR, log_days: int = prices.LOG_RETENTION_DAYS
                    ) -> Tuple[List[Dict], List[Dict]]:
    """Per repository: stored bytes, blobs, manifests, pushes, pulls and the estimated monthly
    cost (chalicelib/lifecycle/prices.py); and per day of the period, the pushes and pulls of them all."""
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    daily: Dict[str, collections.Counter] = {}
    day = since.date()
    while day <= until.date():
        daily[day.isoformat()] = collections.Counter()
        day += datetime.timedelta(days=1)
    for space in sorted({keys.namespace_of(name) for name in names}):
        for event in audit.query(space, None, since, until):
            if event.action in COUNTED and event.outcome == audit.ALLOWED:
                counts[event.repository][COUNTED[event.action]] += 1
                daily.setdefault(event.time.date().isoformat(), collections.Counter())[COUNTED[event.action]] += 1
    period_days = (until - since).total_seconds() / 86400
    rows = []
    for name in names:
        blobs = [link.size for link in queries.links(name, fields=["size"])]
        manifests = [m.size for m in queries.manifests(name, fields=["size"])]
        stored, pushes, pulls = sum(blobs) + sum(manifests), counts[name]["pushes"], counts[name]["pulls"]
        estimate = prices.monthly_estimate(stored, pushes, pulls, period_days, len(blobs) / max(len(manifests), 1),
                                           door, log_days)
        rows.append({"repository": name, "stored_bytes": stored, "blobs": len(blobs), "manifests": len(manifests),
                     "pushes": pushes, "pulls": pulls, "estimated_monthly_usd": round(estimate, 4)})
    days = [{"day": day, "pushes": found["pushes"], "pulls": found["pulls"]} for day, found in sorted(daily.items())]
    return rows, days
