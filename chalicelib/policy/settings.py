"""The settings of a namespace or one repository, and how the two combine for a repository:

    verified           on if on for the namespace or the repository (serve only signed manifests)
    auto_sign          on if on for either (the registry signs every tag push)
    immutable_tags     the patterns of both (`*` and `?` wildcards; `*` makes every tag immutable):
                       a matching tag never moves or goes away
    time_machine_days  the repository's, else the namespace's, else 14: how long a manifest a tag
                       named stays restorable after the tag moved or was deleted
    retention          the repository's rules, else the namespace's (chalicelib/lifecycle/retention.py)
    cache              the namespace's only: the registry it caches (chalicelib/pullthrough/proxy.py), or None
    refuse_severity    the stricter of both: serve no image with a finding at least this severe
                       (chalicelib/policy/vulnerabilities.py), except to a caller who may push
    accepted_risks     the namespace's only: advisories it accepts until a date, with a reason

Each change records who made it and when, per setting; `dockless repo show` prints them.
"""
from __future__ import annotations
import dataclasses
import datetime
import fnmatch
import json
from typing import FrozenSet, List, Optional, Tuple

from chalicelib.metadata import audit, keys
from chalicelib.metadata.models import RepositorySetting, read_together, transaction
from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.policy import vulnerabilities
from chalicelib.policy.cache import Upstream

FIELDS = ("verified", "auto_sign", "immutable_tags", "time_machine_days", "retention", "upstream", "refuse_severity")
# A setting left out of a change stays as it is; None (time_machine_days) means "inherit".
UNCHANGED = object()


RETENTION_RULES = ("keep_last", "keep_days", "untagged_days", "unpulled_days")


@dataclasses.dataclass(frozen=True)
class Retention:
    keep_last: Optional[int] = None
    keep_days: Optional[int] = None
    untagged_days: Optional[int] = None
    unpulled_days: Optional[int] = None
    exempt: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, document) -> Optional["Retention"]:
        """The rules as the API takes them ({rule: whole number ≥ 1 (keep_last ≥ 0)…, "exempt": [pattern]}),
        or None (no rules)."""
        if document is None:
            return None
        if not isinstance(document, dict) or set(document) - {*RETENTION_RULES, "exempt"}:
            raise RegistryError(errors.ADMIN_INVALID, f"retention takes {', '.join(RETENTION_RULES)} and exempt")
        for rule in RETENTION_RULES:
            value = document.get(rule)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 <= value <= spec.TIME_MACHINE_DAYS_MAX):
                raise RegistryError(errors.ADMIN_INVALID, f"{rule} is a whole number 0 … {spec.TIME_MACHINE_DAYS_MAX}")
        exempt = document.get("exempt") or []
        if not isinstance(exempt, list) or not all(isinstance(p, str) and spec.IMMUTABLE_TAG_PATTERN_RE.fullmatch(p)
                                                   for p in exempt) or len(exempt) > spec.IMMUTABLE_TAG_PATTERNS_MAX:
            raise RegistryError(errors.ADMIN_INVALID, "exempt is a list of tag patterns (* and ?)")
        rules = cls(**{rule: document.get(rule) for rule in RETENTION_RULES}, exempt=tuple(sorted(exempt)))
        return rules if rules.as_dict() != Retention().as_dict() else None

    def as_dict(self) -> dict:
        return {**{rule: getattr(self, rule) for rule in RETENTION_RULES}, "exempt": list(self.exempt)}

    def exempts(self, tag: str) -> bool:
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.exempt)


@dataclasses.dataclass(frozen=True)
class RepositorySettings:
    """What applies to one repository, its namespace's settings and its own combined."""
    verified: bool = False
    auto_sign: bool = False
    immutable_tags: FrozenSet[str] = frozenset()
    time_machine_days: int = spec.TIME_MACHINE_DAYS_DEFAULT
    retention: Optional[Retention] = None
    cache: Optional[Upstream] = None
    refuse_severity: Optional[str] = None
    accepted_risks: Tuple[Tuple[str, str], ...] = ()  # (advisory id, until: YYYY-MM-DD)

    def immutable(self, tag: str) -> bool:
        """Whether a pattern makes `tag` immutable; cosign's tags never are (spec.ATTACHED_TAG_RE)."""
        if spec.ATTACHED_TAG_RE.fullmatch(tag):
            return False
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.immutable_tags)

    def time_machine(self) -> datetime.timedelta:
        return datetime.timedelta(days=self.time_machine_days)


