"""What an image's files say is installed: each reader takes one file's bytes and names its
packages, each a Package with its package URL (purl spec, github.com/package-url/purl-spec).

    file                                                   reader     package
    var/lib/dpkg/status, var/lib/dpkg/status.d/*           dpkg       pkg:deb/<distro>/<name>@<version>?arch=…&upstream=<source>
    lib/apk/db/installed                                   apk        pkg:apk/<distro>/<name>@<version>?arch=…&origin=…
    var/lib/rpm/rpmdb.sqlite (RPM 4.16+'s SQLite database)  rpm        pkg:rpm/<distro>/<name>@<version>-<release>?arch=…&epoch=…
    **/*.dist-info/METADATA, **/*.egg-info/PKG-INFO        python     pkg:pypi/<normalised name>@<version>
    **/node_modules/[@scope/]<name>/package.json           npm        pkg:npm/[%40scope/]<name>@<version>
    a Go binary (its build information, Go 1.18+)          go         pkg:golang/<module>@<version>, and stdlib
    **/*.jar|war|ear: META-INF/maven/*/*/pom.properties    maven      pkg:maven/<group>/<artifact>@<version>
    etc/os-release, usr/lib/os-release                     (the distribution the OS packages belong to)

A Package's `name` is what advisories name: a Debian binary package's source package (Debian's
and Ubuntu's advisories are per source package), an Alpine package's origin, a Python project's
normalised name, a Maven `group:artifact`. Every reader is bounded by the caller's size limit per
file (layers.py) and refuses what it cannot parse with FileUnreadable, never more.
"""
from __future__ import annotations
import dataclasses
import io
import json
import re
import sqlite3
import struct
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional
from urllib.parse import quote


class FileUnreadable(ValueError):
    """A package database or metadata file that is not what its name says."""


@dataclasses.dataclass(frozen=True)
class Package:
    ecosystem: str  # OSV's ecosystem, without the release: Debian, Alpine, PyPI, npm, Go, Maven, …
    name: str  # what advisories name (see the module's docstring)
    version: str
    purl: str
    path: str = ""  # the file it was found in

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Distro:
    """What etc/os-release says: ID and VERSION_ID (e.g. debian, 12)."""
    id: str
    version_id: str = ""

    @property
    def ecosystem(self) -> Optional[str]:
        return DISTRO_ECOSYSTEMS.get(self.id)

    def release(self) -> str:
        """The release as OSV names it ("12", "22.04", "v3.19")."""
        if self.id == "alpine":
            return "v" + ".".join(self.version_id.split(".")[:2])
        return self.version_id


DISTRO_ECOSYSTEMS = {"debian": "Debian", "ubuntu": "Ubuntu", "alpine": "Alpine", "wolfi": "Wolfi",
                     "rhel": "Red Hat", "almalinux": "AlmaLinux", "rocky": "Rocky Linux",
                     "opensuse-leap": "openSUSE", "sles": "SUSE", "mageia": "Mageia", "openEuler": "openEuler"}


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def os_release(data: bytes) -> Distro:
    fields = {}
    for line in _text(data).splitlines():
        name, _, value = line.partition("=")
        if value:
            fields[name.strip()] = value.strip().strip("\"'")
    if not fields.get("ID"):
        raise FileUnreadable("os-release names no ID")
    return Distro(fields["ID"].lower(), fields.get("VERSION_ID", ""))


def _purl(kind: str, namespace: Optional[str], name: str, version: str, **qualifiers: Optional[str]) -> str:
    path = "/".join(quote(part, safe="") for part in (namespace.split("/") if namespace else []) + [name])
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in sorted(qualifiers.items()) if value)
    return f"pkg:{kind}/{path}@{quote(version, safe='+~:')}" + (f"?{query}" if query else "")


def _paragraphs(text: str) -> Iterable[Dict[str, str]]:
    """Debian control paragraphs: "Field: value" lines, continuation lines indented."""
    for block in re.split(r"\n\s*\n", text):
        fields, last = {}, None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue
            name, sep, value = line.partition(":")
            if sep:
                last = name.strip()
                fields[last] = value.strip()
        if fields:
            yield fields


# --- the readers: (path, bytes, distro) -> packages ------------------------------------------

