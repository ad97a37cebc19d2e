"""The registry's listings, read one way wherever they are needed: the catalog (all of it, one
namespace's, or a page after a name) and a repository's tags, manifests and blob links.

`consistent` asks DynamoDB for a strongly consistent read (garbage collection, a repository's
deletion and a refused push's clean-up, which must see every write before them); `fields` reads
only those attributes (usage's sizes).
"""
from __future__ import annotations
from typing import Iterator, List, Optional, Sequence

from chalicelib.metadata.keys import CATALOG_PARTITION, tag_sort_key
from chalicelib.metadata.models import BlobLink, Manifest, Repository, Tag
from chalicelib.storage import paths


def catalog(namespace: Optional[str] = None, after: Optional[str] = None, limit: Optional[int] = None) -> List[str]:
    """Repository names in order: of one namespace, or all; after a name; at most `limit`."""
    condition = None
    if namespace:
        condition = Repository.name.startswith(f"{namespace}/")
    if after:
        condition = Repository.name > after if condition is None else condition & (Repository.name > after)
    return [repo.name for repo in Repository.query(CATALOG_PARTITION, condition, limit=limit)]


def tags(repo: str, consistent: bool = False, after: Optional[str] = None,
         limit: Optional[int] = None) -> Iterator[Tag]:
    """A repository's tags in the spec's order (after a tag; at most `limit`)."""
    condition = Tag.sort_key > tag_sort_key(after) if after else None
    return Tag.query(repo, condition, consistent_read=consistent, limit=limit)


def manifests(repo: str, consistent: bool = False, fields: Optional[Sequence[str]] = None) -> Iterator[Manifest]:
    return Manifest.query(repo, consistent_read=consistent, attributes_to_get=fields)


def links(repo: str, consistent: bool = False, fields: Optional[Sequence[str]] = None) -> Iterator[BlobLink]:
    return BlobLink.query(repo, consistent_read=consistent, attributes_to_get=fields)


def holds_anything(repo: str) -> bool:
    """Whether a repository holds a manifest or a blob link, by consistent reads of one item each."""
    return any(True for _ in Manifest.query(repo, consistent_read=True, limit=1, attributes_to_get=["digest"])) \
        or any(True for _ in BlobLink.query(repo, consistent_read=True, limit=1, attributes_to_get=["digest"]))


def manifest_body(objects, manifest: Manifest) -> bytes:
    """A manifest's bytes: kept in its item when small, else in the bucket at its digest's key."""
    return manifest.body if manifest.body is not None else objects.get(paths.manifest_key(manifest.digest))

