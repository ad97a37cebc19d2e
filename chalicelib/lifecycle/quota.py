"""Storage quotas: what a namespace stores, and a limit on it.

A namespace stores the distinct blobs (configs and layers) its repositories link, each counted
once however many of its repositories link it: what its images take in the bucket, whoever else
shares the bytes. Manifests (a few KiB each) and uploads in progress are not counted.

The count lives beside the links (NamespaceStorage) and changes in the very transactions that
write and delete links: a link adds its repository to the namespace's entry for the digest, and a
digest new to the namespace adds its size to the namespace's bytes; a deleted link takes its
repository out of the entry, and the last one takes the entry and its bytes. Each entry change is
conditional on the entry's version as read, so racing links and unlinks read again rather than
count twice.

A namespace's bytes are the sum of its total item (TOTAL, "#", which also holds the quota) and
TOTAL_SHARDS shard items ("#0" … "#7", one per digest by its hex): while the namespace has no
quota a new digest adds to its shard, so the new blobs of one namespace do not all write one item
(DynamoDB serves an item about 500 transactional writes a second, and cancels a transaction that
names an item another holds); under a quota it adds to the total, on the condition that the quota
leaves room for it as the shards were read, so two uploads racing for the last room cannot both
have it. Unlinks take bytes from the digest's shard. A blob linked while an admin sets a
namespace's first quota may be counted past it (it read "no quota"): the quota holds from the
next link on.

A refusal is DENIED, which docker prints as "denied: quota exceeded for team: 10.3 GiB of 10 GiB;
delete images or ask an admin". Blobs are refused before their bytes are copied (an API upload's
completion, a monolithic push) or sent (a direct upload states its size when it starts), at a
mount, and at a direct upload's completion; a manifest PUT is refused while the namespace stores
more than its quota (the quota was lowered), before anything is written. A refused push leaves
nothing (BlobService.abandon_push): the blobs its repository received within an upload session's
life that no manifest needs go with it, and a repository left empty leaves the catalog. A push
racing it into the same repository loses those blobs too (its manifest is then refused with
MANIFEST_BLOB_UNKNOWN, and pushing again uploads them anew); other repositories keep theirs.

Reaching 80 % and 100 % of the quota raises an audit event (`quota.warning`, `quota.reached`) and
the `QuotaAlerts` metric (dimension `Threshold`), which the stack alarms on: once per level, until
the quota is set again or the namespace drops below the level.
"""
from __future__ import annotations
import json
import logging
from typing import Callable, List, NamedTuple, Optional

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.access import edge
from chalicelib.metadata import keys
from chalicelib.metadata.keys import STORAGE_TOTAL
from chalicelib.metadata.models import BlobLink, NamespaceStorage, failed_conditions, read_together, transaction
from chalicelib.oci import errors, sizes
from chalicelib.oci.errors import RegistryError
from chalicelib.runtime import retries
from chalicelib.runtime.observe import emit_metric

LOG = logging.getLogger("dockless.quota")
ALERT_LEVELS = (100, 80)  # percent of the quota, highest first
ALERT_ACTIONS = {100: "quota.reached", 80: "quota.warning"}
TOTAL_SHARDS = 8


class Standing(NamedTuple):
    """A namespace's total and its entry for one digest, as read before a link changes; with a
    quota, also what its shards count (`counted`), without one they need not be read."""
    namespace: str
    total: NamespaceStorage
    entry: Optional[NamespaceStorage]
    shards: Optional[int] = None  # the shards' bytes, once read

    @property
    def stored(self) -> int:
        return int(self.total.bytes or 0) + (self.shards or 0)

    @property
    def quota(self) -> Optional[int]:
        return None if self.total.quota is None else int(self.total.quota)

    @classmethod
    def of(cls, repo: str, total: Optional[NamespaceStorage], entry: Optional[NamespaceStorage]) -> "Standing":
        namespace = keys.namespace_of(repo)
        return cls(namespace, total or NamespaceStorage(namespace, STORAGE_TOTAL), entry)

    def links(self, repo: str) -> bool:
        return self.entry is not None and repo in (self.entry.repositories or ())

    def has_room(self, size: int) -> bool:
        """Whether the namespace may link a blob of this size: it stores it already, or the quota
        (if any) leaves room for it."""
        return self.entry is not None or self.quota is None or self.stored + size <= self.quota


def exceeded(namespace: str, stored: int, quota: int) -> RegistryError:
    message = (f"quota exceeded for {namespace}: {sizes.human(stored)} of {sizes.human(quota)}; "
               "delete images or ask an admin")
    return RegistryError(errors.QUOTA_EXCEEDED, {"namespace": namespace, "bytes": stored, "quota": quota},
                         message=message)


