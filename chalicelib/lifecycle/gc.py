"""Online garbage collection: manifests nothing keeps, blob links no manifest needs, objects of the
bucket nothing links, and expired upload sessions go, while pushes, mounts and direct uploads go on.

A run walks each repository (or one namespace's), then, in a full run, the bucket:

* **Manifests.** Kept: what a tag names; what was pushed, deleted by digest, or named by a tag less
  than the repository's time-machine window ago (policy/settings.py); and, from those, index
  children and referrers (an artifact whose `subject` is kept), and what cosign keeps beside a
  kept manifest (its `sha256-<hex>.sig`, `.att`, `.sbom` tags and the referrers fallback `sha256-<hex>`: kept with their subject, not for
  the tag; collected with it, tag and all). Any other manifest is *doomed*
  (`doomed_at` set, on the condition that it was not pushed again since it was read); a later run,
  at least the grace period on, deletes it with its signatures if it is still doomed and still not
  kept: the delete is conditional on the very `doomed_at` it set.
* **Blob links.** Needed: every blob (config and layers) of every manifest still stored. A link no
  manifest needs, and older than an upload session may last (a push uploads blobs before its
  manifest), is doomed and deleted the same way.
* **Objects** (full runs only). An object under `blobs/` that no link points at (and that is not
  the object of an open direct-upload session), or under `manifests/` that no manifest item has,
  becomes a candidate (`GcCandidate`); a later run, the grace period on, deletes it if it is still
  unreferenced: it marks the candidate `deleting` (conditionally), deletes the object, then the
  candidate. Referenced again, it stops being a candidate; a push about to reuse the bytes at a
  content-addressed key claims the object first (`claim_object`: deletes the candidate unless it
  is being deleted, in which case the push writes its bytes to a key of its own).

Why nothing in use is lost (DESIGN.md, "Garbage collection", states the invariants): every path
that comes to rely on an existing link or manifest (a manifest PUT's check of its blobs and
children, a restore) removes its `doomed_at`, conditionally, or treats it as missing if it is gone
(`revive` below); a write that relied on what it read before GC doomed it finishes within one
request, far shorter than the grace period, so the run that would delete reads it first. New links
and objects are written by requests that finish within one request too, and an object needs two
sightings a grace period apart.

The cost: each repository is a query of its manifests, tags, recent tag history and links (pages,
strongly consistent), plus an S3 GET per manifest too large to be inline; a full run adds one scan
of links, manifests and uploads and one listing of the bucket. Every write is conditional. The run's
DynamoDB units and S3 requests are in its job record (observe.JobRecord) and its report.
"""
from __future__ import annotations
import dataclasses
import datetime
import json
import logging
import time
from typing import Dict, Iterable, List, Optional, Set, Tuple

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib.lifecycle import quota
from chalicelib.metadata import audit, keys, queries
from chalicelib.metadata.keys import CATALOG_PARTITION
from chalicelib.metadata.models import (BlobLink, GcCandidate, Manifest, Repository, Signature, Tag, TagEvent, Upload,
                                    transaction)
from chalicelib.oci import formats, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.policy.settings import SettingsService
from chalicelib.runtime.observe import JobRecord
from chalicelib.storage import paths

LOG = logging.getLogger("dockless.gc")
ACTOR = "gc"
CLAIM_POLL_SECONDS = 0.05
# A manifest's bytes live at its digest's key alone: its push waits for a run deleting them.
MANIFEST_CLAIM_WAIT_SECONDS = 10
UNREAD = object()  # claim_object: the caller has not read the candidate


@dataclasses.dataclass
class Report:
    repositories: int = 0
    manifests_doomed: int = 0
    manifests_deleted: int = 0
    links_doomed: int = 0
    links_deleted: int = 0
    signatures_deleted: int = 0
    objects_found: int = 0
    bytes_found: int = 0
    objects_candidates: int = 0
    objects_deleted: int = 0
    bytes_deleted: int = 0
    # What each namespace stores less (chalicelib/lifecycle/quota.py): the bytes of digests it links no more.
    namespace_bytes_freed: Dict[str, int] = dataclasses.field(default_factory=dict)
    would_delete: List[str] = dataclasses.field(default_factory=list)