def items_of(repository: str) -> List[tuple]:
    """The keys of the items whose settings apply to a repository, for models.read_together: its
    namespace's, then its own (what `combine` takes)."""
    return [(RepositorySetting, (resource,)) for resource in keys.resources_of(repository)]


def combine(namespace: Optional[RepositorySetting], repository: Optional[RepositorySetting]) -> RepositorySettings:
    items = [item for item in (namespace, repository) if item is not None]
    days = next((item.time_machine_days for item in reversed(items) if item.time_machine_days is not None),
                spec.TIME_MACHINE_DAYS_DEFAULT)
    rules = next((item.retention for item in reversed(items) if item.retention), None)
    return RepositorySettings(verified=any(i.verified for i in items), auto_sign=any(i.auto_sign for i in items),
                              immutable_tags=frozenset().union(*(i.immutable_tags or () for i in items)),
                              time_machine_days=int(days),
                              retention=Retention.parse(json.loads(rules)) if rules else None,
                              cache=Upstream.from_json(namespace.upstream if namespace else None),
                              refuse_severity=vulnerabilities.strictest(i.refuse_severity for i in items),
                              accepted_risks=vulnerabilities.accepted_of(namespace))


def own(item: Optional[RepositorySetting]) -> dict:
    """The settings one namespace or repository sets itself (defaults where it sets none)."""
    item = item or RepositorySetting("")
    return {"verified": bool(item.verified), "auto_sign": bool(item.auto_sign),
            "immutable_tags": sorted(item.immutable_tags or ()),
            "time_machine_days": None if item.time_machine_days is None else int(item.time_machine_days),
            "retention": json.loads(item.retention) if item.retention else None,
            "upstream": Upstream.from_json(item.upstream).public() if item.upstream else None,
            "refuse_severity": item.refuse_severity}


def check_patterns(patterns) -> FrozenSet[str]:
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise RegistryError(errors.ADMIN_INVALID, "immutable_tags is a list of tag patterns")
    bad = [p for p in patterns if not spec.IMMUTABLE_TAG_PATTERN_RE.fullmatch(p)]
    if bad or len(patterns) > spec.IMMUTABLE_TAG_PATTERNS_MAX:
        raise RegistryError(errors.ADMIN_INVALID, f"immutable_tags: at most {spec.IMMUTABLE_TAG_PATTERNS_MAX} "
                                                  f"patterns of tag characters and * ?; not {bad[:3]}")
    return frozenset(patterns)


def check_days(days) -> Optional[int]:
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)
                             or not 0 <= days <= spec.TIME_MACHINE_DAYS_MAX):
        raise RegistryError(errors.ADMIN_INVALID, f"time_machine_days is 0 … {spec.TIME_MACHINE_DAYS_MAX} "
                                                  "(null: as the namespace, or 14)")
    return days


def _own_item(resource: str) -> RepositorySetting:
    """A namespace's or repository's settings item, read to be changed (a new one if it has none)."""
    key = keys.resource(resource)
    try:
        return RepositorySetting.get(key)
    except RepositorySetting.DoesNotExist:
        return RepositorySetting(key)


def _changes(item: Optional[RepositorySetting]) -> dict:
    """Who changed each setting of one item last, and when: {setting: {"by", "at"}}."""
    return json.loads(item.changes) if item and item.changes else {}


