"""pynamodb models: one table per concern. Each docstring states its keys and access patterns.

Table names, endpoint and region are not known at import time: `bind_models(settings)` points
every model at its table, once per process (see `chalicelib/backend.py`). Timestamps are UTC.
"""
from __future__ import annotations
import json
from typing import Callable, Dict, List, Optional, Tuple, Type

from pynamodb.attributes import (BinaryAttribute, BooleanAttribute, NumberAttribute,
                                 UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.metadata.keys import CATALOG_PARTITION
from chalicelib.runtime import retries
from chalicelib.runtime.config import Settings



class Repository(Model):
    """A repository that holds at least one blob or manifest; and, apart, what the edge may serve
    of it (chalicelib/access/edge.py).

    Keys: kind (CATALOG_PARTITION; keys.edge_partition(name) for the edge item) / name.
    Access: get by name (exists?); query in name order after a name (`_catalog` pagination); the
    edge item read with the grants when a token is issued.
    """

    class Meta:
        table_name = "repositories"

    kind = UnicodeAttribute(hash_key=True, default=CATALOG_PARTITION)
    name = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute()
    # The edge item: the entries (edge.entry) of the image manifest pushed last, and a version
    # each change of it raises (a push's write is conditioned on the version it read).
    edge_blobs = UnicodeSetAttribute(null=True)
    edge_version = NumberAttribute(null=True)


class BlobLink(Model):
    """Proof that a repository may serve a blob: its bytes were verified for an upload into it, or
    it was mounted from a repository that had such proof.

    Keys: repo / digest. Index `by_digest`: digest / repo, with location and verified (every
    repository linking a blob: where verified bytes already live, for dedup at completion, and for
    an online mark-and-sweep that must see links made during its grace period).
    Access: get by (repo, digest) — the one read of a blob GET/HEAD; batch get for manifest checks;
    scan for unverified links (the verification job; there are few).

    `verified` is False only for a direct multipart upload in s3-checksum mode, which S3 proves
    per part but not as a whole: such a link serves its own repository but is neither mounted
    into others nor used for dedup until the `verify_unproven_blobs` job has hashed it.
    """

    class Meta:
        table_name = "blob-links"

    class ByDigest(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_digest"
            projection = IncludeProjection(["location", "verified"])

        digest = UnicodeAttribute(hash_key=True)
        repo = UnicodeAttribute(range_key=True)

    repo = UnicodeAttribute(hash_key=True)
    digest = UnicodeAttribute(range_key=True)
    size = NumberAttribute()
    # The S3 key holding the verified bytes (storage/paths.py).
    location = UnicodeAttribute()
    verified = BooleanAttribute(default=True)
    linked_at = UTCDateTimeAttribute()
    # Set by garbage collection when no manifest needs the link; removed by a push that relies on
    # it (chalicelib/lifecycle/gc.py). The link is deleted a grace period later only if it is still set.
    doomed_at = UTCDateTimeAttribute(null=True)
    by_digest = ByDigest()


class Manifest(Model):
    """A manifest pushed to a repository, with the media type it was pushed with.

    Keys: repo / digest. Index `by_subject`: subject_key ("<repo>@<subject digest>") / digest, for
    the referrers API. Access: get by (repo, digest); batch get for an index's children; query by
    subject.
    """

    class Meta:
        table_name = "manifests"

    class BySubject(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_subject"
            projection = AllProjection()

        subject_key = UnicodeAttribute(hash_key=True)
        digest = UnicodeAttribute(range_key=True)

    repo = UnicodeAttribute(hash_key=True)
    digest = UnicodeAttribute(range_key=True)
    media_type = UnicodeAttribute()
    size = NumberAttribute()
    # The bytes exactly as pushed, when small enough to live in the item; always also in S3.
    body = BinaryAttribute(null=True, legacy_encoding=False)
    artifact_type = UnicodeAttribute(null=True)
    annotations = UnicodeAttribute(null=True)  # JSON text of the manifest's annotations
    subject_key = UnicodeAttribute(null=True)
    # An index's child manifests: verified mode serves a child that a signed index references.
    children = UnicodeSetAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    # Set by a DELETE by digest: the manifest is gone for every reader, but a restore may bring it
    # back within the repository's time-machine window (policy/settings.py).
    deleted_at = UTCDateTimeAttribute(null=True)
    # Set by garbage collection when nothing keeps the manifest; removed by a push or restore that
    # relies on it (chalicelib/lifecycle/gc.py). Deleted a grace period later only if it is still set.
    doomed_at = UTCDateTimeAttribute(null=True)
    # When a GET last served it, written at most once a day (retention's unpulled_days).
    pulled_at = UTCDateTimeAttribute(null=True)
    by_subject = BySubject()


class Tag(Model):
    """A tag pointing at a manifest digest.

    Keys: repo / sort_key, where sort_key is `tag_sort_key(tag)`: the spec's case-insensitive
    lexical order, so a query returns tags in list order and `last` is a key condition.
    Access: get by (repo, tag); query a page after a tag; query all tags of a repo (delete by digest).
    """

    class Meta:
        table_name = "tags"

    repo = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    tag = UnicodeAttribute()
    digest = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    # A cache namespace's tag: when the upstream last confirmed it (chalicelib/pullthrough/proxy.py).
    checked_at = UTCDateTimeAttribute(null=True)


class TagEvent(Model):
    """One change of one tag: pushed (new), moved, deleted, restored, or expired by retention; who
    did it and from where. Written in the transaction that changes the tag.

    Keys: repo / at ("<ISO time>#<request id>#<n>"); by_tag: tag_key ("<repo>:<tag>") / at.
    Access: query a repository's or one tag's events newest first, a page after `at`; the newest
    event of a tag at or before a time (restore --at).
    """

    class Meta:
        table_name = "tag-history"

    class ByTag(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_tag"
            projection = AllProjection()

        tag_key = UnicodeAttribute(hash_key=True)
        at = UnicodeAttribute(range_key=True)

    repo = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)
    tag_key = UnicodeAttribute()
    tag = UnicodeAttribute()
    action = UnicodeAttribute()  # push | move | delete | restore | expire
    previous = UnicodeAttribute(null=True)  # the digest it named before (None: a new tag)
    digest = UnicodeAttribute(null=True)  # the digest it names after (None: deleted)
    time = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    credential_id = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    by_tag = ByTag()


class GcCandidate(Model):
    """An object of the bucket that garbage collection found unreferenced: deleted when a later run,
    a grace period on, finds it unreferenced still (chalicelib/lifecycle/gc.py).

    Keys: key (the S3 key). Access: a scan per full run; put, update, delete per unreferenced
    object; a consistent get when a push reuses an object at a content-addressed key (claim_object).
    """

    class Meta:
        table_name = "gc-candidates"

    key = UnicodeAttribute(hash_key=True)
    seen_at = UTCDateTimeAttribute()
    size = NumberAttribute()
    # Set when a run has decided to delete the object: a push may no longer claim it.
    deleting = BooleanAttribute(null=True)


class NamespaceStorage(Model):
    """What a namespace stores, counted as its quota counts it (chalicelib/lifecycle/quota.py): the distinct
    blobs its repositories link, each once.

    Keys: namespace / entry. Entry TOTAL ("#") holds the namespace's quota, the last alert level
    raised, and bytes counted under a quota; entries "#0" … "#7" (shards) hold bytes counted
    without one; the namespace stores the sum of all nine. Entry <digest> holds one distinct blob:
    its size and the repositories of the namespace that link it, with a version each change
    increments. Every blob link written or deleted updates these items in its own transaction, so
    they never disagree with the links.
    Access: batch get of TOTAL and one digest per link written or deleted (and of the shards,
    under a quota); get TOTAL on a manifest PUT and for `dockless usage`, with the shards.
    """

    class Meta:
        table_name = "namespace-storage"

    namespace = UnicodeAttribute(hash_key=True)
    entry = UnicodeAttribute(range_key=True)
    # TOTAL and its shards
    bytes = NumberAttribute(null=True)
    quota = NumberAttribute(null=True)
    alerted = NumberAttribute(null=True)  # the highest alert level (percent) raised since the quota was set
    # <digest>
    size = NumberAttribute(null=True)
    repositories = UnicodeSetAttribute(null=True)
    version = NumberAttribute(null=True)


class Upload(Model):
    """An upload session in progress.

    Keys: upload_id. Access: get by id on every PATCH/PUT/GET/DELETE of the session and on the
    direct-upload extension's calls; scan for
    expired sessions in the cleanup job. `expires_at` is the DynamoDB TTL attribute, but TTL deletes
    late (and the moto server never does), so code compares it with the clock itself.
    """

    class Meta:
        table_name = "uploads"

    upload_id = UnicodeAttribute(hash_key=True)
    repo = UnicodeAttribute()
    received = NumberAttribute(default=0)
    # Set when the session goes direct to the bucket (the direct-upload extension): the digest and
    # size the presigned URLs were signed for, and for multipart the S3 upload id and part size.
    digest = UnicodeAttribute(null=True)
    size = NumberAttribute(null=True)
    multipart_id = UnicodeAttribute(null=True)
    part_bytes = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute()  # epoch seconds


class Principal(Model):
    """A user, a robot account, or a team (which holds grants for its members).

    Keys: name. Access: get by name (in one batch read with the credential) when a credential is
    used; scan to list (admin, few items). `admin` principals may do everything everywhere (the
    bootstrap admin is one). `teams`: the teams a user or robot is a member of, so the grants that
    apply to a caller are known from the one read of its principal.
    """

    class Meta:
        table_name = "principals"

    name = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # "user" | "robot" | "team"
    admin = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    teams = UnicodeSetAttribute(null=True)
    # A robot's trusts of federated identities (chalicelib/access/federation.py), JSON: read with
    # the principal, so an ID token costs the token endpoint no other read.
    trusts = UnicodeAttribute(null=True)
    # A person who signs in through single sign-on (chalicelib/access/sso.py): "<issuer> <sub>",
    # the one identity this name stands for; their teams are what the provider's groups say.
    identity = UnicodeAttribute(null=True)


class Credential(Model):
    """An access token (what `docker login` takes as a password) or a refresh token (what docker
    stores after login). Only a hash of the secret is kept. A refresh token names the access
    credential it was exchanged for (`parent`): it works only while that one does, and expires
    no later.

    Keys: credential_id (the id part of `dkl_<id>_<secret>`). Access: get by id on every use
    (the token endpoint), update last use; scan by principal to list (admin).
    """

    class Meta:
        table_name = "credentials"

    credential_id = UnicodeAttribute(hash_key=True)
    principal = UnicodeAttribute()
    kind = UnicodeAttribute()  # "access" | "refresh"
    secret_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)  # epoch seconds; None: until revoked
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked = BooleanAttribute(default=False)
    description = UnicodeAttribute(null=True)
    parent = UnicodeAttribute(null=True)  # refresh tokens: the access credential's id


class Grant(Model):
    """A role on a namespace or a repository.

    Keys: resource ("ns:<namespace>" or "repo:<name>") / subject ("user:<name>" for a user or
    robot, "team:<name>", or "*" for anyone, which makes the resource public for pull). Access: batch get of the few keys that
    can apply to one principal and repository (token endpoint); query a resource (admin).
    """

    class Meta:
        table_name = "grants"

    resource = UnicodeAttribute(hash_key=True)
    subject = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute()  # "read" | "write" | "admin"
    granted_at = UTCDateTimeAttribute()


class AuditEvent(Model):
    """One decision or change: who, what, where from, outcome.

    Keys: partition ("<namespace>#<YYYY-MM-DD>#<shard>", the shard random in 0..AUDIT_SHARDS-1 so a
    busy namespace spreads over several partitions) / at ("<ISO time>#<request id>#<n>").
    Index `by_actor`: actor_day ("<actor>#<YYYY-MM-DD>#<shard>", the event's own shard) / at.
    Access: query a namespace's day-shards over a time range; query an actor's days; scan a time
    window for the export job. `expires_at` is the TTL attribute (the retention setting).
    Events without a repository use the namespace "_registry".
    """

    class Meta:
        table_name = "audit"

    class ByActor(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_actor"
            projection = AllProjection()

        actor_day = UnicodeAttribute(hash_key=True)
        at = UnicodeAttribute(range_key=True)

    partition = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)
    actor_day = UnicodeAttribute()
    time = UTCDateTimeAttribute()
    actor = UnicodeAttribute()  # principal name, or "-" for anonymous
    credential_id = UnicodeAttribute(null=True)
    source_ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    action = UnicodeAttribute()
    repository = UnicodeAttribute(null=True)
    reference = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()  # "allowed" | "denied" | "failed"
    request_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)  # JSON text
    expires_at = NumberAttribute()
    by_actor = ByActor()


class MirrorRule(Model):
    """An image (or a repository's tags) that `dockless mirror sync` keeps copied from one registry
    to another (chalicelib/pullthrough/mirror_rules.py). No credentials: the runner that applies the rules has
    its own.

    Keys: name. Access: put, get, delete one; scan all (a handful) for `dockless mirror rule list`
    and `dockless mirror sync`.
    """

    class Meta:
        table_name = "mirror-rules"

    name = UnicodeAttribute(hash_key=True)
    source = UnicodeAttribute()  # host[:port]/name[:tag|@digest]
    destination = UnicodeAttribute()
    tags = UnicodeAttribute(null=True)  # a tag pattern (* and ?); None: the source's one reference
    with_signatures = BooleanAttribute(default=False)
    with_referrers = BooleanAttribute(default=False)
    platform = UnicodeAttribute(null=True)  # os/arch[/variant]: that image of an index only
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class RepositorySetting(Model):
    """The settings of a namespace ("ns:<namespace>") or one repository ("repo:<name>"): verified
    mode, automatic signing, immutable-tag patterns, the time-machine window, retention, the
    registry a namespace caches; and who changed each last (`changes`, JSON: {setting: {"by", "at"}}). How the two items combine is
    policy.settings.RepositorySettings.

    Keys: resource. Access: batch get of the namespace's and the repository's items on a manifest
    GET/HEAD (verified mode, a cache's upstream), a tag push, delete or restore (automatic
    signing, immutable tags); the namespaces' items with the grants when access is decided.
    """

    class Meta:
        table_name = "settings"

    resource = UnicodeAttribute(hash_key=True)
    verified = BooleanAttribute(default=False)
    auto_sign = BooleanAttribute(default=False)
    immutable_tags = UnicodeSetAttribute(null=True)
    time_machine_days = NumberAttribute(null=True)
    retention = UnicodeAttribute(null=True)  # JSON of the retention rules (chalicelib/lifecycle/retention.py)
    upstream = UnicodeAttribute(null=True)  # a namespace's: JSON of the registry it caches (upstream.Upstream)
    refuse_severity = UnicodeAttribute(null=True)  # serve no image with a finding this severe (policy/vulnerabilities.py)
    accepted_risks = UnicodeAttribute(null=True)  # a namespace's: JSON {advisory id: {"until", "reason", "by", "at"}}
    changes = UnicodeAttribute(null=True)


class SigningKey(Model):
    """A public key trusted for a namespace's images (Apache KEYS style).

    Keys: namespace / fingerprint. Access: query a namespace (KEYS, listing, verification).
    """

    class Meta:
        table_name = "signing-keys"

    namespace = UnicodeAttribute(hash_key=True)
    fingerprint = UnicodeAttribute(range_key=True)
    armored = UnicodeAttribute()
    uids = UnicodeAttribute()  # JSON list
    algorithm = UnicodeAttribute()
    length = NumberAttribute()
    created = UnicodeAttribute(null=True)
    expires = UnicodeAttribute(null=True)
    capabilities = UnicodeAttribute()
    added_at = UTCDateTimeAttribute()
    # The repositories it is trusted for (JSON list of patterns, `*` any run; signing/service.py
    # `applies_to`), None: the whole namespace.
    repositories = UnicodeAttribute(null=True)


class Signature(Model):
    """An atomic signature of a manifest, bytes kept exactly as uploaded, with what it claims.
    Whether it counts is decided when it is used, by verifying it with the keys trusted then
    (signing/service.py Trust); nothing stored says "trusted".

    Keys: image ("<repo>@<digest>") / name ("<digest>@<id>"). Access: query an image's signatures
    (GET, verified mode); put with a condition on name (409 for a duplicate).
    """

    class Meta:
        table_name = "signatures"

    image = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)
    content = BinaryAttribute(legacy_encoding=False)
    # The primary key fingerprint if the signature verified when stored, else the key id it claims.
    signer = UnicodeAttribute(null=True)
    identity = UnicodeAttribute()  # critical.identity.docker-reference, as the payload claims it
    created_at = UTCDateTimeAttribute()


