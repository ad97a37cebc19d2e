"""Retention rules: which tags and untagged manifests expire, per namespace or repository (a
repository's rules replace its namespace's), applied before each garbage collection run.

    keep_last N       keep the N tags pushed last (by push time)
    keep_days D       keep tags pushed in the last D days
    untagged_days D   expire manifests no tag has named for D days
    unpulled_days D   expire tags whose image was not pulled (or pushed) for D days
    exempt P,…        tag patterns that never expire; immutable tags and signed images (a GPG signature,
                      or a cosign `.sig` tag) never do either; cosign's own tags are not counted
                      (they go with their image)

A tag expires when it is not exempt and either a keep rule is set and none keeps it, or it is
unpulled. Expiring a tag deletes it (a tag-history event `expire`); expiring an untagged manifest
deletes it as a DELETE by digest would (restorable for the time-machine window). Both are audited
with actor `retention`. Manifests an index or a kept image refers to never expire untagged.
Pulls are tracked in `Manifest.pulled_at`, written at most once a day per manifest, in the same
call as the pull's audit event.
"""
from __future__ import annotations
import datetime
from typing import Dict, List, NamedTuple, Optional

from pynamodb.exceptions import TransactWriteError

from chalicelib.lifecycle import gc, history
from chalicelib.lifecycle.history import TagHistory
from chalicelib.metadata import audit, keys
from chalicelib.metadata.keys import tag_sort_key
from chalicelib.metadata.models import BlobLink, Manifest, Signature, Tag, TagEvent, transaction
from chalicelib.oci import spec
from chalicelib.policy.settings import SettingsService

ACTOR = "retention"
PULL_RECORD_INTERVAL = datetime.timedelta(days=1)


class Expiry(NamedTuple):
    repository: str
    tag: Optional[str]  # None: an untagged manifest
    digest: str
    reason: str

    def as_dict(self) -> dict:
        return self._asdict()


