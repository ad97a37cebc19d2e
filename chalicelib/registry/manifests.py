"""Manifests, tags, their history, referrers and the catalog.

A manifest push is checked (grammar, size, digest, referenced blobs and child manifests present in
the repository, the tag's immutability) and, where the registry signs tag pushes, signed, before
anything is written; then its bytes go to S3 under their digest and the manifest item, the tag
move with its history event, the registry's signature and the repository's catalog entry are one
DynamoDB transaction: all of them, or none. A tag write is conditional on what the tag named when
it was checked, so two pushes racing for one tag cannot move an immutable tag or lose history.

A manifest deleted by digest is marked deleted (gone for every reader) and stays restorable for the
repository's time-machine window; a restore writes the tag as a push would, checked the same way.
"""
from __future__ import annotations
import base64
import hashlib
import datetime
import json
import time
from typing import Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.access import edge
from chalicelib.backend import Backend
from chalicelib.lifecycle import gc, history, quota
from chalicelib.lifecycle.history import TagHistory
from chalicelib.metadata import audit, keys, queries
from chalicelib.metadata.keys import CATALOG_PARTITION, tag_sort_key
from chalicelib.metadata.models import (BlobLink, GcCandidate, ImageScan, Manifest, Repository, Tag, failed_conditions,
                                    keep_in_catalog, read_together, transaction)
from chalicelib.oci import errors, imagediff, jsondoc, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.formats import ParsedManifest, parse_manifest
from chalicelib.policy import vulnerabilities
from chalicelib.policy.settings import RepositorySettings, SettingsService, combine, items_of
from chalicelib.pullthrough.proxy import PullThrough
from chalicelib.registry.blobs import BlobService
from chalicelib.runtime import retries
from chalicelib.signing import cosign
from chalicelib.signing.service import SigningService, registry_cosign_key, registry_signature
from chalicelib.storage import paths

# How long a tag write keeps trying while other pushes of the tag win (well within API Gateway's
# 29 s): then the push is ordered before the last of them (ManifestService._write_tag).
TAG_RACE_SECONDS = 10