class SigninFailures(Model):
    """Failed console sign-ins in the current window, per principal name ("user:<name>") and per
    client address ("addr:<ip>"): chalicelib/access/throttle.py.

    Keys: subject. Access: batch get of a sign-in's two items before it is tried; update of both
    when it fails; delete of the principal's when it succeeds. `expires_at` is the TTL attribute
    (the window's end).
    """

    class Meta:
        table_name = "signin-failures"

    subject = UnicodeAttribute(hash_key=True)
    failures = NumberAttribute(default=0)
    window_start = NumberAttribute()  # epoch seconds
    expires_at = NumberAttribute()


class JobState(Model):
    """Each scheduled job's lease and progress (chalicelib/metadata/leases.py): one run at a time,
    and the next run goes on where the last one stopped.

    Keys: job. Access: a conditional update takes the lease (none held, or held past lease_until);
    updates conditioned on the holder keep it, save the cursor, give it back.
    """

    class Meta:
        table_name = "jobs"

    job = UnicodeAttribute(hash_key=True)
    holder = UnicodeAttribute(null=True)  # the run holding the lease
    lease_until = NumberAttribute(null=True)  # epoch seconds
    cursor = UnicodeAttribute(null=True)  # JSON: where the next run goes on
    epoch = NumberAttribute(null=True)  # the `advisories` item: how many imports changed them


