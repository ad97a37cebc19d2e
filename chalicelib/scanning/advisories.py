"""Advisories in OSV's format (ossf.github.io/osv-schema), and which packages they affect.

An advisory names packages (`affected[].package`: ecosystem and name), each with ranges of
versions (`ranges[]` of type ECOSYSTEM or SEMVER: events introduced / fixed / last_affected /
limit; GIT ranges name commits, which an image does not carry) and explicit `versions`. The
registry keeps, per package, what each advisory says of it (`entries`: one per `affected` item
naming it); `affects` evaluates a version against them in the ecosystem's order (versions.py)
as OSV's evaluation describes: walking the sorted events, introduced makes a version affected,
fixed (at or below it) and last_affected (below it) make it no longer so, limit ends the range.

A distribution's ecosystem carries its release ("Debian:12", "Alpine:v3.19", "Ubuntu:22.04:LTS"):
an entry applies to an image of that release, or to any release where the image names none.

Severity: a CVSS v3 vector's base score (FIRST's CVSS v3.1 specification, §7), else what the
database says (GitHub's `database_specific.severity`, Ubuntu's and Debian's per-package
severity or urgency), else UNKNOWN.
"""
from __future__ import annotations
import dataclasses
import json
import math
import re
from typing import Dict, Iterable, List, Optional, Tuple

from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.scanning import versions
from chalicelib.scanning.packages import Package

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
ID_RE = spec.ADVISORY_ID_RE
NAME_MAX = 512
SUMMARY_MAX = 300
ENTRIES_MAX = 100  # `affected` items of one advisory naming one package
VERSIONS_MAX = 5000  # explicit versions kept per entry
ENTRIES_MAX_BYTES = 300_000  # what one advisory says of one package, stored in one item


def rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


# --- severity -----------------------------------------------------------------------------------

_CVSS3 = {"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}, "AC": {"L": 0.77, "H": 0.44},
          "UI": {"N": 0.85, "R": 0.62}, "C": {"H": 0.56, "L": 0.22, "N": 0.0}}
_PRIVILEGES = {("N", "U"): 0.85, ("L", "U"): 0.62, ("H", "U"): 0.27,
               ("N", "C"): 0.85, ("L", "C"): 0.68, ("H", "C"): 0.5}