class ManifestService:
    def __init__(self, backend: Backend):
        self._backend = backend
        self._objects = backend.objects
        self._history = TagHistory(backend)
        # What a GET or HEAD answers with besides (a cache's stale tag): `serve` sets it.
        self.warning: Optional[str] = None

    def put(self, repo: str, reference: str, body: bytes, content_type: Optional[str]) -> ParsedManifest:
        manifest = parse_manifest(body, content_type)
        if validate.is_digest(reference) and reference != manifest.digest:
            raise RegistryError(errors.DIGEST_INVALID,
                                {"reference": reference, "actual": manifest.digest})
        tag = None if validate.is_digest(reference) else reference
        key = paths.manifest_key(manifest.digest)
        # Everything the checks need, in one consistent read (more than 100 keys: one per 100).
        blobs, children = sorted(set(manifest.blobs)), sorted(set(manifest.children))
        found = iter(read_together(
            *[(BlobLink, (repo, digest)) for digest in blobs], *[(Manifest, (repo, digest)) for digest in children],
            *items_of(repo), quota.total_key(repo), (GcCandidate, (key,)),
            *([(Tag, (repo, tag_sort_key(tag)))] if tag else []), edge.item_key(repo), consistent=True))
        links, child_items = [next(found) for _ in blobs], [next(found) for _ in children]
        settings = combine(next(found), next(found))
        total, candidate = next(found), next(found)
        current = getattr(next(found), "digest", None) if tag else None
        edge_item = next(found)
        if settings.cache is not None:
            message = settings.cache.refusal(keys.namespace_of(repo))
            raise RegistryError(errors.DENIED, message, message=message)
        self._require_found(BlobLink, blobs, links)
        self._require_found(Manifest, children, child_items)
        try:
            quota.require_within(repo, total)
        except RegistryError:
            BlobService(self._backend).abandon_push(repo)
            raise
        if tag:
            self._require_mutable(repo, tag, settings, current, manifest.digest)
        self._store(repo, reference, tag, manifest, body, settings, current, candidate)
        if manifest.artifact_type in vulnerabilities.IMAGE_CONFIGS and manifest.subject is None \
                and not spec.ATTACHED_TAG_RE.fullmatch(tag or ""):
            edge.remember(repo, links, edge_item)  # an image, not a signature or an SBOM beside one
        return manifest

    def store_cached(self, repo: str, tag: Optional[str], manifest: ParsedManifest, body: bytes,
                     current: Optional[str], **details) -> Manifest:
        """Store a manifest a cache namespace fetched from its upstream (chalicelib/pullthrough/proxy.py), and
        point `tag` at it if given (`current`: what the tag named when read). Its blobs and
        children are not checked: a cache fetches them when a client asks for them."""
        found = iter(read_together(*items_of(repo),
                                   (GcCandidate, (paths.manifest_key(manifest.digest),)), consistent=True))
        settings = combine(next(found), next(found))
        return self._store(repo, tag or manifest.digest, tag, manifest, body, settings, current, next(found),
                           **details)

    def _store(self, repo: str, reference: str, tag: Optional[str], manifest: ParsedManifest, body: bytes,
               settings: RepositorySettings, current: Optional[str], candidate: Optional[GcCandidate],
               **details) -> Manifest:
        """Write a checked manifest: its bytes, then its item, the tag (if any) and their audit
        events in one transaction (with the registry's signature where it signs tag pushes)."""
        key = paths.manifest_key(manifest.digest)
        # The tags cosign keeps beside a manifest are not signed: they hold signatures.
        signs = tag is not None and settings.auto_sign and not spec.ATTACHED_TAG_RE.fullmatch(tag)
        signature = registry_signature(self._backend, repo, manifest.digest, tag) if signs else None
        if signs:
            self._sign_in_cosign_format(repo, manifest.digest)
        if not gc.claim_object(key, gc.MANIFEST_CLAIM_WAIT_SECONDS, candidate):
            raise RegistryError(errors.TOOMANYREQUESTS, "garbage collection is deleting these bytes; push again")
        self._objects.put(key, body, content_type=manifest.media_type,
                          sha256_hex=keys.digest_hex(manifest.digest))
        now = self._backend.clock()
        item = Manifest(repo, manifest.digest, media_type=manifest.media_type, size=len(body),
                        body=body if len(body) <= spec.MANIFEST_INLINE_MAX_BYTES else None,
                        artifact_type=manifest.artifact_type,
                        annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
                        subject_key=keys.image(repo, manifest.subject) if manifest.subject else None,
                        children=set(manifest.children) or None, created_at=now)

        def write(txn, previous):
            txn.save(item)
            self._backend.audit.record_in(txn, "manifest.push", repo, reference, digest=manifest.digest,
                                          media_type=manifest.media_type, **details)
            if signature is not None:
                txn.save(signature)
                self._backend.audit.record_in(txn, "signature.add", repo, manifest.digest,
                                              signer=signature.signer, automatic=True)

        if tag:
            self._write_tag(repo, tag, manifest.digest, settings, write, history.PUSH, current)
        else:
            with transaction() as txn:
                write(txn, None)
        keep_in_catalog(repo, now)
        return item

    def _sign_in_cosign_format(self, repo: str, digest: str) -> None:
        """Where the registry has a cosign key: its signature of `digest` as `<host>/<repo>`, added
        to the `.sig` manifest cosign keeps beside it (made before the image's tag moves, so a
        cluster verifying with stock cosign never sees the tag unsigned; one left behind by a push
        that then fails goes with its subject at garbage collection)."""
        key = registry_cosign_key(self._backend)
        if key is None:
            return
        payload = cosign.payload_for(digest, f"{urlsplit(self._backend.public_url()).netloc}/{repo}")
        signature_tag = cosign.signature_tag(digest)
        signed_digest, current = self.tag_digest(repo, signature_tag, consistent=True), {}
        if signed_digest is not None:
            try:
                current = json.loads(queries.manifest_body(self._objects, self.get(repo, signed_digest)))
            except (RegistryError, ValueError):
                current = {}  # gone meanwhile, or not JSON: a new `.sig` manifest replaces it
        current = current if isinstance(current, dict) else {}
        layers = [layer for layer in current.get("layers") or [] if isinstance(layer, dict)]
        payload_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        ours = cosign.entries(current, lambda blob: payload if blob == payload_digest else None)
        if any(cosign.signer(entry, {key.fingerprint: key.public_pem}) for entry in ours):
            return  # pushed again under another tag: signed already
        blobs = BlobService(self._backend)
        blobs.push_monolithic(repo, payload_digest, payload)
        blobs.push_monolithic(repo, COSIGN_CONFIG["digest"], b"{}")
        layers.append({"mediaType": cosign.SIMPLE_SIGNING, "digest": payload_digest, "size": len(payload),
                       "annotations": {cosign.SIGNATURE_ANNOTATION: base64.b64encode(key.sign(payload)).decode()}})
        document = {"schemaVersion": 2, "mediaType": spec.OCI_MANIFEST, "config": COSIGN_CONFIG, "layers": layers}
        self.put(repo, signature_tag, json.dumps(document).encode(), spec.OCI_MANIFEST)

    def restore(self, repo: str, tag: str, digest: Optional[str] = None,
                when: Optional[datetime.datetime] = None) -> str:
        """Point `tag` at `digest`, or at what it named at `when`: a manifest of the repository,
        deleted no longer ago than its time-machine window. Checked as a push is (blobs and
        children present, immutable tags), and refused in verified mode unless a trusted signature
        vouches for the digest under this tag (or the registry signs it). Returns the digest."""
        if digest is None:
            event = self._history.named_at(repo, tag, when)
            if event is None or event.digest is None:
                message = f"{repo}:{tag} named no manifest at {when.isoformat()}"
                raise RegistryError(errors.MANIFEST_UNKNOWN, message, message=message)
            digest = event.digest
        settings = SettingsService(self._backend).of(repo)
        item = self._restorable(repo, digest, settings)
        manifest = parse_manifest(self.body(item), item.media_type)
        self._require_present(BlobLink, repo, manifest.blobs)
        self._require_present(Manifest, repo, manifest.children)
        current = self.tag_digest(repo, tag)
        self._require_mutable(repo, tag, settings, current, digest)
        if settings.verified and not settings.auto_sign:
            reason = SigningService(self._backend).verified_refusal(repo, digest, tag, lambda: self.parents(repo, digest),
                                                                   settings)
            if reason:
                raise RegistryError(errors.DENIED, reason, message=f"cannot restore: {reason}")
        signature = registry_signature(self._backend, repo, digest, tag) if settings.auto_sign else None

        def write(txn, previous):
            # Undeleted, and no longer doomed by garbage collection, unless it collected it meanwhile.
            txn.update(item, actions=[Manifest.deleted_at.remove(), Manifest.doomed_at.remove()],
                       condition=Manifest.created_at == item.created_at)
            self._backend.audit.record_in(txn, "tag.restore", repo, tag, previous=previous, digest=digest)
            if signature is not None:
                txn.save(signature)
                self._backend.audit.record_in(txn, "signature.add", repo, digest, signer=signature.signer,
                                              automatic=True)

        try:
            self._write_tag(repo, tag, digest, settings, write, history.RESTORE, current)
        except TransactWriteError:
            self._restorable(repo, digest, settings)  # collected meanwhile: MANIFEST_UNKNOWN
            raise
        return digest

    def _restorable(self, repo: str, digest: str, settings: RepositorySettings) -> Manifest:
        try:
            item = Manifest.get(repo, digest)
        except DoesNotExist:
            raise RegistryError(errors.MANIFEST_UNKNOWN, {"digest": digest}) from None
        if item.deleted_at is not None and item.deleted_at + settings.time_machine() <= self._backend.clock():
            message = (f"{digest} was deleted from {repo} on {item.deleted_at:%Y-%m-%d}, more than the "
                       f"{settings.time_machine_days}-day time-machine window ago")
            raise RegistryError(errors.MANIFEST_UNKNOWN, message, message=message)
        return item

    def tag_digest(self, repo: str, tag: str, consistent: bool = False) -> Optional[str]:
        """The digest a tag names now, or None."""
        try:
            return Tag.get(repo, tag_sort_key(tag), consistent_read=consistent).digest
        except DoesNotExist:
            return None

    @staticmethod
    def _require_mutable(repo: str, tag: str, settings: RepositorySettings, current: Optional[str],
                         wanted: Optional[str]) -> None:
        """An immutable tag, once it names a manifest, never names another or goes away; pushing the
        digest it names again is fine."""
        if current is not None and current != wanted and settings.immutable(tag):
            message = f"tag {tag} is immutable in {repo}: push a new tag"
            raise RegistryError(errors.TAG_IMMUTABLE, {"tag": tag, "digest": current}, message=message)

    def _require_not_held(self, repo: str, digest: str, settings: RepositorySettings, blob: bool = False) -> None:
        """What an immutable tag names, its index's children (and, for a blob, their layers)
        included, is not deleted."""
        holder = gc.immutable_holder(self._backend, repo, digest, settings, blob) if settings.immutable_tags else None
        if holder is None:
            return
        tag, named = holder
        self._require_mutable(repo, tag, settings, named, None if named == digest else named)
        message = f"{digest} is part of {repo}:{tag}, which is immutable: it cannot be deleted"
        raise RegistryError(errors.TAG_IMMUTABLE, {"tag": tag, "digest": digest}, message=message)

    def delete_blob(self, repo: str, digest: str) -> None:
        """DELETE of a blob link, unless an immutable tag's image needs the blob."""
        self._require_not_held(repo, digest, SettingsService(self._backend).of(repo), blob=True)
        BlobService(self._backend).unlink(repo, digest)

    def _write_tag(self, repo: str, tag: str, digest: str, settings: RepositorySettings, write, cause: str,
                   previous: Optional[str]) -> None:
        """Point the tag at `digest` in one transaction with what `write(txn, previous)` adds, on the
        condition that the tag still names `previous` (what the caller read and checked). A lost
        race (the tag moved), or a transaction DynamoDB kept cancelling because others held the
        tag, is read (consistently), checked and tried again after a pause, for at most
        RACE_ATTEMPTS tries and TAG_RACE_SECONDS. A push that runs out while others moved the tag
        (many pushing one tag at once) is ordered just before the push that moved it last: what
        `write` adds is written, the tag stays as that push left it, and the audit trail says so
        (`tag.superseded`). A restore that runs out is busy, as is a push that met only conflicts."""
        started, checked = time.monotonic(), previous
        for attempt in range(retries.RACE_ATTEMPTS):
            retries.pause(attempt)
            self._require_mutable(repo, tag, settings, previous, digest)
            condition = Tag.sort_key.does_not_exist() if previous is None else Tag.digest == previous
            try:
                with transaction() as txn:
                    write(txn, previous)
                    txn.save(Tag(repo, tag_sort_key(tag), tag=tag, digest=digest, updated_at=self._backend.clock()),
                             condition=condition)
                    if previous != digest:
                        action = cause if cause == history.RESTORE else history.PUSH if previous is None else history.MOVE
                        self._history.record_in(txn, repo, tag, action, previous, digest)
                        if previous is not None and cause != history.RESTORE:
                            self._backend.audit.record_in(txn, "tag.move", repo, tag, previous=previous, digest=digest)
                return
            except TransactWriteError as error:
                lost = bool(failed_conditions(error))
                if not lost and not retries.busy(error):
                    raise
                now = self.tag_digest(repo, tag, consistent=True)
                if lost and now == previous:
                    raise  # another of the transaction's conditions failed, not the tag's
                previous = now  # another push moved the tag meanwhile, or holds it: check and try again
            if time.monotonic() - started > TAG_RACE_SECONDS:
                break
        if cause == history.RESTORE or previous is None or previous == checked:
            raise RegistryError(errors.STORAGE_BUSY if previous == checked else errors.TOOMANYREQUESTS, {"tag": tag},
                                message=f"too many pushes to {repo}:{tag} at once: push again")
        with transaction() as txn:
            write(txn, previous)
            self._backend.audit.record_in(txn, "tag.superseded", repo, tag, digest=digest, by=previous)

    @classmethod
    def _require_present(cls, model, repo: str, digests: Iterable[str]) -> None:
        wanted = sorted(set(digests))
        cls._require_found(model, wanted, read_together(*[(model, (repo, digest)) for digest in wanted],
                                                         consistent=True) if wanted else [])

    @staticmethod
    def _require_found(model, wanted: List[str], items: List) -> None:
        """Every wanted blob link or child manifest was read (consistently) and is not deleted;
        what garbage collection doomed is revived, as this push relies on it (chalicelib/lifecycle/gc.py)."""
        missing = [digest for digest, item in zip(wanted, items)
                   if item is None or getattr(item, "deleted_at", None) is not None or not gc.revive(item, model)]
        if missing:
            raise RegistryError(errors.MANIFEST_BLOB_UNKNOWN, {"missing": missing})

    def serve(self, repo: str, reference: str, may_push: bool) -> Manifest:
        """The manifest a GET or HEAD serves: one read by digest, two by tag, the repository's
        settings read with the first; a cache namespace's fetched from its upstream when due
        (chalicelib/pullthrough/proxy.py). In verified mode only what a trusted signature vouches for is
        served, except to a caller who may push to the repository (signing an existing image
        reads it first); a refusal is DENIED, with what is missing, and recorded."""
        reference = _known_reference(reference)
        by_digest = validate.is_digest(reference)
        first = (Manifest, (repo, reference)) if by_digest else (Tag, (repo, tag_sort_key(reference)))
        item, *settings = read_together(first, *items_of(repo))
        settings = combine(*settings)
        if settings.cache is not None:
            with PullThrough(self._backend, repo, settings.cache).open() as cache:
                manifest = cache.manifest(self, reference, item)
            self.warning = cache.warning
        elif by_digest:
            manifest = _present(item, reference)
        elif item is None:
            raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": reference})
        else:
            manifest = self.get(repo, item.digest)
        if may_push:
            return manifest
        reason = SigningService(self._backend).verified_refusal(
            repo, manifest.digest, None if by_digest else reference, lambda: self.parents(repo, manifest.digest),
            settings, lambda: self.body(manifest))
        if not reason and settings.refuse_severity and vulnerabilities.is_image_manifest(manifest):
            reason = vulnerabilities.refusal(_item_or_none(ImageScan, repo, manifest.digest), settings.refuse_severity,
                                             settings.accepted_risks, self._backend.clock().date())
        if reason:
            self._backend.audit.record("verified.refused", repo, reference, outcome=audit.DENIED,
                                       digest=manifest.digest)
            raise RegistryError(errors.DENIED, reason, message=reason)
        return manifest

    def get(self, repo: str, digest: str) -> Manifest:
        """A manifest of the repository; one deleted (kept for the time machine) is unknown."""
        try:
            return _present(Manifest.get(repo, digest), digest)
        except DoesNotExist:
            return _present(None, digest)

    def body(self, manifest: Manifest) -> bytes:
        return queries.manifest_body(self._objects, manifest)

    def parents(self, repo: str, digest: str) -> List[Manifest]:
        """Indexes of the repository that list this manifest as a child."""
        return list(Manifest.query(repo, filter_condition=Manifest.children.contains(digest)
                                   & Manifest.deleted_at.does_not_exist()))

    def delete(self, repo: str, reference: str) -> None:
        """By tag: remove the tag. By digest: mark the manifest deleted (restorable within the
        time-machine window) and remove every tag naming it. Immutable tags refuse both."""
        settings = SettingsService(self._backend).of(repo)
        if not validate.is_digest(_known_reference(reference)):
            tag = self._tag(repo, reference)
            self._require_mutable(repo, tag.tag, settings, tag.digest, None)
            try:
                with transaction() as txn:
                    txn.delete(tag, condition=Tag.digest == tag.digest)
                    self._history.record_in(txn, repo, tag.tag, history.DELETE, tag.digest, None)
                    self._backend.audit.record_in(txn, "tag.delete", repo, reference, digest=tag.digest)
            except TransactWriteError as error:
                if not failed_conditions(error):
                    raise
                raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": reference, "reason": "moved meanwhile"}) from None
            return
        manifest = self.get(repo, reference)
        self._require_not_held(repo, reference, settings)
        # A tag that moves to another image between the read of the tags and their delete fails its
        # condition: the tags are read again, as the delete must leave a tag moved meanwhile alone.
        for attempt in range(retries.RACE_ATTEMPTS):
            retries.pause(attempt)
            try:
                return self._delete_manifest(repo, manifest, settings)
            except TransactWriteError as error:
                if not failed_conditions(error):
                    raise
        message = f"the tags naming {reference} kept moving while it was deleted: try again"
        raise RegistryError(errors.TOOMANYREQUESTS, {"digest": reference}, message=message)

    def _delete_manifest(self, repo: str, manifest: Manifest, settings: RepositorySettings) -> None:
        """Mark the manifest deleted and delete every tag that names it, if none moves meanwhile."""
        reference = manifest.digest
        tags = [tag for tag in queries.tags(repo) if tag.digest == reference]
        for tag in tags:
            self._require_mutable(repo, tag.tag, settings, tag.digest, None)
        # Each tag is a delete and a history event; each transaction also writes its audit event.
        room = (spec.TRANSACT_MAX_ITEMS - 2) // 2
        batches = [tags[start:start + room] for start in range(0, len(tags), room)] or [[]]
        for number, batch in enumerate(batches):
            with transaction() as txn:
                for tag in batch:
                    txn.delete(tag, condition=Tag.digest == reference)
                    self._history.record_in(txn, repo, tag.tag, history.DELETE, reference, None)
                if number == len(batches) - 1:
                    txn.update(manifest, actions=[Manifest.deleted_at.set(self._backend.clock())])
                self._backend.audit.record_in(txn, "manifest.delete", repo, reference, tags=[t.tag for t in batch])

    def _tag(self, repo: str, tag: str) -> Tag:
        try:
            return Tag.get(repo, tag_sort_key(tag))
        except DoesNotExist:
            raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": tag}) from None

    def history(self, repo: str, tag: Optional[str], limit: int, last: Optional[str],
                where_from: bool) -> Tuple[List[dict], bool]:
        """The repository's (or one tag's) history, newest first; the credential and client address
        of each event only `where_from`."""
        self.require_repository(repo)
        events, more = self._history.page(repo, tag, limit, last)
        return [history.as_dict(event, where_from) for event in events], more

    def diff(self, repo: str, before: str, after: str, may_push: bool) -> dict:
        """What differs between two manifests of the repository, platform by platform: config and
        layers (imagediff); both are read as a GET would serve them (verified mode)."""
        sides = [self.serve(repo, reference, may_push) for reference in (before, after)]
        platforms = [self.platforms(repo, side) for side in sides]
        found = []
        for platform, digest_a, digest_b in imagediff.pair_platforms(*platforms):
            entry = {"platform": platform, "from": digest_a, "to": digest_b}
            if digest_a and digest_b:
                (config_a, layers_a), (config_b, layers_b) = (self.image(repo, d) for d in (digest_a, digest_b))
                entry.update(config=imagediff.config_changes(config_a, config_b),
                             layers=imagediff.layer_changes(layers_a, layers_b))
            found.append(entry)
        return {"from": {"reference": before, "digest": sides[0].digest, "mediaType": sides[0].media_type},
                "to": {"reference": after, "digest": sides[1].digest, "mediaType": sides[1].media_type},
                "platforms": found}

    def _document(self, item: Manifest) -> dict:
        return json.loads(self.body(item))

    def platforms(self, repo: str, item: Manifest) -> dict:
        """{platform: digest} of an index, or of an image (its config says which platform)."""
        document = self._document(item)
        if item.media_type in spec.INDEX_MEDIA_TYPES:
            return imagediff.index_platforms(document)
        return {imagediff.platform_of(self._config(repo, document)): item.digest}

    def _config(self, repo: str, document: dict) -> dict:
        config = jsondoc.parse_object(BlobService(self._backend).small_blob(repo, document["config"]["digest"]),
                                      errors.MANIFEST_INVALID, "the image config")
        return config

    def image(self, repo: str, digest: str) -> Tuple[dict, List[dict]]:
        """An image manifest's config (parsed) and layer descriptors."""
        document = self._document(self.get(repo, digest))
        if "layers" not in document:
            raise RegistryError(errors.MANIFEST_INVALID, f"{digest} is not an image manifest")
        return self._config(repo, document), document["layers"]

    def tags(self, repo: str, limit: int, last: Optional[str]) -> Tuple[List[str], bool]:
        """One page of tags in the spec's order, and whether more follow."""
        self.require_repository(repo)
        page = [tag.tag for tag in queries.tags(repo, after=last, limit=limit + 1)] if limit else []
        return page[:limit], len(page) > limit

    def referrers(self, repo: str, digest: str, artifact_type: Optional[str], limit: int,
                  last: Optional[str]) -> Tuple[List[dict], bool]:
        condition = Manifest.digest > last if last else None
        filter_condition = Manifest.deleted_at.does_not_exist()
        if artifact_type:
            filter_condition &= Manifest.artifact_type == artifact_type
        items = list(Manifest.by_subject.query(keys.image(repo, digest), condition, filter_condition,
                                               limit=limit + 1))
        descriptors = []
        for item in items[:limit]:
            descriptor = {"mediaType": item.media_type, "digest": item.digest, "size": item.size}
            if item.artifact_type:
                descriptor["artifactType"] = item.artifact_type
            if item.annotations:
                descriptor["annotations"] = json.loads(item.annotations)
            descriptors.append(descriptor)
        return descriptors, len(items) > limit

    def catalog(self, limit: int, last: Optional[str]) -> Tuple[List[str], bool]:
        page = queries.catalog(after=last, limit=limit + 1) if limit else []
        return page[:limit], len(page) > limit

    def require_repository(self, repo: str) -> None:
        try:
            Repository.get(CATALOG_PARTITION, repo)
        except DoesNotExist:
            raise RegistryError(errors.NAME_UNKNOWN, {"name": repo}) from None


# The config of the `.sig` manifests the registry writes: `{}`, as an image config.
COSIGN_CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json",
                 "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}


def _item_or_none(model, *key):
    try:
        return model.get(*key)
    except DoesNotExist:
        return None


def _present(manifest: Optional[Manifest], digest: str) -> Manifest:
    """A manifest read, unless it is absent or deleted (kept for the time machine): unknown."""
    if manifest is None or manifest.deleted_at is not None:
        raise RegistryError(errors.MANIFEST_UNKNOWN, {"digest": digest})
    return manifest


def _known_reference(reference: str) -> str:
    """A tag or a digest; anything else names no manifest (GET, HEAD and DELETE: 404)."""
    try:
        return validate.reference(reference)
    except RegistryError:
        raise RegistryError(errors.MANIFEST_UNKNOWN, {"reference": reference[:200]}) from None