class Webhook(Model):
    """A namespace's webhook (chalicelib/events/webhooks.py): where its events are delivered.

    Keys: namespace / webhook_id. Access: query by namespace when an event of it is dispatched
    (and to list); get by key to change or remove one. `secrets`: JSON list of {"secret":
    "whsec_…", "until": epoch seconds or null}, the newest first; an old one signs on until it is
    past `until` (rotation).
    """

    class Meta:
        table_name = "webhooks"

    namespace = UnicodeAttribute(hash_key=True)
    webhook_id = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute()
    events = UnicodeSetAttribute(null=True)  # the kinds it wants (events.cloudevents.KINDS); none: all
    secrets = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute(null=True)


class Delivery(Model):
    """One event's delivery to one webhook, and how its attempts went (chalicelib/events/delivery.py).

    Keys: webhook_id / delivery_key (`<queued time, epoch ms, 13 digits>.<message id>`: newest last). Access: put when
    queued, update after each attempt, query by webhook for its log (newest first), get to
    redeliver. `expires_at` is the TTL attribute (DELIVERY_LOG_DAYS after it was queued).
    """

    class Meta:
        table_name = "webhook-deliveries"

    webhook_id = UnicodeAttribute(hash_key=True)
    delivery_key = UnicodeAttribute(range_key=True)
    message_id = UnicodeAttribute()
    namespace = UnicodeAttribute()
    event_type = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    body = UnicodeAttribute()  # the CloudEvent, exactly as signed and sent
    status = UnicodeAttribute()  # queued | delivered | retrying | failed (gave up)
    attempts = NumberAttribute(default=0)
    last_status = NumberAttribute(null=True)  # the target's HTTP status
    last_error = UnicodeAttribute(null=True)
    last_attempt_at = UTCDateTimeAttribute(null=True)
    expires_at = NumberAttribute()


