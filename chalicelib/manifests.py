"""Manifests, tags, referrers and the catalog.

A manifest push is checked (grammar, size, digest, referenced blobs and child manifests present in
the repository) and, where the registry signs tag pushes, signed, before anything is written; then
its bytes go to S3 under their digest and the manifest item, the tag move, the registry's
signature and the repository's catalog entry are one DynamoDB transaction: all of them, or none.
"""
import json
from typing import Iterable, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist

from chalicelib import audit, errors, spec, validate
from chalicelib.formats import ParsedManifest, parse_manifest
from chalicelib.errors import RegistryError
from chalicelib.meta import keys
from chalicelib.meta.keys import CATALOG_PARTITION, tag_sort_key
from chalicelib.meta.models import BlobLink, Manifest, Repository, Tag, touch_repository, transaction
from chalicelib.backend import Backend
from chalicelib.signing.service import SigningService, registry_signature
from chalicelib.storage import paths


class ManifestService:
    def __init__(self, backend: Backend):
        self._backend = backend
        self._objects = backend.objects

    def put(self, repo: str, reference: str, body: bytes, content_type: Optional[str]) -> ParsedManifest:
        manifest = parse_manifest(body, content_type)
        if validate.is_digest(reference) and reference != manifest.digest:
            raise RegistryError(errors.DIGEST_INVALID,
                                {"reference": reference, "actual": manifest.digest})
        self._require_present(BlobLink, repo, manifest.blobs)
        self._require_present(Manifest, repo, manifest.children)
        tag = None if validate.is_digest(reference) else reference
        signature = registry_signature(self._backend, repo, manifest.digest, tag) \
            if tag and SigningService(self._backend).settings(repo).auto_sign else None
        self._objects.put(paths.manifest_key(manifest.digest), body, content_type=manifest.media_type,
                          sha256_hex=keys.digest_hex(manifest.digest))
        now = self._backend.clock()
        item = Manifest(repo, manifest.digest, media_type=manifest.media_type, size=len(body),
                        body=body if len(body) <= spec.MANIFEST_INLINE_MAX_BYTES else None,
                        artifact_type=manifest.artifact_type,
                        annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
                        subject_key=keys.image(repo, manifest.subject) if manifest.subject else None,
                        children=set(manifest.children) or None, created_at=now)
        previous = None
        if tag:
            try:
                previous = Tag.get(repo, tag_sort_key(tag)).digest
            except DoesNotExist:
                pass
        with transaction() as txn:
            txn.save(item)
            self._backend.audit.record_in(txn, "manifest.push", repo, reference, digest=manifest.digest,
                            media_type=manifest.media_type)
            if tag:
                txn.save(Tag(repo, tag_sort_key(tag), tag=tag, digest=manifest.digest, updated_at=now))
                if previous is not None and previous != manifest.digest:
                    self._backend.audit.record_in(txn, "tag.move", repo, tag, previous=previous, digest=manifest.digest)
            if signature is not None:
                txn.save(signature)
                self._backend.audit.record_in(txn, "signature.add", repo, manifest.digest, signer=signature.signer,
                                automatic=True)
            touch_repository(txn, repo, now)
        return manifest

    @staticmethod
    def _require_present(model, repo: str, digests: Iterable[str]) -> None:
        wanted = sorted(set(digests))
        if not wanted:
            return
        found = {item.digest for item in model.batch_get([(repo, digest) for digest in wanted])}
        missing = [digest for digest in wanted if digest not in found]
        if missing:
            raise RegistryError(errors.MANIFEST_BLOB_UNKNOWN, {"missing": missing})

    def find(self, repo: str, reference: str) -> Manifest:
        """The manifest a tag or digest names: one read by digest, two by tag. A reference that
        is neither is unknown, as the reference registry answers GET, HEAD and DELETE."""
        return self.get(repo, self.digest_for(repo, _known_reference(reference)))

    def serve(self, repo: str, reference: str, may_push: bool) -> Manifest:
        """The manifest a GET or HEAD serves. In verified mode only what a trusted signature vouches
        for is served, except to a caller who may push to the repository (signing an existing image
        reads it first); a refusal is DENIED, with what is missing, and recorded."""
        manifest = self.find(repo, reference)
        if not may_push:
            tag = None if validate.is_digest(reference) else reference
            reason = SigningService(self._backend).verified_refusal(
                repo, manifest.digest, tag, lambda: self.parents(repo, manifest.digest))
            if reason:
                self._backend.audit.record("verified.refused", repo, reference, outcome=audit.DENIED,
                                           digest=manifest.digest)
                raise RegistryError(errors.DENIED, reason, message=reason)
        return manifest

    def digest_for(self, repo: str, reference: str) -> str:
        """The digest a (valid) reference names, if the repository has it: by digest no read."""
        if validate.is_digest(reference):
            return reference
        try:
            return Tag.get(repo, tag_sort_key(reference)).digest
        except DoesNotExist:
            raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": reference}) from None

    def get(self, repo: str, digest: str) -> Manifest:
        try:
            return Manifest.get(repo, digest)
        except DoesNotExist:
            raise RegistryError(errors.MANIFEST_UNKNOWN, {"digest": digest}) from None

    def body(self, manifest: Manifest) -> bytes:
        if manifest.body is not None:
            return manifest.body
        return self._objects.get(paths.manifest_key(manifest.digest))

    def parents(self, repo: str, digest: str) -> List[Manifest]:
        """Indexes of the repository that list this manifest as a child."""
        return list(Manifest.query(repo, filter_condition=Manifest.children.contains(digest)))

    def delete(self, repo: str, reference: str) -> None:
        """By tag: remove the tag. By digest: remove the manifest and every tag pointing at it."""
        if not validate.is_digest(_known_reference(reference)):
            try:
                tag = Tag.get(repo, tag_sort_key(reference))
            except DoesNotExist:
                raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": reference}) from None
            with transaction() as txn:
                txn.delete(tag)
                self._backend.audit.record_in(txn, "tag.delete", repo, reference, digest=tag.digest)
            return
        manifest = self.get(repo, reference)
        tags = [tag for tag in Tag.query(repo) if tag.digest == reference]
        items = [manifest] + tags
        room = spec.TRANSACT_MAX_ITEMS - 1  # each transaction also writes its audit event
        for start in range(0, len(items), room):
            batch = items[start:start + room]
            with transaction() as txn:
                for item in batch:
                    txn.delete(item)
                self._backend.audit.record_in(txn, "manifest.delete", repo, reference,
                                tags=[t.tag for t in batch if isinstance(t, Tag)])

    def tags(self, repo: str, limit: int, last: Optional[str]) -> Tuple[List[str], bool]:
        """One page of tags in the spec's order, and whether more follow."""
        self.require_repository(repo)
        condition = Tag.sort_key > tag_sort_key(last) if last else None
        page = [tag.tag for tag in Tag.query(repo, condition, limit=limit + 1)] if limit else []
        return page[:limit], len(page) > limit

    def referrers(self, repo: str, digest: str, artifact_type: Optional[str], limit: int,
                  last: Optional[str]) -> Tuple[List[dict], bool]:
        condition = Manifest.digest > last if last else None
        filter_condition = Manifest.artifact_type == artifact_type if artifact_type else None
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
        condition = Repository.name > last if last else None
        page = [repo.name for repo in Repository.query(CATALOG_PARTITION, condition, limit=limit + 1)] \
            if limit else []
        return page[:limit], len(page) > limit

    def require_repository(self, repo: str) -> None:
        try:
            Repository.get(CATALOG_PARTITION, repo)
        except DoesNotExist:
            raise RegistryError(errors.NAME_UNKNOWN, {"name": repo}) from None


def _known_reference(reference: str) -> str:
    """A tag or a digest; anything else names no manifest (GET, HEAD and DELETE: 404)."""
    try:
        return validate.reference(reference)
    except RegistryError:
        raise RegistryError(errors.MANIFEST_UNKNOWN, {"reference": reference[:200]}) from None
