"""What each repository holds and how much it is used: the facts behind `dockless usage`.

Stored bytes are the sizes of the blobs and manifests a repository links (a blob shared by two
repositories counts in both; S3 stores it once). Pushes and pulls are counted from the audit trail
(`manifest.push`, `manifest.pull` allowed), so they cover the audit query's window.
"""
import collections
import datetime
from typing import Dict, List, Optional

from chalicelib import audit
from chalicelib.meta import keys
from chalicelib.meta.models import CATALOG_PARTITION, BlobLink, Manifest, Repository

COUNTED = {"manifest.push": "pushes", "manifest.pull": "pulls"}


def repositories(namespace: Optional[str]) -> List[str]:
    condition = Repository.name.startswith(f"{namespace}/") if namespace else None
    return [r.name for r in Repository.query(CATALOG_PARTITION, condition)]


def report(namespace: Optional[str], since: datetime.datetime, until: datetime.datetime) -> List[Dict]:
    names = repositories(namespace)
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for space in sorted({keys.namespace_of(name) for name in names}):
        for event in audit.query(space, None, since, until):
            if event.action in COUNTED and event.outcome == audit.ALLOWED:
                counts[event.repository][COUNTED[event.action]] += 1
    rows = []
    for name in names:
        blobs = [link.size for link in BlobLink.query(name, attributes_to_get=["size"])]
        manifests = [m.size for m in Manifest.query(name, attributes_to_get=["size"])]
        rows.append({"repository": name, "stored_bytes": sum(blobs) + sum(manifests), "blobs": len(blobs),
                     "manifests": len(manifests), "pushes": counts[name]["pushes"], "pulls": counts[name]["pulls"]})
    return rows
