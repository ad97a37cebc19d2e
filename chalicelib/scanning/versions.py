"""Each ecosystem's version order, as its own tools sort versions, for matching advisories' ranges:

    dpkg     Debian and Ubuntu   [epoch:]upstream[-revision]; `~` before everything, even the end
                                 (Debian Policy 5.6.12, dpkg's verrevcmp)
    apk      Alpine              digits.digits…[letter][_suffix[N]…][-rN]; _alpha < _beta < _pre <
                                 _rc < (release) < _cvs < _svn < _git < _hg < _p (apk-tools' version.c)
    rpm      Red Hat and kin     [epoch:]version[-release]; alphanumeric segments, `~` before the end,
                                 `^` after it (rpm's rpmvercmp)
    pep440   PyPI                the `packaging` library's Version
    semver   npm, crates, Go     SemVer 2.0.0 §11 (a leading `v` and Go's `+incompatible` ignored)
    maven    Maven               ComparableVersion's order for the common shapes: numbers, then
                                 alpha < beta < milestone < rc < snapshot < (release) < sp

`key(order, version)` makes a sort key; versions of one order compare by their keys. A version
the order cannot read raises Unreadable: such a package matches only an advisory's explicit list.
"""
from __future__ import annotations
import functools
import re
from typing import Callable, Dict, List, Tuple


class Unreadable(ValueError):
    """A version its ecosystem's order cannot read."""


# --- dpkg ---------------------------------------------------------------------------------------

def _dpkg_order(character: str) -> int:
    if character == "~":
        return -1
    if character.isdigit():
        return 0
    if character.isalpha():
        return ord(character)
    return ord(character) + 256


def _verrevcmp(left: str, right: str) -> int:
    i = j = 0
    while i < len(left) or j < len(right):
        difference = 0
        while (i < len(left) and not left[i].isdigit()) or (j < len(right) and not right[j].isdigit()):
            a = _dpkg_order(left[i]) if i < len(left) else 0
            b = _dpkg_order(right[j]) if j < len(right) else 0
            if a != b:
                return a - b
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not difference:
                difference = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if difference:
            return difference
    return 0


_DPKG_RE = re.compile(r"(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?")


def _dpkg_parts(version: str) -> Tuple[int, str, str]:
    match = _DPKG_RE.fullmatch(version.strip())
    if not match:
        raise Unreadable(version)
    return int(match.group(1) or 0), match.group(2), match.group(3) or ""


def dpkg_compare(left: str, right: str) -> int:
    a, b = _dpkg_parts(left), _dpkg_parts(right)
    if a[0] != b[0]:
        return a[0] - b[0]
    return _verrevcmp(a[1], b[1]) or _verrevcmp(a[2], b[2])


# --- rpm ----------------------------------------------------------------------------------------

def _rpmvercmp(left: str, right: str) -> int:
    if left == right:
        return 0
    i = j = 0

    def at(text: str, index: int) -> str:
        return text[index] if index < len(text) else ""
    while i < len(left) or j < len(right):
        while i < len(left) and not left[i].isalnum() and left[i] not in "~^":
            i += 1
        while j < len(right) and not right[j].isalnum() and right[j] not in "~^":
            j += 1
        a, b = at(left, i), at(right, j)
        if "~" in (a, b):  # before everything, the end included
            if a != "~":
                return 1
            if b != "~":
                return -1
        elif "^" in (a, b):  # after the end, before everything else
            if not a:
                return -1
            if not b:
                return 1
            if a != "^":
                return 1
            if b != "^":
                return -1
        if "~" in (a, b) or "^" in (a, b):
            i, j = i + 1, j + 1
            continue
        if not (a and b):
            break
        numeric = a.isdigit()
        pattern = _DIGITS if numeric else _LETTERS
        a_segment, b_segment = pattern.match(left, i), pattern.match(right, j)
        if b_segment is None:
            return 1 if numeric else -1  # a number is newer than letters
        i, j = a_segment.end(), b_segment.end()
        a_text, b_text = a_segment.group(), b_segment.group()
        if numeric:
            a_text, b_text = int(a_text), int(b_text)
        if a_text != b_text:
            return 1 if a_text > b_text else -1
    if i >= len(left) and j >= len(right):
        return 0
    return -1 if i >= len(left) else 1


_DIGITS, _LETTERS = re.compile(r"\d+"), re.compile(r"[A-Za-z]+")


def _rpm_parts(version: str) -> Tuple[int, str, str]:
    version = version.strip()
    if not version:
        raise Unreadable(version)
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    if not epoch.isdigit():
        raise Unreadable(version)
    upstream, _, release = rest.partition("-")
    return int(epoch), upstream, release


def rpm_compare(left: str, right: str) -> int:
    a, b = _rpm_parts(left), _rpm_parts(right)
    if a[0] != b[0]:
        return a[0] - b[0]
    return _rpmvercmp(a[1], b[1]) or (_rpmvercmp(a[2], b[2]) if a[2] and b[2] else 0)


# --- apk ----------------------------------------------------------------------------------------

