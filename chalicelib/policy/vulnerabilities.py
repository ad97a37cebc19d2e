"""Verified mode's severity rule: with `refuse_severity` set on a namespace or repository, an
image is served (to a caller who may not push) only when its scan (chalicelib/scanning) is done
and none of its findings is at least that severe, leaving out the advisories the namespace
accepts (`dockless advisories accept ID --namespace N --until DATE --reason TEXT`) until the end
of their day. An image not scanned yet, or whose scan failed, is refused: its status is unknown.
What is not an image (a signature, an SBOM: scanned `skipped`; an index: each of its images is
checked when pulled) is never held back by this rule; an image whose scan could not read all of
it (a layer compressed with zstd, a file over its limit) is, as its status is not known.

A finding is a JSON object (scanning/advisories.Finding.as_dict); the findings of a scan are
stored zlib-compressed (`ImageScan.findings`).
"""
from __future__ import annotations
import datetime
import json
import zlib
from typing import Iterable, List, Optional, Tuple

from chalicelib.oci import errors
from chalicelib.oci.errors import RegistryError

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
IMAGE_MEDIA_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
ACCEPTED_MAX = 1000
REASON_MAX = 500


def describe(status: Optional[str], summary: Optional[dict], complete: bool = True) -> str:
    """A scan in a few words: "2 critical, 1 high", "none found", "not scanned yet" (the console's
    and `dockless usage`'s)."""
    if status in (None, "pending"):
        return "not scanned yet"
    if status != "done":
        return {"skipped": "not an image", "failed": "scan failed"}.get(status, status)
    counts = [f"{summary[severity]} {severity.lower()}" for severity in (*reversed(SEVERITIES), "UNKNOWN")
              if (summary or {}).get(severity)]
    return (", ".join(counts) or "none found") + ("" if complete else " (incomplete)")


def check_severity(value) -> Optional[str]:
    """A `refuse_severity` as the API takes it (low, medium, high, critical; null: none)."""
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in SEVERITIES:
        raise RegistryError(errors.ADMIN_INVALID, f"refuse_severity is one of {', '.join(s.lower() for s in SEVERITIES)} "
                                                  "or null")
    return value.upper()


def strictest(values: Iterable[Optional[str]]) -> Optional[str]:
    given = [value for value in values if value in SEVERITIES]
    return min(given, key=SEVERITIES.index) if given else None


def accepted_of(namespace_item) -> Tuple[Tuple[str, str], ...]:
    """(advisory id, until) of what a namespace's settings item accepts."""
    if namespace_item is None or not namespace_item.accepted_risks:
        return ()
    return tuple(sorted((advisory, risk["until"]) for advisory, risk in json.loads(namespace_item.accepted_risks).items()))


def is_accepted(accepted: Iterable[Tuple[str, str]], finding: dict, today: datetime.date) -> bool:
    names = {finding["id"], *finding.get("aliases", ())}
    return any(advisory in names and until >= today.isoformat() for advisory, until in accepted)


def encode(findings: List[dict], max_bytes: int) -> bytes:
    """The findings compressed, the most severe first (as given), as many as fit in `max_bytes`."""
    while True:
        blob = zlib.compress(json.dumps(findings, sort_keys=True, separators=(",", ":")).encode(), 6)
        if len(blob) <= max_bytes or not findings:
            return blob
        findings = findings[:len(findings) * 3 // 4]


def decode(blob: Optional[bytes]) -> List[dict]:
    return json.loads(zlib.decompress(blob)) if blob else []


def is_image_manifest(manifest) -> bool:
    """What the rule applies to: every manifest of an image's media type, whatever artifactType it
    claims (a client runs what its config says, and the scan alone reads that: one that is no
    image, an SBOM or a signature, is scanned `skipped`)."""
    return manifest.media_type in IMAGE_MEDIA_TYPES


def refusal(scan, threshold: Optional[str], accepted, today: datetime.date) -> Optional[str]:
    """Why an image may not be served under `threshold` (its ImageScan item, or None), or None."""
    if threshold is None or (scan is not None and scan.status == "skipped"):
        return None
    if scan is None or scan.status == "pending":
        return f"verified mode refuses images with {threshold.lower()} vulnerabilities: this one is not scanned yet"
    if scan.status != "done":
        return f"verified mode refuses images with {threshold.lower()} vulnerabilities: this one's scan failed"
    if scan.problems:
        return (f"verified mode refuses images with {threshold.lower()} vulnerabilities: this one's scan could not "
                "read all of it (`dockless scan show` names what)")
    floor = SEVERITIES.index(threshold)
    blocking = sorted({finding["id"] for finding in decode(scan.findings)
                       if finding["severity"] in SEVERITIES and SEVERITIES.index(finding["severity"]) >= floor
                       and not is_accepted(accepted, finding, today)})
    if not blocking:
        return None
    shown = ", ".join(blocking[:5]) + (f" and {len(blocking) - 5} more" if len(blocking) > 5 else "")
    return (f"verified mode refuses images with {threshold.lower()} or worse vulnerabilities: "
            f"{len(blocking)} found ({shown}); `dockless scan show` lists them")