def dpkg(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    found = []
    ecosystem = distro.ecosystem if distro and distro.ecosystem in ("Debian", "Ubuntu") else "Debian"
    namespace = distro.id if distro else "debian"
    for fields in _paragraphs(_text(data)):
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version:
            continue
        if "Status" in fields and not fields["Status"].endswith(" installed"):
            continue  # removed, with its configuration left
        source, source_version = name, version
        match = re.fullmatch(r"(\S+)(?:\s+\((\S+)\))?", fields.get("Source", ""))
        if match:
            source, source_version = match.group(1), match.group(2) or version
        distro_qualifier = f"{distro.id}-{distro.version_id}" if distro and distro.version_id else None
        found.append(Package(ecosystem, source, source_version,
                             _purl("deb", namespace, name, version, arch=fields.get("Architecture"),
                                   distro=distro_qualifier, upstream=source if source != name else None), path))
    if not found and data.strip():
        raise FileUnreadable("no package paragraphs")
    return found


def apk(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    found = []
    namespace = distro.id if distro else "alpine"
    ecosystem = distro.ecosystem if distro and distro.ecosystem in ("Alpine", "Wolfi") else "Alpine"
    for block in re.split(r"\n\s*\n", _text(data)):
        fields = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        if "P" in fields and "V" in fields:
            found.append(Package(ecosystem, fields.get("o") or fields["P"], fields["V"],
                                 _purl("apk", namespace, fields["P"], fields["V"], arch=fields.get("A"),
                                       origin=fields.get("o")), path))
    if not found and data.strip():
        raise FileUnreadable("no package blocks")
    return found


# RPM header tags (rpm's lib/rpmtag.h) and the types their values have.
_RPM_TAGS = {1000: "name", 1001: "version", 1002: "release", 1003: "epoch", 1022: "arch", 1044: "sourcerpm"}
_RPM_STRING, _RPM_INT32, _RPM_I18NSTRING = 6, 4, 9


def rpm_header(blob: bytes) -> Dict[str, object]:
    """The tags of one RPM header blob as rpmdb.sqlite stores it (index count, data length, the
    index entries of 16 bytes each, then the data)."""
    if len(blob) < 8:
        raise FileUnreadable("an RPM header shorter than its lengths")
    entries, length = struct.unpack(">II", blob[:8])
    start = 8 + 16 * entries
    if entries > 100_000 or start + length > len(blob):
        raise FileUnreadable("an RPM header longer than its bytes")
    store, values = blob[start:start + length], {}
    for index in range(entries):
        tag, kind, offset, count = struct.unpack(">IIiI", blob[8 + 16 * index:24 + 16 * index])
        if tag not in _RPM_TAGS or not 0 <= offset < len(store):
            continue
        if kind in (_RPM_STRING, _RPM_I18NSTRING):
            values[_RPM_TAGS[tag]] = _text(store[offset:store.index(b"\0", offset) if b"\0" in store[offset:] else None])
        elif kind == _RPM_INT32 and count >= 1 and offset + 4 <= len(store):
            values[_RPM_TAGS[tag]] = struct.unpack(">i", store[offset:offset + 4])[0]
    return values


def rpm(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    namespace = distro.id if distro else "redhat"
    ecosystem = (distro.ecosystem if distro and distro.ecosystem else "Red Hat")
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as copy:
        copy.write(data)
        copy.flush()
        try:
            database = sqlite3.connect(f"file:{copy.name}?mode=ro&immutable=1", uri=True)
            try:
                blobs = [row[0] for row in database.execute("SELECT blob FROM Packages")]
            finally:
                database.close()
        except sqlite3.Error as error:
            raise FileUnreadable(f"not an RPM SQLite database: {error}") from None
    found = []
    for blob in blobs:
        tags = rpm_header(bytes(blob))
        if not tags.get("name") or not tags.get("version") or tags["name"] == "gpg-pubkey":
            continue
        epoch = tags.get("epoch")
        version = f"{tags['version']}-{tags['release']}" if tags.get("release") else str(tags["version"])
        full = f"{epoch}:{version}" if epoch else version
        found.append(Package(ecosystem, str(tags["name"]), full,
                             _purl("rpm", namespace, str(tags["name"]), version, arch=tags.get("arch"),
                                   epoch=str(epoch) if epoch else None), path))
    return found


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    header = _text(data).split("\n\n", 1)[0]
    fields = {}
    for line in header.splitlines():
        name, sep, value = line.partition(":")
        if sep and not line[:1].isspace():
            fields.setdefault(name.strip().lower(), value.strip())
    if not fields.get("name") or not fields.get("version"):
        raise FileUnreadable("no Name or Version")
    name = _pep503(fields["name"])
    return [Package("PyPI", name, fields["version"], _purl("pypi", None, name, fields["version"]), path)]


def npm(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    try:
        document = json.loads(data)
    except ValueError:
        raise FileUnreadable("package.json is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str) \
            or not isinstance(document.get("version"), str):
        raise FileUnreadable("package.json without a name and version")
    name = document["name"]
    scope, _, bare = name.rpartition("/")
    return [Package("npm", name, document["version"], _purl("npm", scope or None, bare, document["version"]), path)]


def maven(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    """The pom.properties in a jar (its bytes: data)."""
    found = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for entry in archive.infolist():
                if not re.fullmatch(r"META-INF/maven/[^/]+/[^/]+/pom\.properties", entry.filename) \
                        or entry.file_size > 64 * 1024:
                    continue
                fields = {}
                for line in _text(archive.read(entry)).splitlines():
                    key, sep, value = line.partition("=")
                    if sep and not key.startswith("#"):
                        fields[key.strip()] = value.strip()
                if fields.get("groupId") and fields.get("artifactId") and fields.get("version"):
                    found.append(Package("Maven", f"{fields['groupId']}:{fields['artifactId']}", fields["version"],
                                         _purl("maven", fields["groupId"], fields["artifactId"], fields["version"]),
                                         path))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise FileUnreadable("not a zip archive") from None
    return found


# Go's build information (Go 1.18+, runtime/debug): this magic, a pointer size, flags (bit 1:
# the strings follow inline), then at offset 32 the Go version and the module information as
# varint-length strings; the module information sits between two 16-byte sentinels.
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
GO_BUILDINFO_BYTES = 32 + 16 * 1024 * 4  # the header and the strings that follow it, at most


def _uvarint(data: bytes, at: int):
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise FileUnreadable("a truncated varint")


def go(path: str, data: bytes, distro: Optional[Distro]) -> List[Package]:
    """The packages of a Go binary's build information (`data` starts at its magic)."""
    if not data.startswith(GO_BUILDINFO_MAGIC) or len(data) < 32 or not data[15] & 2:
        raise FileUnreadable("Go build information before Go 1.18 (not read)")
    length, at = _uvarint(data, 32)
    go_version = _text(data[at:at + length])
    length, at = _uvarint(data, at + length)
    modinfo = _text(data[at:at + length])[16:-16] if length >= 32 else ""
    found = []
    if go_version.startswith("go"):
        version = go_version[2:].split()[0]
        found.append(Package("Go", "stdlib", version, _purl("golang", None, "stdlib", version), path))
    replaced = {}
    lines = modinfo.splitlines()
    for previous, line in zip([""] + lines, lines):
        fields = line.split("\t")
        if fields[0] == "=>" and len(fields) >= 3:
            replaced[previous.split("\t")[1]] = fields[2]
    for line in lines:
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3 and fields[2] != "(devel)":
            module, version = fields[1], replaced.get(fields[1], fields[2])
            namespace, _, name = module.rpartition("/")
            found.append(Package("Go", module, version, _purl("golang", namespace or None, name, version), path))
    return found


# Which reader a file's path calls for, and at most how many bytes of it are read.
STATUS_MAX_BYTES = 32 * 1024 * 1024  # a dpkg status of 5,000 packages is about 10 MB
METADATA_MAX_BYTES = 1024 * 1024
ARCHIVE_MAX_BYTES = 256 * 1024 * 1024  # a jar is read whole (a zip is read from its end)
RPM_DATABASE_MAX_BYTES = 128 * 1024 * 1024  # read after the walk, with the distribution known

_READERS = (
    (re.compile(r"(?:usr/lib|etc)/os-release"), "os-release", METADATA_MAX_BYTES),
    (re.compile(r"var/lib/dpkg/status"), "dpkg", STATUS_MAX_BYTES),
    (re.compile(r"var/lib/dpkg/status\.d/[^/]+"), "dpkg", STATUS_MAX_BYTES),
    (re.compile(r"lib/apk/db/installed"), "apk", STATUS_MAX_BYTES),
    (re.compile(r"(?:usr/lib/sysimage|var/lib)/rpm/rpmdb\.sqlite"), "rpm", RPM_DATABASE_MAX_BYTES),
    (re.compile(r"(?:.*/)?[^/]+\.dist-info/METADATA"), "python", METADATA_MAX_BYTES),
    (re.compile(r"(?:.*/)?[^/]+\.egg-info(?:/PKG-INFO)?"), "python", METADATA_MAX_BYTES),
    (re.compile(r"(?:.*/)?node_modules/(?:@[^/]+/)?[^/@.][^/]*/package\.json"), "npm", METADATA_MAX_BYTES),
    (re.compile(r".+\.(?:jar|war|ear)"), "maven", ARCHIVE_MAX_BYTES),
)
READERS = {"dpkg": dpkg, "apk": apk, "rpm": rpm, "python": python, "npm": npm, "maven": maven, "go": go}


def reader_for(path: str):
    """(reader name, byte limit) for a file an inventory reads, or None."""
    for pattern, name, limit in _READERS:
        if pattern.fullmatch(path):
            return name, limit
    return None