class Advisory(Model):
    """What one advisory says of one package (chalicelib/scanning/advisories.py), as imported.

    Keys: package (`<ecosystem>#<name>`, keys.advisory_package) / advisory_id. Access: a query
    per package an image holds when its findings are worked out; batch writes on import.
    `entries`: JSON list of the advisory's affected entries for the package (ecosystem with its
    release, ranges, versions, severity).
    """

    class Meta:
        table_name = "advisories"

    package = UnicodeAttribute(hash_key=True)
    advisory_id = UnicodeAttribute(range_key=True)
    entries = UnicodeAttribute()
    severity = UnicodeAttribute()
    score = NumberAttribute(null=True)
    summary = UnicodeAttribute(null=True)
    aliases = UnicodeSetAttribute(null=True)
    modified = UnicodeAttribute(null=True)
    withdrawn = BooleanAttribute(default=False)
    imported_at = UTCDateTimeAttribute()


class ImageScan(Model):
    """An image's inventory and findings (chalicelib/scanning/service.py).

    Keys: repo / digest. Access: get by key for `scan show`, the console, usage and verified
    mode's severity rule; put when a scan ends; a paged scan of the table when advisories change
    (each item's findings worked out again from its SBOM, never from its layers).
    `status`: pending | done | failed. `findings`: zlib-compressed JSON list (advisories.Finding);
    `summary`: JSON {severity: count}; `advisories_epoch`: the advisories' epoch they were
    worked out at (the jobs table's `advisories` item counts imports).
    """

    class Meta:
        table_name = "scans"

    repo = UnicodeAttribute(hash_key=True)
    digest = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    error = UnicodeAttribute(null=True)
    sbom_digest = UnicodeAttribute(null=True)  # the referrer whose document lists the packages
    sbom_source = UnicodeAttribute(null=True)  # generated | pushed
    package_count = NumberAttribute(default=0)
    distro = UnicodeAttribute(null=True)  # "<id> <version id>"
    findings = BinaryAttribute(null=True, legacy_encoding=False)
    summary = UnicodeAttribute(null=True)
    advisories_epoch = NumberAttribute(default=0)
    problems = UnicodeAttribute(null=True)  # JSON list: what the inventory could not read
    scanned_at = UTCDateTimeAttribute(null=True)
    matched_at = UTCDateTimeAttribute(null=True)