def _roundup(value: float) -> float:
    whole = round(value * 100000)
    return whole / 100000.0 if whole % 10000 == 0 else (math.floor(whole / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> Optional[float]:
    """The base score of a CVSS 3.0/3.1 vector ("CVSS:3.1/AV:N/AC:L/..."), or None."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        scope = metrics["S"]
        impacts = [_CVSS3["C"][metrics[name]] for name in ("C", "I", "A")]
        exploitability = (8.22 * _CVSS3["AV"][metrics["AV"]] * _CVSS3["AC"][metrics["AC"]]
                          * _PRIVILEGES[(metrics["PR"], scope)] * _CVSS3["UI"][metrics["UI"]])
    except KeyError:
        return None
    base = 1 - (1 - impacts[0]) * (1 - impacts[1]) * (1 - impacts[2])
    if scope == "U":
        impact = 6.42 * base
    elif scope == "C":
        impact = 7.52 * (base - 0.029) - 3.25 * (base - 0.02) ** 15
    else:
        return None
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def rating(score: float) -> str:
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW" if score > 0 else "UNKNOWN"


_NAMED = {"critical": "CRITICAL", "high": "HIGH", "important": "HIGH", "moderate": "MEDIUM", "medium": "MEDIUM",
          "low": "LOW", "negligible": "LOW", "unimportant": "LOW"}


def severity_of(document: dict, affected: Optional[dict] = None) -> Tuple[str, Optional[float]]:
    """(rating, CVSS v3 base score or None) of an advisory, or of one affected entry of it."""
    for holder in ((affected or {}), document):
        for item in holder.get("severity") or []:
            if isinstance(item, dict) and item.get("type") == "CVSS_V3" and isinstance(item.get("score"), str):
                score = cvss3_score(item["score"])
                if score is not None:
                    return rating(score), score
    for holder in ((affected or {}).get("ecosystem_specific"), (affected or {}).get("database_specific"),
                   document.get("database_specific")):
        if isinstance(holder, dict):
            for field in ("severity", "urgency"):
                named = _NAMED.get(str(holder.get(field, "")).lower().split(" ")[0])
                if named:
                    return named, None
    return "UNKNOWN", None


# --- parsing ------------------------------------------------------------------------------------

def package_key(ecosystem: str, name: str) -> str:
    """The advisories table's partition: ecosystem without its release, and the name as
    advisories name it ("Debian#openssl", "PyPI#requests")."""
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        name = re.sub(r"[-_.]+", "-", name).lower()
    return f"{base}#{name}"


@dataclasses.dataclass
class Record:
    """What one advisory says of one package."""
    package: str  # package_key
    advisory_id: str
    entries: List[dict]  # {"ecosystem", "ranges", "versions", "severity", "score"}
    severity: str
    score: Optional[float]
    summary: str
    aliases: List[str]
    modified: str
    withdrawn: bool = False


def _invalid(message: str) -> RegistryError:
    return RegistryError(errors.ADMIN_INVALID, message)


def parse(document) -> List[Record]:
    """The records of one OSV advisory; ADMIN_INVALID (naming what is wrong) for what is not one."""
    if not isinstance(document, dict):
        raise _invalid("an advisory is a JSON object")
    advisory_id = document.get("id")
    if not isinstance(advisory_id, str) or not ID_RE.fullmatch(advisory_id):
        raise _invalid("an advisory's id is 1 to 128 of A-Z a-z 0-9 . _ : -")
    affected = document.get("affected") or []
    if not isinstance(affected, list):
        raise _invalid(f"{advisory_id}: affected is a list")
    severity, score = severity_of(document)
    summary = document.get("summary") or document.get("details") or ""
    aliases = [a for a in document.get("aliases") or [] if isinstance(a, str) and ID_RE.fullmatch(a)][:20]
    modified = document.get("modified") if isinstance(document.get("modified"), str) else ""
    by_package: Dict[str, Record] = {}
    for item in affected:
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict) or not isinstance(package.get("ecosystem"), str) \
                or not isinstance(package.get("name"), str) or not package["name"] \
                or len(package["name"]) > NAME_MAX or len(package["ecosystem"]) > 100:
            raise _invalid(f"{advisory_id}: each affected entry names a package (ecosystem, name)")
        ranges = []
        for given in item.get("ranges") or []:
            if not isinstance(given, dict) or not isinstance(given.get("events"), list):
                raise _invalid(f"{advisory_id}: a range has a type and events")
            if given.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            events = [{kind: str(value)} for event in given["events"] if isinstance(event, dict)
                      for kind, value in event.items()
                      if kind in ("introduced", "fixed", "last_affected", "limit") and isinstance(value, str)]
            ranges.append({"type": given["type"], "events": events})
        listed = [v for v in item.get("versions") or [] if isinstance(v, str)][:VERSIONS_MAX]
        entry_severity, entry_score = severity_of(document, item)
        key = package_key(package["ecosystem"], package["name"])
        record = by_package.setdefault(key, Record(key, advisory_id, [], severity, score, str(summary)[:SUMMARY_MAX],
                                                   aliases, modified, bool(document.get("withdrawn"))))
        if len(record.entries) < ENTRIES_MAX:
            record.entries.append({"ecosystem": package["ecosystem"], "ranges": ranges, "versions": listed,
                                   "severity": entry_severity, "score": entry_score})
    for record in by_package.values():
        if len(json.dumps(record.entries)) > ENTRIES_MAX_BYTES:
            for entry in record.entries:
                entry["versions"] = []  # the ranges say the same; an item holds at most 400 KB
        if len(json.dumps(record.entries)) > ENTRIES_MAX_BYTES:
            raise _invalid(f"{advisory_id}: what it says of {record.package} is over {ENTRIES_MAX_BYTES} bytes")
    return list(by_package.values())


# --- matching -----------------------------------------------------------------------------------

def _release_matches(ecosystem: str, release: str) -> bool:
    parts = [part for part in ecosystem.split(":")[1:] if part]
    if not parts or not release:
        return True
    return any(part == release or release.startswith(part + ".") or part == release.split(".")[0]
               for part in parts)


def _sorted_events(order: str, events: List[dict]) -> Optional[List[Tuple[object, str, str]]]:
    keyed = []
    for event in events:
        (kind, value), = event.items()
        if kind == "introduced" and value == "0":
            keyed.append(((0,), kind, value))
            continue
        try:
            keyed.append(((1, versions.key(order, value)), kind, value))
        except versions.Unreadable:
            return None
    try:
        return sorted(keyed, key=lambda event: event[0])
    except TypeError:
        return None


def affects(entry: dict, order: str, version: str) -> Tuple[bool, Optional[str]]:
    """Whether an entry (Record.entries) affects `version`, and the version that fixes it (the
    first fixed event above it), if any."""
    listed = version in (entry.get("versions") or ())
    try:
        installed = (1, versions.key(order, version))
    except versions.Unreadable:
        return listed, None
    for given in entry.get("ranges") or ():
        events = _sorted_events(order, given["events"])
        if events is None:
            continue
        affected, fixed = False, None
        for at, kind, value in events:
            if kind == "limit" and installed >= at:
                affected = False
                break
            if kind == "introduced" and installed >= at:
                affected, fixed = True, None
            elif kind == "fixed":
                if installed >= at:
                    affected = False
                elif affected and fixed is None:
                    fixed = value
            elif kind == "last_affected" and installed > at:
                affected = False
        if affected:
            return True, fixed
    return listed, None


@dataclasses.dataclass(frozen=True)
class Finding:
    advisory_id: str
    severity: str
    score: Optional[float]
    summary: str
    aliases: Tuple[str, ...]
    package: str
    ecosystem: str
    installed: str
    fixed: Optional[str]
    purl: str

    def as_dict(self) -> dict:
        return {"id": self.advisory_id, "severity": self.severity, "score": self.score, "summary": self.summary,
                "aliases": list(self.aliases), "package": self.package, "ecosystem": self.ecosystem,
                "installed": self.installed, "fixed": self.fixed, "purl": self.purl}

    @classmethod
    def from_dict(cls, document: dict) -> "Finding":
        return cls(document["id"], document["severity"], document.get("score"), document.get("summary") or "",
                   tuple(document.get("aliases") or ()), document["package"], document["ecosystem"],
                   document["installed"], document.get("fixed"), document["purl"])


def match(packages: Iterable[Package], release: str, records_of) -> List[Finding]:
    """What the advisories say of these packages: `records_of(package keys)` gives
    {package key: [Record]} (one read per key, whatever reads them). The most severe first."""
    packages = list(packages)
    wanted = sorted({package_key(p.ecosystem, p.name) for p in packages})
    records = records_of(wanted) if wanted else {}
    findings, seen = [], set()
    for package in packages:
        order = versions.order_of(package.ecosystem)
        for record in records.get(package_key(package.ecosystem, package.name), ()):
            if record.withdrawn or (record.advisory_id, package.purl) in seen:
                continue
            for entry in record.entries:
                if entry["ecosystem"].split(":", 1)[0] != package.ecosystem \
                        or not _release_matches(entry["ecosystem"], release):
                    continue
                hit, fixed = affects(entry, order, package.version)
                if hit:
                    seen.add((record.advisory_id, package.purl))
                    severity = entry["severity"] if entry["severity"] != "UNKNOWN" else record.severity
                    findings.append(Finding(record.advisory_id, severity, entry["score"] or record.score,
                                            record.summary, tuple(record.aliases), package.name, entry["ecosystem"],
                                            package.version, fixed, package.purl))
                    break
    findings.sort(key=lambda f: (-rank(f.severity), -(f.score or 0), f.advisory_id, f.purl))
    return findings


def summary(findings: Iterable[Finding]) -> Dict[str, int]:
    counts = {severity: 0 for severity in reversed(SEVERITIES)}
    for finding in findings:
        counts[finding.severity] += 1
    return counts