class SettingsService:
    def __init__(self, backend):
        self._backend = backend

    def _items(self, *resources: str) -> dict:
        found = read_together(*((RepositorySetting, (keys.resource(r),)) for r in resources))
        return dict(zip(resources, found))

    def of(self, repository: str) -> RepositorySettings:
        """What applies to a repository: one batch read of two items."""
        return combine(*read_together(*items_of(repository)))

    def show(self, resource: str) -> dict:
        """A namespace's or repository's own settings, who changed each last, and (for a
        repository) what applies to it with its namespace's."""
        inherited = None
        if keys.repository_of_resource(resource) is None:
            item = self._items(resource)[resource]
            applied = combine(item, None)
        else:
            items = self._items(keys.namespace_of(resource), resource)
            item, inherited = items[resource], items[keys.namespace_of(resource)]
            applied = combine(inherited, item)
        return {"resource": resource, "own": own(item), "changes": _changes(item),
                "namespace_changes": _changes(inherited),
                "applied": {**dataclasses.asdict(applied), "immutable_tags": sorted(applied.immutable_tags),
                            "retention": applied.retention.as_dict() if applied.retention else None,
                            "cache": applied.cache.public() if applied.cache else None,
                            "accepted_risks": [list(risk) for risk in applied.accepted_risks]}}

    def change(self, resource: str, **changes) -> dict:
        """Set some of FIELDS on a namespace or repository, recording who and when, audited in the
        same transaction."""
        changes = {name: value for name, value in changes.items() if value is not UNCHANGED}
        unknown = set(changes) - set(FIELDS)
        if unknown or not changes:
            raise RegistryError(errors.ADMIN_INVALID, f"change at least one of {', '.join(FIELDS)}")
        item = _own_item(resource)
        record = json.loads(item.changes) if item.changes else {}
        who = {"by": audit.current().actor or "-", "at": self._backend.clock().isoformat()}
        for name, value in changes.items():
            if name == "immutable_tags":
                value = set(value) or None
            elif name == "retention":
                value = json.dumps(value.as_dict(), sort_keys=True) if value else None
            elif name == "upstream":
                value = value.to_json() if value else None
            setattr(item, name, value)
            record[name] = who
        item.changes = json.dumps(record, sort_keys=True)
        self._save(item, resource)
        return self.show(resource)

    def _save(self, item: RepositorySetting, resource: str, action: str = "setting.change", **detail) -> None:
        with transaction() as txn:
            txn.save(item)
            self._backend.audit.record_in(txn, action, keys.repository_of_resource(resource), None,
                                          resource=resource, **(detail or own(item)))

    def accepted_risks(self, namespace: str) -> dict:
        """{advisory id: {"until", "reason", "by", "at"}} a namespace accepts."""
        item = self._items(namespace)[namespace]
        return json.loads(item.accepted_risks) if item and item.accepted_risks else {}

    def accept_risk(self, namespace: str, advisory_id: str, until: datetime.date, reason: str) -> dict:
        """Accept an advisory in a namespace's images until the end of `until` (verified mode's
        severity rule leaves it out), audited with its reason; again: the new date and reason."""
        if until < self._backend.clock().date():
            raise RegistryError(errors.ADMIN_INVALID, "until is today or later")
        item = _own_item(namespace)
        risks = json.loads(item.accepted_risks) if item.accepted_risks else {}
        if advisory_id not in risks and len(risks) >= vulnerabilities.ACCEPTED_MAX:
            raise RegistryError(errors.ADMIN_INVALID, f"a namespace accepts at most {vulnerabilities.ACCEPTED_MAX} advisories")
        risks[advisory_id] = {"until": until.isoformat(), "reason": reason, "by": audit.current().actor or "-",
                              "at": self._backend.clock().isoformat()}
        item.accepted_risks = json.dumps(risks, sort_keys=True)
        self._save(item, namespace, "risk.accept", namespace=namespace, advisory=advisory_id,
                   until=until.isoformat(), reason=reason)
        return risks[advisory_id]

    def withdraw_risk(self, namespace: str, advisory_id: str) -> None:
        """No longer accept an advisory (audited); ADMIN_UNKNOWN when it is not accepted."""
        item = _own_item(namespace)
        risks = json.loads(item.accepted_risks) if item.accepted_risks else {}
        if advisory_id not in risks:
            message = f"{namespace} does not accept {advisory_id}"
            raise RegistryError(errors.ADMIN_UNKNOWN, message, message=message)
        del risks[advisory_id]
        item.accepted_risks = json.dumps(risks, sort_keys=True) if risks else None
        self._save(item, namespace, "risk.withdraw", namespace=namespace, advisory=advisory_id)