# Each model and the concern its table is named after ("<prefix>-<concern>").
TABLES: Dict[Type[Model], str] = {
    Repository: "repositories",
    BlobLink: "blob-links",
    Manifest: "manifests",
    Tag: "tags",
    TagEvent: "tag-history",
    Upload: "uploads",
    Principal: "principals",
    Credential: "credentials",
    Grant: "grants",
    AuditEvent: "audit",
    RepositorySetting: "settings",
    SigningKey: "signing-keys",
    Signature: "signatures",
    GcCandidate: "gc-candidates",
    NamespaceStorage: "namespace-storage",
    MirrorRule: "mirror-rules",
    SigninFailures: "signin-failures",
    JobState: "jobs",
    Webhook: "webhooks",
    Delivery: "webhook-deliveries",
    Advisory: "advisories",
    ImageScan: "scans",
}


# The DynamoDB TTL attribute (epoch seconds) of the tables that expire items; the code compares it
# with its clock too, since TTL deletes late.
TTL_ATTRIBUTES = {Upload: "expires_at", AuditEvent: "expires_at", SigninFailures: "expires_at", Delivery: "expires_at"}


def bind_models(settings: Settings) -> None:
    """Point every model at this deployment's tables, endpoint and region."""
    for model, concern in TABLES.items():
        model.Meta.table_name = settings.table_name(concern)
        model.Meta.host = settings.aws_endpoint_url
        model.Meta.region = settings.region
        model.Meta.max_retry_attempts = retries.MAX_ATTEMPTS - 1  # pynamodb counts retries, not tries
        model._connection = None
    global _connection
    _connection = None


