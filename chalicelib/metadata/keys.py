"""The DynamoDB key layout, drawn once (as storage/paths.py draws S3's). Only this module builds
composite keys; models.py declares the tables that hold them.

    table          partition key / sort key                     indexes
    repositories   "repo" / <name>
    blob-links     <repo> / <digest>                            by_digest: <digest> / <repo>
    manifests      <repo> / <digest>                            by_subject: <repo>@<subject> / <digest>
    tags           <repo> / <lower(tag)> <tag>
    tag-history    <repo> / <ISO time>#<request id>#<n>             by_tag: <repo>:<tag> / at
    uploads        <upload id>
    principals     <name>                                        (with the teams a member is in)
    credentials    <credential id>                              (the id part of dkl_<id>_<secret>)
    grants         ns:<namespace> | repo:<name> / user:<name> | team:<name> | *
    audit          <namespace>#<YYYY-MM-DD>#<shard> / <ISO time>#<request id>#<n>
                                                                by_actor: <actor>#<YYYY-MM-DD>#<shard> / at
    settings       ns:<namespace> | repo:<name>
    signing-keys   <namespace> / <fingerprint>
    signatures     <repo>@<digest> / <digest>@<id>
    gc-candidates  <S3 key>
    namespace-storage  <namespace> / # | <digest>
    advisories     <ecosystem>#<package name> / <advisory id>       (scanning/advisories.package_key)
    scans          <repo> / <digest>

A namespace is a repository name's first component. Grants and settings apply to a namespace or to
one repository; the resource key says which.
"""
from __future__ import annotations
import datetime
from typing import List, Optional

# Repository items share one partition so the catalog can be read in name order. Only repository
# creation writes there (a few writes per repository, ever), far below one partition's limits.
CATALOG_PARTITION = "repo"
# Each repository's edge item (models.Repository) has a partition of its own: tokens read it.
EDGE_PARTITION_PREFIX = "edge:"
# The namespace-storage entry holding a namespace's totals and quota (the others are digests).
STORAGE_TOTAL = "#"


def edge_partition(repository: str) -> str:
    return EDGE_PARTITION_PREFIX + repository


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def resource(name: str) -> str:
    """The grants' and settings' key of a namespace ("team") or a repository ("team/app")."""
    return ("repo:" if "/" in name else "ns:") + name


def resources_of(repository: str) -> List[str]:
    """The keys whose grants or settings apply to a repository: its namespace's, then its own."""
    return [resource(namespace_of(repository)), resource(repository)]


def image(repository: str, digest: str) -> str:
    """One manifest of one repository: the signatures' partition and a referrer's subject."""
    return f"{repository}@{digest}"


def tag_sort_key(tag: str) -> str:
    """The spec's case-insensitive tag order: a space sorts below every tag character, so "a" <
    "a-b", and "A" and "a" stay distinct."""
    return f"{tag.lower()} {tag}"


def tag_key(repository: str, tag: str) -> str:
    """One tag of one repository: its history's index key (a name never contains ":")."""
    return f"{repository}:{tag}"


def audit_partition(namespace: str, day: datetime.date, shard: int) -> str:
    """One namespace's events of one day, in one of its shards."""
    return f"{namespace}#{day.isoformat()}#{shard}"


def instant(time: datetime.datetime) -> str:
    """A time as event keys spell it (UTC, microseconds always), so keys sort in time order."""
    return time.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")


def event_at(time: datetime.datetime, request_id: str, sequence: int) -> str:
    """An audit or tag-history event's sort key: in time order, then by request and order within it."""
    return f"{instant(time)}#{request_id}#{sequence}"


def events_until(time: datetime.datetime) -> str:
    """A bound above every event key of this instant and below those of any later one."""
    return instant(time) + "~"


def actor_day(actor: str, day: datetime.date, shard: Optional[int] = None) -> str:
    """The by_actor index's partition: an actor's day, in the same shard as the event's own
    partition (one busy actor, `anonymous` pulling a public image, spreads over them all).
    Without a shard: the key of events written before the index was sharded."""
    return f"{actor}#{day.isoformat()}" + (f"#{shard}" if shard is not None else "")


def repository_of_resource(name: str) -> Optional[str]:
    """The repository a grant's or setting's name is ("team/app"), or None for a namespace ("team")."""
    return name if "/" in name else None


def digest_hex(digest: str) -> str:
    """The hex part of "sha256:<hex>": what S3's checksum and an object's key are built from."""
    return digest.split(":", 1)[1]