_APK_RE = re.compile(r"(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:-r(\d+))?")
_APK_SUFFIX_RANK = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}


def _apk_key(version: str) -> tuple:
    match = _APK_RE.fullmatch(version.strip())
    if not match:
        raise Unreadable(version)
    numbers = tuple(int(n) for n in match.group(1).split("."))
    suffixes = tuple((_APK_SUFFIX_RANK[name], int(number or 0))
                     for name, number in re.findall(r"_([a-z]+)(\d*)", match.group(3)))
    # A release sorts after its pre-releases and before its patches: (0, 0) stands for "no suffix".
    return numbers, match.group(2), suffixes + ((0, 0),), int(match.group(4) or 0)


def _apk_compare(left: str, right: str) -> int:
    a, b = _apk_key(left), _apk_key(right)
    for x, y in ((a[0], b[0]), (a[1], b[1]), (a[2], b[2]), (a[3], b[3])):
        if x != y:
            return -1 if x < y else 1
    return 0


# --- semver -------------------------------------------------------------------------------------

_SEMVER_RE = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def _semver_key(version: str) -> tuple:
    match = _SEMVER_RE.fullmatch(version.strip())
    if not match:
        raise Unreadable(version)
    core = tuple(int(part or 0) for part in match.group(1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return core, (1,)
    # Numeric identifiers sort below alphanumeric ones, numerically; fewer identifiers sort first.
    identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return core, (0, identifiers)


# --- maven --------------------------------------------------------------------------------------

_MAVEN_QUALIFIERS = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2, "rc": 3, "cr": 3,
                     "snapshot": 4, "": 5, "ga": 5, "final": 5, "release": 5, "sp": 6}


def _maven_parts(version: str) -> Tuple[List[int], List[tuple]]:
    """The leading numbers, then the rest as (0, qualifier rank, unknown qualifier) or (1, number)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if not match:
        raise Unreadable(version)
    rest = []
    for token in re.findall(r"\d+|[A-Za-z]+", version.strip()[match.end():].lower()):
        if token.isdigit():
            rest.append((1, int(token), ""))
        else:
            rank = _MAVEN_QUALIFIERS.get(token)
            rest.append((0, rank, "") if rank is not None else (0, 7, token))
    return [int(n) for n in match.group().split(".")], rest


def _maven_compare(left: str, right: str) -> int:
    (a_numbers, a_rest), (b_numbers, b_rest) = _maven_parts(left), _maven_parts(right)
    width = max(len(a_numbers), len(b_numbers))
    a_numbers, b_numbers = a_numbers + [0] * (width - len(a_numbers)), b_numbers + [0] * (width - len(b_numbers))
    if a_numbers != b_numbers:
        return -1 if a_numbers < b_numbers else 1
    for index in range(max(len(a_rest), len(b_rest))):
        x = a_rest[index] if index < len(a_rest) else None
        y = b_rest[index] if index < len(b_rest) else None
        # What one lacks is a release where the other has a qualifier, a 0 where it has a number.
        x = x or ((0, 5, "") if y[0] == 0 else (1, 0, ""))
        y = y or ((0, 5, "") if x[0] == 0 else (1, 0, ""))
        if x != y:
            return -1 if x < y else 1
    return 0


# --- pep 440 ------------------------------------------------------------------------------------

def _pep440_key(version: str):
    from packaging.version import InvalidVersion, Version
    try:
        return Version(version)
    except InvalidVersion:
        raise Unreadable(version) from None


def _by(compare: Callable[[str, str], int]) -> Callable[[str], object]:
    def key(version: str):
        compare(version, version)  # raises Unreadable for what the order cannot read
        return functools.cmp_to_key(compare)(version)
    return key


ORDERS: Dict[str, Callable[[str], object]] = {
    "dpkg": _by(dpkg_compare),
    "rpm": _by(rpm_compare),
    "apk": _by(_apk_compare),
    "semver": _semver_key,
    "pep440": _pep440_key,
    "maven": _by(_maven_compare),
}

# OSV's ecosystem (before any `:release`) -> its version order.
ECOSYSTEM_ORDER = {
    "Debian": "dpkg", "Ubuntu": "dpkg",
    "Alpine": "apk", "Wolfi": "apk", "Chainguard": "apk",
    "Red Hat": "rpm", "AlmaLinux": "rpm", "Rocky Linux": "rpm", "openSUSE": "rpm", "SUSE": "rpm",
    "Mageia": "rpm", "openEuler": "rpm",
    "PyPI": "pep440",
    "npm": "semver", "Go": "semver", "crates.io": "semver", "NuGet": "semver", "Packagist": "semver",
    "RubyGems": "semver", "Hex": "semver", "Pub": "semver",
    "Maven": "maven",
}


def key(order: str, version: str):
    """A sort key of `version` in `order` (ORDERS); Unreadable if the order cannot read it."""
    return ORDERS[order](version)


def order_of(ecosystem: str) -> str:
    """The version order of an OSV ecosystem ("Debian:12" -> "dpkg"); semver where none is known."""
    return ECOSYSTEM_ORDER.get(ecosystem.split(":", 1)[0], "semver")