_connection: Optional[Connection] = None
BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem


def _shared_connection() -> Connection:
    global _connection
    if _connection is None:
        _connection = Connection(region=Repository.Meta.region, host=Repository.Meta.host,
                                 max_retry_attempts=retries.MAX_ATTEMPTS - 1)
    return _connection


class Transaction(TransactWrite):
    """A TransactWrite that, once committed, runs what was asked to happen after it (`after`):
    the events of its changes are sent only when the changes are there. A refusal's reasons come
    in the order the writes were added (pynamodb sends condition checks, then deletes, puts and
    updates), so `failed_conditions` can name a write by its place."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._after: List[Callable[[], None]] = []
        self._added: List[Tuple[int, int]] = []  # (kind in the order sent, index among its kind)

    def after(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    def _sent(self) -> List[list]:
        return [self._condition_check_items, self._delete_items, self._put_items, self._update_items]

    def _add(self, kind: int) -> None:
        self._added.append((kind, len(self._sent()[kind])))

    def condition_check(self, *args, **kwargs):
        self._add(0)
        return super().condition_check(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._add(1)
        return super().delete(*args, **kwargs)

    def save(self, *args, **kwargs):
        self._add(2)
        return super().save(*args, **kwargs)

    def update(self, *args, **kwargs):
        self._add(3)
        return super().update(*args, **kwargs)

    def _commit(self):
        try:
            return super()._commit()
        except TransactWriteError as error:
            reasons = error.cancellation_reasons
            if len(reasons) == len(self._added):
                sizes = [len(items) for items in self._sent()]
                error.cause.cancellation_reasons = [reasons[sum(sizes[:kind]) + index] for kind, index in self._added]
            raise

    def __exit__(self, exc_type, exc_value, traceback):
        result = super().__exit__(exc_type, exc_value, traceback)
        if exc_type is None:
            for action in self._after:
                action()
        return result


def transaction() -> Transaction:
    """A TransactWrite on the bound tables' endpoint: all of its writes happen, or none."""
    return Transaction(connection=_shared_connection())