class RetentionService:
    def __init__(self, backend):
        self._backend = backend
        self._history = TagHistory(backend)

    def plan(self, repo: str) -> List[Expiry]:
        """What the rules that apply to the repository expire now."""
        settings = SettingsService(self._backend).of(repo)
        rules = settings.retention
        if rules is None:
            return []
        now = self._backend.clock()
        every_tag = list(Tag.query(repo, consistent_read=True))
        # The tags that belong to a manifest are not the repository's: they go with that manifest (gc).
        cosigned = {gc.subject_of(t.tag) for t in every_tag if spec.ATTACHED_TAG_RE.fullmatch(t.tag)
                    and t.tag.endswith(".sig")}
        tags = sorted((t for t in every_tag if not spec.ATTACHED_TAG_RE.fullmatch(t.tag)),
                      key=lambda t: t.updated_at, reverse=True)
        manifests = {m.digest: m for m in Manifest.query(repo, consistent_read=True) if m.deleted_at is None}
        expiring = []
        for rank, tag in enumerate(tags):
            if rules.exempts(tag.tag) or settings.immutable(tag.tag) or tag.digest in cosigned \
                    or self._signed(repo, tag.digest):
                continue
            keeps = [rank < rules.keep_last if rules.keep_last is not None else None,
                     tag.updated_at > now - datetime.timedelta(days=rules.keep_days)
                     if rules.keep_days is not None else None]
            if any(k is not None for k in keeps) and not any(keeps):
                expiring.append(Expiry(repo, tag.tag, tag.digest, "keep rules"))
            elif rules.unpulled_days is not None and self._last_use(manifests.get(tag.digest), tag) \
                    <= now - datetime.timedelta(days=rules.unpulled_days):
                expiring.append(Expiry(repo, tag.tag, tag.digest, f"not pulled for {rules.unpulled_days} days"))
        if rules.untagged_days is not None:
            expiring += self._untagged(repo, tags, every_tag, manifests, expiring,
                                       now - datetime.timedelta(days=rules.untagged_days))
        return expiring

    @staticmethod
    def _signed(repo: str, digest: str) -> bool:
        return Signature.count(keys.image(repo, digest), limit=1) > 0

    @staticmethod
    def _last_use(manifest: Optional[Manifest], tag: Tag) -> datetime.datetime:
        times = [tag.updated_at] + ([manifest.pulled_at] if manifest is not None and manifest.pulled_at else [])
        return max(times)

    def _untagged(self, repo: str, tags: List[Tag], every_tag: List[Tag], manifests: Dict[str, Manifest],
                  expiring: List[Expiry], before: datetime.datetime) -> List[Expiry]:
        """Manifests no remaining tag names or keeps, that no tag named since `before`, pushed before it."""
        expiring_tags = {e.tag for e in expiring}
        kept = gc.with_attached(manifests, gc.reachable(manifests, {t.digest for t in tags
                                                                    if t.tag not in expiring_tags}), every_tag)
        named = {d for event in TagEvent.query(repo, TagEvent.at >= keys.instant(before), consistent_read=True)
                 for d in (event.previous, event.digest) if d}
        return [Expiry(repo, None, digest, "untagged") for digest, item in sorted(manifests.items())
                if digest not in kept and digest not in named and item.created_at <= before]

    def preview(self, resource: str) -> dict:
        """What would expire in a namespace or repository, and the bytes of blobs only they need."""
        repos = [resource] if keys.repository_of_resource(resource) else list(gc.repositories(resource))
        expiring = [expiry for repo in repos for expiry in self.plan(repo)]
        return {"resource": resource, "expiring": [e.as_dict() for e in expiring],
                "bytes": sum(self._freed(repo, [e for e in expiring if e.repository == repo]) for repo in repos)}

    def _freed(self, repo: str, expiring: List[Expiry]) -> int:
        """Bytes of the blobs that only the expiring images need (freed once garbage collection,
        after the time-machine window, takes them)."""
        if not expiring:
            return 0
        manifests = {m.digest: m for m in Manifest.query(repo) if m.deleted_at is None}
        expiring_tags = {e.tag for e in expiring if e.tag}
        kept = gc.reachable(manifests, {t.digest for t in Tag.query(repo) if t.tag not in expiring_tags})
        going = gc.reachable(manifests, {e.digest for e in expiring}) - kept
        freed = gc.blobs_of(self._backend, [manifests[d] for d in going if d in manifests]) \
            - gc.blobs_of(self._backend, [manifests[d] for d in kept if d in manifests])
        return sum(link.size for link in BlobLink.batch_get([(repo, d) for d in sorted(freed)]))

    def apply(self, namespace: Optional[str] = None) -> List[Expiry]:
        """Expire what the rules say, every repository (or one namespace's), as actor `retention`."""
        done = []
        with audit.acting_as(ACTOR):
            for repo in gc.repositories(namespace):
                for expiry in self.plan(repo):
                    if self._expire(expiry):
                        done.append(expiry)
        return done

    def _expire(self, expiry: Expiry) -> bool:
        try:
            with transaction() as txn:
                if expiry.tag is not None:
                    txn.delete(Tag(expiry.repository, tag_sort_key(expiry.tag)), condition=Tag.digest == expiry.digest)
                    self._history.record_in(txn, expiry.repository, expiry.tag, history.EXPIRE, expiry.digest, None)
                    self._backend.audit.record_in(txn, "tag.expire", expiry.repository, expiry.tag,
                                                  digest=expiry.digest, reason=expiry.reason)
                else:
                    txn.update(Manifest(expiry.repository, expiry.digest),
                               actions=[Manifest.deleted_at.set(self._backend.clock())],
                               condition=Manifest.deleted_at.does_not_exist() & Manifest.digest.exists())
                    self._backend.audit.record_in(txn, "manifest.expire", expiry.repository, expiry.digest,
                                                  reason=expiry.reason)
        except TransactWriteError:
            return False  # moved, pushed or deleted meanwhile: the next run decides again
        return True


def record_pull(backend, repo: str, reference: str, manifest: Manifest) -> None:
    """A manifest GET's one write: its audit event, joined at most once a day by the manifest's pull
    time in the same call (a transaction), so a pull stays at one write. Best effort, like every
    read's audit event: if the transaction fails (the manifest went meanwhile), the event alone."""
    now = backend.clock()
    if manifest.pulled_at is None or manifest.pulled_at <= now - PULL_RECORD_INTERVAL:
        try:
            with transaction() as txn:
                backend.audit.record_in(txn, "manifest.pull", repo, reference, digest=manifest.digest)
                txn.update(manifest, actions=[Manifest.pulled_at.set(now)], condition=Manifest.digest.exists())
            return
        except Exception:  # noqa: BLE001 - best effort: the event alone is tried next, and logged if lost
            pass
    backend.audit.record("manifest.pull", repo, reference, digest=manifest.digest)
