"""`dockless diff`: what changed between two images, platform by platform: config, layers and files.

Each side is an image of a registry (read through its API; layer bytes come straight from the
bucket through the presigned URL a blob GET redirects to), a local docker image (`docker:IMAGE`,
saved from the daemon) or an OCI layout (`oci:DIR[:TAG]`). Config and layer changes are the
registry's own comparison (chalicelib/oci/imagediff.py); the file level is read here.

Files: each side's layers are applied in order as a runtime applies them (OCI image-spec, "Applying
changesets"): `.wh.NAME` removes NAME and what is below it from the layers underneath, `.wh..wh..opq`
empties its directory of what the layers underneath put there, and an entry replaces what was at
its path. Layers are streamed (gzip, zstd or plain tar, told apart by their first bytes), every byte
checked against the layer's digest, and never held whole: memory grows with the number of paths,
not with their size. A layer both sides share is read once.
"""
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

from chalicelib.oci import imagediff, spec
from chalicelib.oci.formats import ParsedManifest, parse_manifest
from dockless.images import sources
from chalicelib.oci.reference import Reference
from chalicelib.oci.sizes import human as human_bytes

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
READ_SIZE = 1 << 20
KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file", tarfile.DIRTYPE: "dir",
         tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
         tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


class DiffError(ValueError):
    """An image that cannot be compared as it is (a layer that is not a tar, bytes that do not match)."""


@dataclasses.dataclass(frozen=True)
class FileEntry:
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    link: str = ""
    digest: str = ""

    def as_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size, "mode": f"{self.mode:04o}", "uid": self.uid, "gid": self.gid,
                "link": self.link or None, "digest": self.digest or None}


@dataclasses.dataclass
class Changeset:
    """One layer: what it puts (path -> entry) and what it removes from the layers underneath."""
    entries: Dict[str, FileEntry] = dataclasses.field(default_factory=dict)
    whiteouts: Set[str] = dataclasses.field(default_factory=set)
    opaque: Set[str] = dataclasses.field(default_factory=set)


# --- the two sides ---------------------------------------------------------------------------------

class RegistrySide:
    """An image of a registry: manifests and configs through its API, layers streamed from the
    bucket (the blob GET's redirect)."""

    def __init__(self, client, name: str, reference: str, label: str):
        self._client, self._name, self.label = client, name, label
        self.top = client.get_manifest(name, reference)

    def manifest(self, digest: str) -> ParsedManifest:
        return self.top if digest == self.top.digest else self._client.get_manifest(self._name, digest)

    @contextlib.contextmanager
    def open_blob(self, digest: str, size: int) -> Iterator[BinaryIO]:
        """The blob as it streams, never more than the `size` its descriptor says (a registry that
        sends more is cut there, and the digest check then refuses what arrived)."""
        with self._client.request("GET", f"/v2/{self._name}/blobs/{digest}", (200,), f"fetching {digest}",
                                  stream=True, timeout=300) as response:
            response.raw.decode_content = False
            yield _Slice(response.raw, size)


class LocalSide:
    """An image read by dockless/images/sources.py: an OCI layout, or what `docker save` wrote."""

    def __init__(self, image: sources.Image, label: str):
        self.label = label
        self._manifests = {m.digest: m for m in image.manifests}
        self._blobs = {b.digest: b for b in image.blobs}
        self.top = self.manifest(image.top.digest)

    def manifest(self, digest: str) -> ParsedManifest:
        found = self._manifests.get(digest)
        if found is None:
            raise DiffError(f"{self.label} does not hold the manifest {digest}")
        return parse_manifest(found.body, found.media_type)

    @contextlib.contextmanager
    def open_blob(self, digest: str, size: int) -> Iterator[BinaryIO]:
        blob = self._blobs.get(digest)
        if blob is None:
            raise DiffError(f"{self.label} does not hold the blob {digest}")
        with open(blob.path, "rb") as source:
            source.seek(blob.offset)
            yield _Slice(source, min(size, blob.size))


class _Slice(io.RawIOBase):
    def __init__(self, source: BinaryIO, size: int):
        self._source, self._left = source, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self._source.read(min(len(buffer), self._left))
        buffer[:len(piece)] = piece
        self._left -= len(piece)
        return len(piece)


class _Checked(io.RawIOBase):
    """A blob's bytes as they arrive, hashed; `finish()` reads what is left and checks the digest."""

    def __init__(self, source: BinaryIO, digest: str):
        self._source, self._digest, self._hash = source, digest, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self._source.read(len(buffer))
        buffer[:len(piece)] = piece
        self._hash.update(piece)
        return len(piece)

    def finish(self) -> None:
        while self.readinto(bytearray(READ_SIZE)):
            pass
        if "sha256:" + self._hash.hexdigest() != self._digest:
            raise DiffError(f"the layer {self._digest} arrived with other bytes")