def read_together(*wanted: Tuple[Type[Model], tuple], consistent: bool = False) -> List[Optional[Model]]:
    """Items of several tables in one BatchGetItem call per 100 distinct keys (a model's own
    batch_get reads one table): for each (model, key) the item, or None. Nothing asked: no call."""
    where: Dict[tuple, List[int]] = {}
    distinct: List[Tuple[str, dict]] = []
    models = {}
    for position, (model, key) in enumerate(wanted):
        attributes = [model._hash_key_attribute(), model._range_key_attribute()]
        item = {attribute.attr_name: {attribute.attr_type: attribute.serialize(value)}
                for attribute, value in zip(attributes, key) if attribute is not None}
        table = model.Meta.table_name
        models[table] = model
        if _raw_key(table, item) not in where:  # asked twice (a one-component name's settings): read once
            distinct.append((table, item))
        where.setdefault(_raw_key(table, item), []).append(position)
    found: List[Optional[Model]] = [None] * len(wanted)
    for start in range(0, len(distinct), BATCH_GET_MAX_KEYS):
        request: Dict[str, dict] = {}
        for table, item in distinct[start:start + BATCH_GET_MAX_KEYS]:
            request.setdefault(table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(item)
        while request:
            answer = _shared_connection().dispatch("BatchGetItem", {"RequestItems": request})
            for table, items in answer.get("Responses", {}).items():
                names = request[table]["Keys"][0].keys()
                for raw in items:
                    for position in where[_raw_key(table, {name: raw[name] for name in names})]:
                        found[position] = models[table].from_raw_data(raw)
            request = answer.get("UnprocessedKeys") or {}
    return found


def _raw_key(table: str, item: dict) -> tuple:
    return (table, *sorted((name, json.dumps(value, sort_keys=True)) for name, value in item.items()))


def failed_conditions(error: TransactWriteError) -> List[int]:
    """The positions, in the order they were added, of a refused transaction's writes whose
    condition did not hold (a race or a refusal, not a failure)."""
    return [number for number, reason in enumerate(getattr(error, "cancellation_reasons", None) or [])
            if reason is not None and reason.code == "ConditionalCheckFailed"]


def keep_in_catalog(name: str, now) -> None:
    """After a write that left repository `name` holding a blob or a manifest: its catalog entry,
    created unless a consistent read shows it. Outside the write's transaction, so the pushes into
    one repository do not all name one item (DynamoDB cancels a transaction that names an item
    another holds) and a push reads the entry instead of writing it. A repository leaving the
    catalog meanwhile (`leave_catalog`) is put back: each side writes, then reads what the other
    writes, so one of them always sees the other."""
    try:
        Repository.get(CATALOG_PARTITION, name, consistent_read=True, attributes_to_get=["name"])
    except Repository.DoesNotExist:
        Repository(CATALOG_PARTITION, name).update(actions=[Repository.created_at.set(Repository.created_at | now)])


def leave_catalog(name: str, holds: Callable[[], bool], now) -> None:
    """Take repository `name` out of the catalog, then put it back if `holds()` (consistent reads,
    made after the delete) finds it holding something a racing push wrote meanwhile."""
    Repository(CATALOG_PARTITION, name).delete()
    if holds():
        keep_in_catalog(name, now)


def create_tables() -> None:
    """Create every table (on-demand) unless it exists: for the local stack and tests. Deployed
    tables come from infra/, with the same keys and indexes."""
    for model in TABLES:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
            if model in TTL_ATTRIBUTES:
                model._get_connection().connection.update_time_to_live(
                    model.Meta.table_name, TTL_ATTRIBUTES[model])