def claim_object(key: str, wait_seconds: float = 0.0, candidate=UNREAD) -> bool:
    """A push is about to write or rely on an object at a content-addressed key: stop garbage
    collection from deleting it. False when a run is deleting it (and still is after `wait_seconds`:
    a run deletes the object and its candidate right after marking it). `candidate`: its
    GcCandidate (or None) as the caller read it, consistently, just before."""
    deadline = time.monotonic() + wait_seconds
    while True:
        if candidate is UNREAD:
            try:
                candidate = GcCandidate.get(key, consistent_read=True)
            except DoesNotExist:
                candidate = None
        if candidate is None:
            return True  # never found unreferenced, or deleted already (then the object is gone too)
        if not candidate.deleting:
            try:
                candidate.delete(condition=GcCandidate.deleting.does_not_exist())
                return True
            except DeleteError:
                pass  # marked meanwhile
        if time.monotonic() >= deadline:
            return False
        time.sleep(CLAIM_POLL_SECONDS)
        candidate = UNREAD


def revive(item, model) -> bool:
    """A push relies on a link or manifest: cancel garbage collection's plan for it. False when it
    is gone meanwhile (the caller treats it as missing)."""
    if item.doomed_at is None:
        return True
    try:
        item.update(actions=[model.doomed_at.remove()], condition=model.doomed_at == item.doomed_at)
        return True
    except UpdateError:
        return False