def open_side(text: str, client_for, workdir: Path):
    """`docker:IMAGE`, `oci:DIR[:TAG]`, a registry's `host[:port]/NAME[:TAG|@DIGEST]`, or NAME[:TAG|@DIGEST]
    of the registry logged in to; `client_for(url)` gives the client of a registry (None: the default)."""
    kind, _, rest = text.partition(":")
    if kind == "docker" and rest:
        saved = workdir / f"side-{len(list(workdir.iterdir()))}"
        saved.mkdir()
        return LocalSide(sources.open_image(rest, saved), text)
    if kind == "oci" and rest:
        directory, _, tag = rest.partition(":")
        return LocalSide(sources.read_oci_layout(Path(directory), tag or None), text)
    try:
        parsed = Reference.parse(text)
    except ValueError:
        name, reference = _split_reference(text)
        return RegistrySide(client_for(None), name, reference, text)
    return RegistrySide(client_for(parsed.base_url), parsed.name, parsed.reference, text)


def _split_reference(text: str) -> Tuple[str, str]:
    name, at, digest = text.partition("@")
    if at:
        return name, digest
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return head, tag
    return name, "latest"


# --- reading layers --------------------------------------------------------------------------------

def _normal(path: str) -> str:
    """A tar member's path as the runtime resolves it: relative to the root, no `.`, no `..` above it."""
    path = posixpath.normpath("/" + path).lstrip("/")
    return "" if path == "." else path


def decompressed(stream: io.BufferedReader) -> BinaryIO:
    magic = stream.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if magic == ZSTD_MAGIC:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(stream, read_size=READ_SIZE)
    return stream


def read_changeset(source: BinaryIO, digest: str) -> Changeset:
    """One layer's changeset, its bytes streamed once and checked against its digest."""
    checked = _Checked(source, digest)
    changes = Changeset()
    try:
        with tarfile.open(fileobj=decompressed(io.BufferedReader(checked, READ_SIZE)), mode="r|") as tar:
            for member in tar:
                _take(tar, member, changes)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DiffError(f"the layer {digest} is not a tar archive (plain, gzip or zstd): {error}") from None
    checked.finish()
    return changes


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, changes: Changeset) -> None:
    path = _normal(member.name)
    directory, base = posixpath.split(path)
    if base == OPAQUE:
        changes.opaque.add(directory)
    elif base.startswith(WHITEOUT):
        changes.whiteouts.add(posixpath.join(directory, base[len(WHITEOUT):]))
    elif path:
        digest = ""
        if member.isreg():
            hasher = hashlib.sha256()
            content = tar.extractfile(member)
            for piece in iter(lambda: content.read(READ_SIZE), b""):
                hasher.update(piece)
            digest = "sha256:" + hasher.hexdigest()
        link = _normal(member.linkname) if member.islnk() else member.linkname if member.issym() else ""
        changes.entries[path] = FileEntry(KINDS.get(member.type, "other"), member.size if member.isreg() else 0,
                                          member.mode & 0o7777, member.uid, member.gid, link, digest)


def apply(tree: Dict[str, FileEntry], changes: Changeset) -> None:
    """Put one layer on the tree below it."""
    if changes.whiteouts or changes.opaque:
        for path in [p for p in tree if _removed(p, changes)]:
            del tree[path]
    tree.update(changes.entries)


def _removed(path: str, changes: Changeset) -> bool:
    if path in changes.whiteouts:
        return True
    while path:
        path = posixpath.dirname(path)
        if path in changes.whiteouts or path in changes.opaque:
            return True
    return False


class Layers:
    """Changesets by layer digest: a layer both sides have is read once."""

    def __init__(self):
        self._read: Dict[str, Changeset] = {}

    def tree(self, side, layers: List[dict]) -> Dict[str, FileEntry]:
        tree: Dict[str, FileEntry] = {}
        for layer in layers:
            digest = layer["digest"]
            if digest not in self._read:
                with side.open_blob(digest, layer.get("size", 0)) as source:
                    self._read[digest] = read_changeset(source, digest)
            apply(tree, self._read[digest])
        return tree


def file_changes(a: Dict[str, FileEntry], b: Dict[str, FileEntry]) -> dict:
    return {"added": [{"path": "/" + p, **b[p].as_dict()} for p in sorted(set(b) - set(a))],
            "removed": [{"path": "/" + p, **a[p].as_dict()} for p in sorted(set(a) - set(b))],
            "changed": [{"path": "/" + p, "from": a[p].as_dict(), "to": b[p].as_dict()}
                        for p in sorted(set(a) & set(b)) if a[p] != b[p]]}


# --- comparing -------------------------------------------------------------------------------------

def _config(side, manifest: ParsedManifest) -> dict:
    document = json.loads(manifest.body)
    with side.open_blob(document["config"]["digest"], document["config"]["size"]) as source:
        checked = _Checked(source, document["config"]["digest"])
        body = io.BufferedReader(checked).read(spec.MANIFEST_MAX_BYTES + 1)
        checked.finish()
    return json.loads(body)