def shard_entry(digest: str) -> str:
    """The shard item a digest's bytes are counted in while its namespace has no quota."""
    return f"{STORAGE_TOTAL}{int(keys.digest_hex(digest)[:8], 16) % TOTAL_SHARDS}"


SHARD_ENTRIES = tuple(f"{STORAGE_TOTAL}{number}" for number in range(TOTAL_SHARDS))


def _counts(namespace: str, entries, consistent: bool = False) -> List[Optional[NamespaceStorage]]:
    """The namespace's count items of these entries, in one read."""
    return read_together(*((NamespaceStorage, (namespace, entry)) for entry in entries), consistent=consistent)


def _bytes(items) -> int:
    return sum(int(item.bytes or 0) for item in items if item is not None)


def _shards(namespace: str, consistent: bool = False) -> int:
    """The bytes a namespace's shard items count (one read of all of them)."""
    return _bytes(_counts(namespace, SHARD_ENTRIES, consistent))


def counted(now: Standing, consistent: bool = False) -> Standing:
    """`now` with its shards read, where a quota makes them matter."""
    if now.quota is None or now.shards is not None:
        return now
    return now._replace(shards=_shards(now.namespace, consistent))


def items_of(repo: str, digest: str) -> List[tuple]:
    """The keys of a standing's items, for models.read_together (what `Standing.of` takes)."""
    return [total_key(repo), (NamespaceStorage, (keys.namespace_of(repo), digest))]


def standing(repo: str, digest: str, consistent: bool = False) -> Standing:
    """One read: the namespace's total and its entry for the digest. A stale (eventually
    consistent) read only makes the link's conditions fail, and the link reads again, consistently."""
    return counted(Standing.of(repo, *read_together(*items_of(repo, digest), consistent=consistent)), consistent)


def require_room(repo: str, digest: str, size: int, known: Optional[Standing] = None) -> Standing:
    """The standing of a link about to be written, refused past the quota; a refusal is read
    consistently first, so a stale read never refuses."""
    now = counted(known) if known else standing(repo, digest)
    if not now.has_room(size):
        now = standing(repo, digest, consistent=True)
        if not now.has_room(size):
            raise exceeded(now.namespace, now.stored + size, now.quota)
    return now


def total(namespace: str) -> NamespaceStorage:
    """The namespace's total item with `bytes` all that it stores (its shards added): one read."""
    found = _counts(namespace, (STORAGE_TOTAL, *SHARD_ENTRIES))
    item = found[0] or NamespaceStorage(namespace, STORAGE_TOTAL)
    item.bytes = _bytes(found)
    return item


def total_key(repo: str) -> tuple:
    """The key of a repository's namespace total, for models.read_together."""
    return NamespaceStorage, (keys.namespace_of(repo), STORAGE_TOTAL)


def require_within(repo: str, item: Optional[NamespaceStorage]) -> None:
    """A manifest PUT (given the namespace's total as read): refused while the namespace stores
    more than its quota."""
    namespace = keys.namespace_of(repo)
    if item is not None and item.quota is not None:
        stored = int(item.bytes or 0) + _shards(namespace)
        if stored > item.quota:
            raise exceeded(namespace, stored, int(item.quota))


def write_link(backend, link: BlobLink, also: Callable, known: Optional[Standing] = None) -> None:
    """Save `link` in one transaction with what `also(txn)` writes and the namespace's count,
    refused if the quota has no room for it. `known` is a standing the caller read already."""
    for attempt in range(retries.RACE_ATTEMPTS):
        retries.pause(attempt)
        now = require_room(link.repo, link.digest, link.size,
                           known if attempt == 0 else standing(link.repo, link.digest, consistent=True))
        try:
            with transaction() as txn:
                txn.save(link)
                also(txn)
                _count_link(txn, now, link)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise
            continue  # the entry or the total changed since it was read
        if now.entry is None and now.quota is not None:
            _alert(backend, now.namespace, now.stored + link.size, now.quota, link.repo)
        return
    raise RegistryError(errors.TOOMANYREQUESTS, "too many concurrent changes to this blob's links; push again")