class GarbageCollector:
    def __init__(self, backend, dry_run: bool = False):
        self._backend = backend
        self._dry_run = dry_run
        self._grace = datetime.timedelta(seconds=backend.settings.gc_grace_seconds)
        self._link_grace = self._grace + datetime.timedelta(seconds=backend.settings.upload_ttl_seconds)
        self.report = Report()
        # The repository being collected: its cosign tags (spec.ATTACHED_TAG_RE), by the digest they name.
        self._attached_tags: Dict[str, List[Tag]] = {}

    def run(self, namespace: Optional[str] = None) -> dict:
        """One run over every repository (then the bucket), or over one namespace's repositories."""
        with JobRecord("gc") as record, audit.acting_as(ACTOR):
            self._now = self._backend.clock()
            for name in repositories(namespace):
                self.collect_repository(name)
            if namespace is None:
                self._sweep_objects()
            record.update(dataclasses.asdict(self.report), namespace=namespace, dry_run=self._dry_run)
            if not self._dry_run:
                self._record_run(namespace)
        return {key: record[key] for key in (*dataclasses.asdict(self.report), "dynamodb_read_units",
                                             "dynamodb_write_units", "s3_requests", "namespace", "dry_run")}

    def _record_run(self, namespace: Optional[str]) -> None:
        """The run's audit event (actor gc), from which `dockless usage` reports what was freed: the
        bucket's bytes before and after a full run, and what each namespace stores less."""
        report = self.report
        detail = dict(bytes_deleted=report.bytes_deleted, manifests_deleted=report.manifests_deleted,
                      links_deleted=report.links_deleted, objects_deleted=report.objects_deleted,
                      namespace_bytes_freed=report.namespace_bytes_freed, scope=namespace or "all")
        if namespace is None:
            detail.update(bucket_bytes_before=report.bytes_found,
                          bucket_bytes_after=report.bytes_found - report.bytes_deleted)
        self._backend.audit.record("gc.run", None, None, **detail)

    # --- one repository ------------------------------------------------------------------------

    def collect_repository(self, repo: str) -> None:
        self.report.repositories += 1
        manifests = {m.digest: m for m in queries.manifests(repo, consistent=True)}
        kept = self._kept(repo, manifests)
        remaining = []
        for digest, item in manifests.items():
            if digest in kept:
                self._spare(item, Manifest)
            elif self._doom_or_delete(item, Manifest, since=item.created_at, what=f"{repo}@{digest}") \
                    and self._delete_manifest(item):
                continue
            remaining.append(item)
        in_use = blobs_of(self._backend, [item for item in remaining if item.digest in kept])
        stored = in_use | blobs_of(self._backend, [item for item in remaining if item.digest not in kept])
        for link in queries.links(repo, consistent=True):
            if link.digest in in_use:
                self._spare(link, BlobLink)
            elif link.linked_at + self._link_grace > self._now:
                continue  # its manifest may be on its way
            elif self._doom_or_delete(link, BlobLink, since=link.linked_at, what=f"{repo} link {link.digest}") \
                    and link.digest not in stored:
                self._delete_link(link)

    def _kept(self, repo: str, manifests: Dict[str, Manifest]) -> Set[str]:
        window = SettingsService(self._backend).of(repo).time_machine()
        since = self._now - window
        tags = list(queries.tags(repo, consistent=True))
        attached = [tag for tag in tags if spec.ATTACHED_TAG_RE.fullmatch(tag.tag)]
        self._attached_tags = {}
        for tag in attached:
            self._attached_tags.setdefault(tag.digest, []).append(tag)
        kept = {tag.digest for tag in tags if not spec.ATTACHED_TAG_RE.fullmatch(tag.tag)}
        for event in TagEvent.query(repo, TagEvent.at >= keys.instant(since), consistent_read=True):
            kept.update(d for d in (event.previous, event.digest) if d)
        kept.update(digest for digest, item in manifests.items()
                    if item.created_at > since or (item.deleted_at is not None and item.deleted_at > since))
        return with_attached(manifests, reachable(manifests, kept), attached)

    def _due(self, item) -> bool:
        return item.doomed_at is not None and item.doomed_at + self._grace <= self._now

    def _doom_or_delete(self, item, model, since: datetime.datetime, what: str) -> bool:
        """Doom an item nothing keeps (conditional on it being unchanged since it was read: `since`
        is its push or link time), or say it is due for deletion."""
        if item.doomed_at is None:
            kind = "manifests_doomed" if model is Manifest else "links_doomed"
            setattr(self.report, kind, getattr(self.report, kind) + 1)
            if not self._dry_run:
                condition = getattr(model, "created_at" if model is Manifest else "linked_at") == since
                try:
                    item.update(actions=[model.doomed_at.set(self._now)],
                                condition=condition & model.doomed_at.does_not_exist())
                except UpdateError:
                    pass  # pushed or linked again meanwhile: kept
            return False
        if not self._due(item):
            return False
        if self._dry_run:
            self.report.would_delete.append(what)
            return False
        return True

    def _spare(self, item, model) -> None:
        """Something keeps it again: cancel a plan to delete it."""
        if item.doomed_at is not None and not self._dry_run:
            revive(item, model)

    def _delete_manifest(self, item: Manifest) -> bool:
        signatures = list(Signature.query(keys.image(item.repo, item.digest)))
        try:
            attached = self._attached_tags.get(item.digest, [])[:10]
            with transaction() as txn:
                txn.delete(item, condition=Manifest.doomed_at == item.doomed_at)
                for tag in attached:  # cosign's tags of a subject gone: they go with what they name
                    txn.delete(tag, condition=Tag.digest == item.digest)
                for signature in signatures[:80]:
                    txn.delete(signature)
                self._backend.audit.record_in(txn, "manifest.collect", item.repo, item.digest,
                                              signatures=len(signatures), **({"tags": [t.tag for t in attached]}
                                                                            if attached else {}))
        except TransactWriteError:
            return False  # revived meanwhile
        for signature in signatures[80:]:
            signature.delete()
        self.report.manifests_deleted += 1
        self.report.signatures_deleted += len(signatures)
        return True

    def _delete_link(self, link: BlobLink) -> None:
        freed = quota.delete_link(self._backend, link, condition=BlobLink.doomed_at == link.doomed_at)
        if freed is None:
            return  # revived meanwhile
        self.report.links_deleted += 1
        if freed:
            namespace = keys.namespace_of(link.repo)
            self.report.namespace_bytes_freed[namespace] = self.report.namespace_bytes_freed.get(namespace, 0) + freed

    # --- the bucket ----------------------------------------------------------------------------

    def _sweep_objects(self) -> None:
        """Objects only doomed links or manifests refer to become candidates; a candidate nothing at
        all refers to any more, found a grace period ago, is deleted."""
        live, referenced = set(), set()
        for link in BlobLink.scan(consistent_read=True):
            (live if link.doomed_at is None else referenced).add(link.location)
        for item in Manifest.scan(consistent_read=True, attributes_to_get=["digest", "doomed_at"]):
            (live if item.doomed_at is None else referenced).add(paths.manifest_key(item.digest))
        live.update(paths.direct_blob_key(upload.upload_id) for upload in Upload.scan(consistent_read=True))
        referenced |= live
        candidates = {item.key: item for item in GcCandidate.scan(consistent_read=True)}
        seen = set()
        for prefix in (paths.BLOBS_PREFIX, paths.MANIFESTS_PREFIX):
            for key, size in self._backend.objects.listing(prefix):
                seen.add(key)
                self.report.objects_found += 1
                self.report.bytes_found += size
                candidate = candidates.get(key)
                if key in live:
                    if candidate is not None and not self._dry_run:
                        candidate.delete()
                elif candidate is None:
                    self.report.objects_candidates += 1
                    if not self._dry_run:
                        try:
                            GcCandidate(key, seen_at=self._now, size=size).save(GcCandidate.key.does_not_exist())
                        except PutError:
                            pass  # another run found it first
                elif candidate.seen_at + self._grace <= self._now and key not in referenced:
                    self._delete_object(candidate, size)
        for key, candidate in candidates.items():
            if key not in seen and not self._dry_run:
                candidate.delete()

    def _delete_object(self, candidate: GcCandidate, size: int) -> None:
        """Mark the candidate as being deleted (a push that claims it first keeps the object), then
        delete the object and the candidate."""
        if self._dry_run:
            self.report.would_delete.append(candidate.key)
            return
        try:
            candidate.update(actions=[GcCandidate.deleting.set(True)],
                             condition=(GcCandidate.seen_at == candidate.seen_at)
                             & GcCandidate.deleting.does_not_exist())
        except UpdateError:
            return  # claimed by a push meanwhile
        self._backend.objects.delete(candidate.key)
        candidate.delete()
        self.report.objects_deleted += 1
        self.report.bytes_deleted += size