def _platforms(side) -> Dict[str, str]:
    if side.top.media_type in spec.INDEX_MEDIA_TYPES:
        return imagediff.index_platforms(json.loads(side.top.body))
    return {imagediff.platform_of(_config(side, side.top)): side.top.digest}


def _image(side, digest: str) -> Tuple[dict, List[dict]]:
    manifest = side.manifest(digest)
    if manifest.media_type not in spec.IMAGE_MEDIA_TYPES:
        raise DiffError(f"{digest} in {side.label} is not an image manifest")
    return _config(side, manifest), json.loads(manifest.body)["layers"]


def compare(a, b, files: bool = True) -> dict:
    """Everything that differs between two sides, as `--json` prints it."""
    layers = Layers()
    platforms = []
    for platform, digest_a, digest_b in imagediff.pair_platforms(_platforms(a), _platforms(b)):
        entry = {"platform": platform, "from": digest_a, "to": digest_b}
        if digest_a and digest_b:
            (config_a, layers_a), (config_b, layers_b) = _image(a, digest_a), _image(b, digest_b)
            entry.update(config=imagediff.config_changes(config_a, config_b),
                         layers=imagediff.layer_changes(layers_a, layers_b))
            if files:
                entry["files"] = file_changes(layers.tree(a, layers_a), layers.tree(b, layers_b))
        platforms.append(entry)
    return {"from": {"reference": a.label, "digest": a.top.digest},
            "to": {"reference": b.label, "digest": b.top.digest}, "platforms": platforms}


# --- the text a person reads -----------------------------------------------------------------------

def render(answer: dict) -> List[str]:
    lines = [f"--- {answer['from']['reference']} {answer['from']['digest']}",
             f"+++ {answer['to']['reference']} {answer['to']['digest']}"]
    for platform in answer["platforms"]:
        lines.append(f"platform {platform['platform']}")
        if not (platform["from"] and platform["to"]):
            lines.append(f"  only in {'to' if platform['to'] else 'from'}: {platform['to'] or platform['from']}")
            continue
        lines += _config_lines(platform["config"]) + _layer_lines(platform["layers"])
        if "files" in platform:
            lines += _file_lines(platform["files"])
    return lines


def _shown(value) -> str:
    return "unset" if value is None else json.dumps(value)


def _config_lines(config: dict) -> List[str]:
    lines = [f"config: {'no changes' if not config else f'{len(config)} changed'}"]
    for field, change in config.items():
        if field == "history":
            before, after = change["from"], change["to"]
            common = 0
            while common < min(len(before), len(after)) and before[common] == after[common]:
                common += 1
            lines += [f"  history - {json.dumps(entry)}" for entry in before[common:]]
            lines += [f"  history + {json.dumps(entry)}" for entry in after[common:]]
        elif "from" in change:
            lines.append(f"  {field}: {_shown(change['from'])} -> {_shown(change['to'])}")
        else:
            lines += [f"  {field} {key}: {_shown(c['from'])} -> {_shown(c['to'])}" for key, c in change.items()]
    return lines


def _layer_lines(layers: dict) -> List[str]:
    def total(kind):
        return human_bytes(sum(layer["size"] for layer in layers[kind]))
    lines = [f"layers: {len(layers['shared'])} shared ({total('shared')}), {len(layers['removed'])} removed "
             f"({total('removed')}), {len(layers['added'])} added ({total('added')})"]
    lines += [f"  - {layer['digest']} {human_bytes(layer['size'])}" for layer in layers["removed"]]
    lines += [f"  + {layer['digest']} {human_bytes(layer['size'])}" for layer in layers["added"]]
    return lines


def _describe(entry: dict) -> str:
    what = entry["kind"] + (f" {human_bytes(entry['size'])}" if entry["kind"] == "file" else "")
    if entry["link"]:
        what += f" -> {entry['link']}"
    return f"{what}, {entry['mode']} {entry['uid']}:{entry['gid']}"


FIELD_NAMES = (("kind", "type"), ("size", "size"), ("mode", "mode"), ("link", "link"), ("digest", "content"))


def _file_lines(files: dict) -> List[str]:
    lines = [f"files: {len(files['added'])} added, {len(files['removed'])} removed, {len(files['changed'])} changed"]
    lines += [f"  A {entry['path']} ({_describe(entry)})" for entry in files["added"]]
    lines += [f"  D {entry['path']}" for entry in files["removed"]]
    for change in files["changed"]:
        before, after = change["from"], change["to"]
        parts = []
        for field, name in FIELD_NAMES:
            if before[field] != after[field]:
                shown = human_bytes if field == "size" else _short if field == "digest" else str
                parts.append(f"{name} {shown(before[field])} -> {shown(after[field])}")
        if (before["uid"], before["gid"]) != (after["uid"], after["gid"]):
            parts.append(f"owner {before['uid']}:{before['gid']} -> {after['uid']}:{after['gid']}")
        lines.append(f"  M {change['path']}: {', '.join(parts)}")
    return lines


def _short(digest: Optional[str]) -> str:
    return digest.removeprefix("sha256:")[:12] if digest else "none"