def _count_link(txn, now: Standing, link: BlobLink) -> None:
    entry = now.entry
    if entry is None:
        txn.save(NamespaceStorage(now.namespace, link.digest, size=link.size, repositories={link.repo}, version=1),
                 condition=NamespaceStorage.entry.does_not_exist())
        if now.quota is None:
            txn.update(NamespaceStorage(now.namespace, shard_entry(link.digest)),
                       actions=[NamespaceStorage.bytes.add(link.size)])
            return
        room = (NamespaceStorage.quota == now.quota) & (
            NamespaceStorage.bytes.does_not_exist()
            | (NamespaceStorage.bytes <= now.quota - link.size - (now.shards or 0)))
        txn.update(now.total, actions=[NamespaceStorage.bytes.add(link.size)], condition=room)
    elif now.links(link.repo):
        txn.condition_check(NamespaceStorage, now.namespace, link.digest,
                            condition=NamespaceStorage.version == entry.version)
    else:
        txn.update(entry, actions=[NamespaceStorage.repositories.add({link.repo}), NamespaceStorage.version.add(1)],
                   condition=NamespaceStorage.version == entry.version)


def delete_link(backend, link: BlobLink, condition=None, also: Optional[Callable] = None) -> Optional[int]:
    """Delete `link` (if it exists and meets `condition`) in one transaction with what `also(txn)`
    writes, the repository's edge item and the namespace's count. The bytes it freed from the
    namespace's count (0 while another of its repositories links the digest), or None when the
    link was not deleted."""
    exists = BlobLink.digest.exists()
    condition = exists if condition is None else exists & condition
    for attempt in range(retries.RACE_ATTEMPTS):
        retries.pause(attempt)
        *found, edge_item = read_together(*items_of(link.repo, link.digest), edge.item_key(link.repo), consistent=True)
        now = counted(Standing.of(link.repo, *found), consistent=True)
        try:
            with transaction() as txn:
                txn.delete(link, condition=condition)  # first: position 0 of the refusal
                if also is not None:
                    also(txn)
                edge.forget(txn, link, edge_item)  # no token issued after this lists the blob
                freed = _count_unlink(txn, now, link)
        except TransactWriteError as error:
            failed = failed_conditions(error)
            if not failed:
                raise
            if 0 in failed:
                return None  # gone, or changed, meanwhile
            continue
        return freed
    raise RegistryError(errors.TOOMANYREQUESTS, "too many concurrent changes to this blob's links; try again")


def _count_unlink(txn, now: Standing, link: BlobLink) -> int:
    entry = now.entry
    if not now.links(link.repo):
        return 0  # a link written before the count existed: nothing of it was counted
    if entry.repositories != {link.repo}:
        txn.update(entry, actions=[NamespaceStorage.repositories.delete({link.repo}), NamespaceStorage.version.add(1)],
                   condition=NamespaceStorage.version == entry.version)
        return 0
    size = int(entry.size)
    txn.delete(entry, condition=NamespaceStorage.version == entry.version)
    txn.update(NamespaceStorage(now.namespace, shard_entry(link.digest)), actions=[NamespaceStorage.bytes.add(-size)])
    if now.quota is not None and now.total.alerted is not None and \
            (now.stored - size) * 100 < now.total.alerted * now.quota:
        # Below the level again: raise it again next time.
        txn.update(now.total, actions=[NamespaceStorage.alerted.remove()])
    return size


def set_quota(backend, namespace: str, quota: Optional[int]) -> NamespaceStorage:
    """Set (or, with None, remove) a namespace's quota; alert at once if it is 80 % used already."""
    item = NamespaceStorage(namespace, STORAGE_TOTAL)
    item.update(actions=[NamespaceStorage.alerted.remove(),
                         NamespaceStorage.quota.remove() if quota is None else NamespaceStorage.quota.set(quota)])
    item.bytes = stored = int(item.bytes or 0) + _shards(namespace, consistent=True)
    backend.audit.record("quota.set", None, namespace, namespace=namespace, quota=quota, bytes=stored)
    if quota is not None:
        _alert(backend, namespace, stored, quota, None)
    return item


def _alert(backend, namespace: str, stored: int, quota: int, repo: Optional[str]) -> None:
    """Raise the highest level `stored` reaches, unless it was raised already (`alerted`)."""
    reached = [level for level in ALERT_LEVELS if stored * 100 >= level * quota]
    if not reached:
        return
    level = reached[0]
    try:
        NamespaceStorage(namespace, STORAGE_TOTAL).update(
            actions=[NamespaceStorage.alerted.set(level)],
            condition=NamespaceStorage.alerted.does_not_exist() | (NamespaceStorage.alerted < level))
    except UpdateError:
        return  # raised already
    detail = {"bytes": stored, "quota": quota, "percent": round(stored * 100 / quota, 1)}
    backend.audit.record(ALERT_ACTIONS[level], repo, namespace, namespace=namespace, **detail)
    emit_metric("QuotaAlerts", "Threshold", str(level), namespace=namespace, **detail)
    LOG.warning(json.dumps({"event": ALERT_ACTIONS[level], "namespace": namespace, **detail}))
