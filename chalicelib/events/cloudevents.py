"""Which changes are events, and what each one says: a CloudEvent 1.0 (structured JSON mode) made
from the change's audit event, so an event says exactly what the audit trail recorded.

    {"specversion": "1.0", "id": "<the audit event's time>#<request id>#<n>",
     "source": "<the registry's public URL>", "type": "dev.dockless.manifest.push",
     "subject": "team/app@sha256:…", "time": "2026-12-07T14:00:00.123456Z",
     "datacontenttype": "application/json",
     "data": {"action": "manifest.push", "kind": "push", "namespace": "team", "repository": "team/app",
              "reference": "v1", "digest": "sha256:…", "tag": "v1", "actor": "alice", "request_id": "…",
              "detail": {…the audit event's detail…}}}

`subject` is `repository@digest` when the change names a manifest, else the repository (or the
namespace, for quota events; none for a registry-wide GC run). KINDS are what a webhook
subscribes to (`dockless webhook add NS URL --events push,delete`).
"""
from __future__ import annotations
import json
from typing import Dict, Optional

from chalicelib.metadata import keys
from chalicelib.metadata.models import AuditEvent

TYPE_PREFIX = "dev.dockless."
# audit action -> kind
KIND_OF: Dict[str, str] = {
    "manifest.push": "push",
    "tag.move": "tag", "tag.restore": "tag",
    "manifest.delete": "delete", "tag.delete": "delete", "repository.delete": "delete",
    "signature.add": "signature",
    "quota.warning": "quota", "quota.reached": "quota",
    "tag.expire": "retention", "manifest.expire": "retention",
    "gc.run": "gc",
    "scan.complete": "scan",
}
KINDS = tuple(sorted(set(KIND_OF.values())))


def is_event(event: AuditEvent) -> bool:
    return event.action in KIND_OF and event.outcome == "allowed"


def _digest(event: AuditEvent, detail: dict) -> Optional[str]:
    for candidate in (detail.get("digest"), event.reference):
        if isinstance(candidate, str) and candidate.startswith("sha256:"):
            return candidate
    return None


def cloud_event(event: AuditEvent, source: str) -> dict:
    """The CloudEvent of an audited change."""
    detail = json.loads(event.detail) if event.detail else {}
    digest = _digest(event, detail)
    repository = event.repository
    tag = event.reference if event.reference and not event.reference.startswith("sha256:") else None
    if repository and digest:
        subject = f"{repository}@{digest}"
    else:
        subject = repository or detail.get("namespace")
    data = {"action": event.action, "kind": KIND_OF[event.action],
            "namespace": keys.namespace_of(repository) if repository else detail.get("namespace"),
            "repository": repository, "reference": event.reference, "digest": digest, "tag": tag,
            "actor": event.actor, "request_id": event.request_id, "detail": detail}
    document = {"specversion": "1.0", "id": event.at, "source": source, "type": TYPE_PREFIX + event.action,
                "time": event.time.isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
                "data": {name: value for name, value in data.items() if value is not None}}
    if subject:
        document["subject"] = subject
    return document


def namespace_of(document: dict) -> Optional[str]:
    return document.get("data", {}).get("namespace")


def group_of(document: dict) -> str:
    """What orders events: one repository's (or namespace's) come in the order they happened."""
    data = document.get("data", {})
    return data.get("repository") or data.get("namespace") or "_registry"
