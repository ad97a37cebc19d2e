"""What each repository and namespace holds and how much it is used: the facts behind `dockless usage`.

A repository's stored bytes are the sizes of the blobs and manifests it links (a blob shared by two
repositories counts in both; S3 stores it once). A namespace's are what its quota counts
(chalicelib/lifecycle/quota.py: distinct blobs, each once). Pushes and pulls are counted from the audit trail
(`manifest.push`, `manifest.pull` allowed), also per day, and what garbage collection freed from
its `gc.run` events, so all of them cover the audit query's window. The monthly estimate is
chalicelib/lifecycle/prices.py's: S3 storage plus the period's pushes and pulls scaled to 30 days;
beside them, what the registry bills per month whatever its traffic (metrics, alarms, secrets, KMS).
"""
from __future__ import annotations
import collections
import datetime
import json
from typing import Dict, List, Optional, Tuple

from chalicelib.lifecycle import prices, quota
from chalicelib.metadata import audit, keys, queries

COUNTED = {"manifest.push": "pushes", "manifest.pull": "pulls"}


def repositories(namespace: Optional[str]) -> List[str]:
    return queries.catalog(namespace)


def report(namespace: Optional[str], since: datetime.datetime, until: datetime.datetime,
           door: str = prices.API_GATEWAY_DOOR) -> Dict:
    """Per repository, per namespace, and the bucket's size as garbage collection found it; costs
    as the registry's door bills them."""
    runs = [json.loads(event.detail or "{}") for event in audit.query(audit.REGISTRY_NAMESPACE, None, since, until)
            if event.action == "gc.run"]
    names = repositories(namespace)
    namespaces = sorted({keys.namespace_of(name) for name in names} | ({namespace} if namespace else set()))
    rows, days = repository_rows(names, since, until, door)
    return {"repositories": rows, "days": days,
            "namespaces": [namespace_row(space, runs) for space in namespaces],
            "bucket": bucket_row(runs),
            "fixed_monthly_usd": {item: round(cost, 4) for item, cost in prices.fixed_monthly().items()}}


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
                    door: str = prices.API_GATEWAY_DOOR) -> Tuple[List[Dict], List[Dict]]:
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
                                           door)
        rows.append({"repository": name, "stored_bytes": stored, "blobs": len(blobs), "manifests": len(manifests),
                     "pushes": pushes, "pulls": pulls, "estimated_monthly_usd": round(estimate, 4)})
    days = [{"day": day, "pushes": found["pushes"], "pulls": found["pulls"]} for day, found in sorted(daily.items())]
    return rows, days