def repositories(namespace: Optional[str]) -> Iterable[str]:
    """Every repository of the catalog, or one namespace's, in name order."""
    condition = Repository.name.startswith(namespace + "/") if namespace else None
    return (repo.name for repo in Repository.query(CATALOG_PARTITION, condition))


def reachable(manifests: Dict[str, Manifest], roots: Iterable[str], referrers: bool = True) -> Set[str]:
    """The roots, and what they keep among a repository's manifests: index children and referrers
    (manifests whose `subject` is kept; without `referrers`, children only), transitively."""
    by_subject: Dict[str, List[str]] = {}
    for digest, item in manifests.items():
        if item.subject_key and referrers:
            by_subject.setdefault(item.subject_key.split("@", 1)[1], []).append(digest)
    kept = set(roots)
    pending = [digest for digest in kept if digest in manifests]
    while pending:
        digest = pending.pop()
        for reached in list(manifests[digest].children or ()) + by_subject.get(digest, []):
            if reached not in kept:
                kept.add(reached)
                if reached in manifests:
                    pending.append(reached)
    return kept


def immutable_holder(backend, repo: str, digest: str, settings, blob: bool = False) -> Optional[Tuple[str, str]]:
    """The immutable tag whose image includes `digest` (a manifest, its index's children
    included; with `blob`, a config or layer of them) and the digest it names, or None. What such
    a tag names is never deleted: its image would no longer pull."""
    held = {tag.tag: tag.digest for tag in Tag.query(repo, consistent_read=True) if settings.immutable(tag.tag)}
    if not held:
        return None
    manifests = {m.digest: m for m in Manifest.query(repo, consistent_read=True) if m.deleted_at is None}
    for tag, root in sorted(held.items()):
        image = reachable(manifests, [root], referrers=False)
        if digest in image or blob and digest in blobs_of(backend, [manifests[d] for d in image if d in manifests]):
            return tag, root
    return None


def blobs_of(backend, manifests: Iterable[Manifest]) -> Set[str]:
    """The config and layer digests of these manifests (their bytes: inline, or from S3)."""
    needed: Set[str] = set()
    for item in manifests:
        body = queries.manifest_body(backend.objects, item)
        try:
            needed.update(formats.parse_manifest(body, item.media_type).blobs)
        except RegistryError:
            LOG.error(json.dumps({"event": "gc_unreadable_manifest", "repo": item.repo, "digest": item.digest}))
            raise
    return needed


def with_attached(manifests: Dict[str, Manifest], kept: Set[str], tags: Iterable[Tag]) -> Set[str]:
    """`kept` (closed under reachable already) and what the tags among `tags` that belong to a
    kept manifest (spec.ATTACHED_TAG_RE) name, with what that reaches."""
    return reachable(manifests, kept | {tag.digest for tag in tags
                                        if spec.ATTACHED_TAG_RE.fullmatch(tag.tag) and subject_of(tag.tag) in kept})


def subject_of(attached_tag: str) -> str:
    """`sha256-<hex>.sig` -> `sha256:<hex>`, the manifest cosign's tag belongs to."""
    return attached_tag.split(".", 1)[0].replace("-", ":", 1)

