"""Mirror rules: what `dockless mirror sync` keeps copied, kept in the registry so that every runner
(a scheduled CI job, a laptop) applies the same list. The registry only stores them; the copying
is `dockless mirror`'s (dockless/images/mirror.py), on the runner, with the runner's credentials.

    name              a-z 0-9 . _ - (at most 64)
    source            host[:port]/name[:tag|@digest]: the image, or with `tags` the repository
    destination       host[:port]/name[:tag|@digest]
    tags              a tag pattern (* and ?; "*" for every tag), or absent: the source's one image
    with_signatures   copy each image's signatures too
    with_referrers    copy the artifacts that refer to each image too
    platform          absent: an index whole; "os/arch[/variant]": only that platform's image
"""
from __future__ import annotations
from pynamodb.exceptions import TransactWriteError

from chalicelib.metadata import audit
from chalicelib.metadata.models import failed_conditions, MirrorRule, transaction
from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError

RULES_MAX = 200


def as_dict(rule: MirrorRule) -> dict:
    return {"name": rule.name, "source": rule.source, "destination": rule.destination, "tags": rule.tags,
            "with_signatures": bool(rule.with_signatures), "with_referrers": bool(rule.with_referrers),
            "platform": rule.platform,
            "created_by": rule.created_by, "created_at": rule.created_at.isoformat()}


def rules() -> list:
    return sorted((as_dict(rule) for rule in MirrorRule.scan(limit=RULES_MAX)), key=lambda r: r["name"])


def put(backend, name: str, document: dict) -> dict:
    """Add or replace the rule `name`, audited in the same transaction."""
    if set(document) - {"source", "destination", "tags", "with_signatures", "with_referrers", "platform"}:
        raise RegistryError(errors.ADMIN_INVALID, "a rule has source, destination, tags, with_signatures, "
                                                  "with_referrers, platform")
    platform = document.get("platform")
    if platform is not None and not (isinstance(platform, str) and spec.PLATFORM_RE.fullmatch(platform)):
        raise RegistryError(errors.ADMIN_INVALID, "platform is os/arch[/variant], e.g. linux/amd64, or null (all)")
    source, destination = (_reference(document.get(key), key) for key in ("source", "destination"))
    tags = document.get("tags")
    if tags is not None and not (isinstance(tags, str) and spec.IMMUTABLE_TAG_PATTERN_RE.fullmatch(tags)):
        raise RegistryError(errors.ADMIN_INVALID, "tags is a tag pattern (* and ?), e.g. v* or *")
    if tags is not None and (source.digest or destination.digest):
        raise RegistryError(errors.ADMIN_INVALID, "a rule with tags names repositories, not digests")
    flags = {}
    for flag in ("with_signatures", "with_referrers"):
        flags[flag] = document.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise RegistryError(errors.ADMIN_INVALID, f"{flag} is true or false")
    rule = MirrorRule(name, source=document["source"], destination=document["destination"], tags=tags,
                      platform=platform,
                      created_by=audit.current().actor or "-", created_at=backend.clock(), **flags)
    with transaction() as txn:
        txn.save(rule)
        backend.audit.record_in(txn, "mirror.rule.set", None, None, **{k: v for k, v in as_dict(rule).items()
                                                                       if k not in ("created_by", "created_at")})
    return as_dict(rule)


def delete(backend, name: str) -> None:
    try:
        with transaction() as txn:
            txn.delete(MirrorRule(name), condition=MirrorRule.name.exists())
            backend.audit.record_in(txn, "mirror.rule.delete", None, None, name=name)
    except TransactWriteError as error:
        if not failed_conditions(error):
            raise  # not refused by a condition: busy, or wrong
        raise RegistryError(errors.ADMIN_UNKNOWN, {"rule": name}, message=f"no mirror rule {name!r}") from None


def _reference(value, what: str):
    from chalicelib.oci.reference import Reference  # admin requests only: kept out of the cold start
    if not isinstance(value, str):
        raise RegistryError(errors.ADMIN_INVALID, f"{what} is host[:port]/name[:tag|@digest]")
    try:
        return Reference.parse(value)
    except ValueError as error:
        raise RegistryError(errors.ADMIN_INVALID, f"{what}: {error}") from None
