"""Tag history: every change of every tag, kept (pushes that create or move it, deletes, restores,
retention expiry), written in the transaction that changes the tag, read newest first.

The who and where-from of each event come from the request's audit context (audit.current), the
time from the backend's clock; `at` orders events as the audit trail's sort key does.
"""
from __future__ import annotations
import datetime
from typing import List, Optional, Tuple

from chalicelib.metadata import audit, keys
from chalicelib.metadata.models import TagEvent

PUSH, MOVE, DELETE, RESTORE, EXPIRE = "push", "move", "delete", "restore", "expire"


class TagHistory:
    def __init__(self, backend):
        self._backend = backend

    def record_in(self, txn, repository: str, tag: str, action: str, previous: Optional[str],
                  digest: Optional[str]) -> None:
        context = audit.current()
        context.sequence += 1
        now = self._backend.clock()
        txn.save(TagEvent(repository, keys.event_at(now, context.request_id, context.sequence),
                          tag_key=keys.tag_key(repository, tag), tag=tag, action=action, previous=previous,
                          digest=digest, time=now, actor=context.actor or "-", credential_id=context.credential_id,
                          source_ip=context.source_ip, request_id=context.request_id))

    def page(self, repository: str, tag: Optional[str], limit: int,
             last: Optional[str]) -> Tuple[List[TagEvent], bool]:
        """Newest first; `last` is the `at` of the previous page's last event."""
        if not limit:
            return [], False
        condition = TagEvent.at < last if last else None
        if tag is None:
            found = TagEvent.query(repository, condition, scan_index_forward=False, limit=limit + 1)
        else:
            found = TagEvent.by_tag.query(keys.tag_key(repository, tag), condition, scan_index_forward=False,
                                          limit=limit + 1)
        events = list(found)
        return events[:limit], len(events) > limit

    def named_at(self, repository: str, tag: str, when: datetime.datetime) -> Optional[TagEvent]:
        """The tag's newest event at or before `when` (its `digest` is what the tag named then)."""
        return next(iter(TagEvent.by_tag.query(keys.tag_key(repository, tag), TagEvent.at <= keys.events_until(when),
                                               scan_index_forward=False, limit=1)), None)


def as_dict(event: TagEvent, where_from: bool) -> dict:
    """An event as the API answers it; the credential id and client address only `where_from`."""
    found = {"time": event.time.isoformat(), "tag": event.tag, "action": event.action, "from": event.previous,
             "to": event.digest, "actor": event.actor, "request_id": event.request_id, "at": event.at}
    if where_from:
        found.update(credential_id=event.credential_id, source_ip=event.source_ip)
    return found
