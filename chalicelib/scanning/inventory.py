"""An image's packages, read by streaming its layers once, lowest first, as a container runtime
would stack them: a later layer's file replaces an earlier one's, and its whiteouts
(`.wh.<name>`, `.wh..wh..opq`: the OCI image spec's layer changesets) remove what lies below.

Every layer is untrusted. What bounds the reading (each refusal is an Inventory error, never
more; the walk goes on with the next file or layer where it can):

  * bytes: a layer expands to at most EXPANSION_RATIO times its compressed size plus
    EXPANSION_SLACK_BYTES (a gzip bomb stops there), and at most LAYER_MAX_BYTES;
  * entries: at most LAYER_MAX_ENTRIES per layer;
  * files: each reader's limit (packages.py); a larger file is named in the errors and skipped
    unread; files are never written anywhere, so `..` and absolute names only name a path,
    and a name that climbs out of the root is skipped;
  * memory: a file is held only while read, and the OS databases (read once the distribution is
    known) only the latest of each path: about the largest limit, far under 512 MB.

gzip, uncompressed and zstd-compressed layers are told apart by their first bytes; zstd is
named in the errors (Python has no zstd decoder before 3.14).
"""
from __future__ import annotations
import dataclasses
import posixpath
import tarfile
import zlib
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from chalicelib.scanning import packages
from chalicelib.scanning.packages import Distro, FileUnreadable, Package

EXPANSION_RATIO = 64
EXPANSION_SLACK_BYTES = 64 * 1024 * 1024
LAYER_MAX_BYTES = 32 * 1024 ** 3
LAYER_MAX_ENTRIES = 1_000_000
READ_BYTES = 1024 * 1024
INFLATE_PIECE_BYTES = 4 * 1024 * 1024
ERRORS_KEPT = 50
# What a Go binary starts with: ELF, Mach-O (both byte orders, 32 and 64 bit), PE.
EXECUTABLE_MAGIC = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                    b"\xcf\xfa\xed\xfe", b"MZ")
OS_READERS = ("dpkg", "apk", "rpm")


class LayerTooLarge(Exception):
    """A layer that expands past its bound."""


class _Expanded:
    """A layer's bytes as tarfile reads them (`read(n)`), decompressed when gzip, counted; at most
    INFLATE_PIECE_BYTES are held at once, whatever a piece expands to."""

    def __init__(self, chunks: Iterable[bytes], compressed_size: int):
        self._chunks = iter(chunks)
        self._piece, self._offset = b"", 0
        self._inflate = None
        self._started = self._ended = False
        self.expanded = 0
        self.limit = min(LAYER_MAX_BYTES, compressed_size * EXPANSION_RATIO + EXPANSION_SLACK_BYTES)

    def _next_piece(self) -> Optional[bytes]:
        """The next expanded bytes (perhaps none yet), or None at the end."""
        if self._inflate is not None and self._inflate.unconsumed_tail:
            return self._inflate.decompress(self._inflate.unconsumed_tail, INFLATE_PIECE_BYTES)
        if self._ended:
            return None
        piece = next(self._chunks, None)
        while not self._started and piece == b"":
            piece = next(self._chunks, None)  # what the layer starts with tells its compression
        if not self._started:
            self._started = True
            first = piece or b""
            if first[:4] == b"\x28\xb5\x2f\xfd":
                raise FileUnreadable("a zstd-compressed layer (not read: no zstd decoder)")
            if first[:2] == b"\x1f\x8b":
                self._inflate = zlib.decompressobj(wbits=47)
        if piece is None:
            self._ended = True
            return self._inflate.flush() if self._inflate else None
        if self._inflate is None:
            return piece
        if self._inflate.eof:
            rest, piece = self._inflate.unused_data + piece, b""
            if not rest.startswith(b"\x1f\x8b"):
                return b""  # what follows the gzip stream is not read
            self._inflate = zlib.decompressobj(wbits=47)  # a concatenated gzip member
            piece = rest
        return self._inflate.decompress(piece, INFLATE_PIECE_BYTES)

    def read(self, size: int = -1) -> bytes:
        out = []
        wanted = size if size >= 0 else float("inf")
        while wanted > 0:
            if self._offset >= len(self._piece):
                piece = self._next_piece()
                if piece is None:
                    break
                if self.expanded + len(piece) > self.limit:
                    raise LayerTooLarge(f"the layer expands past {self.limit} bytes")
                self.expanded += len(piece)
                self._piece, self._offset = piece, 0
                continue
            take = self._piece[self._offset:self._offset + wanted] if wanted != float("inf") \
                else self._piece[self._offset:]
            self._offset += len(take)
            wanted -= len(take)
            out.append(take)
        return b"".join(out)


def _clean(name: str) -> Optional[str]:
    """A member's path from the image's root, or None if it would climb out of it."""
    parts = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/".join(parts)


@dataclasses.dataclass
class Inventory:
    packages: List[Package] = dataclasses.field(default_factory=list)
    distro: Optional[Distro] = None
    errors: List[str] = dataclasses.field(default_factory=list)
    files_read: int = 0
    bytes_expanded: int = 0

    def error(self, message: str) -> None:
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(message[:300])


class _Walk:
    """What the layers read so far say: per path, its packages (or an OS database's bytes)."""

    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        self.found: Dict[str, Tuple[str, object]] = {}  # path -> ("packages", [...]) | (reader, bytes)

    def layer(self, digest: str, chunks: Iterable[bytes], size: int) -> None:
        own: Dict[str, Tuple[str, object]] = {}
        removed: List[str] = []
        opaque: List[str] = []
        stream = _Expanded(chunks, size)
        entries = 0
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    entries += 1
                    if entries > LAYER_MAX_ENTRIES:
                        self.inventory.error(f"{digest}: more than {LAYER_MAX_ENTRIES} entries; the rest not read")
                        break
                    self._member(digest, archive, member, own, removed, opaque)
        except LayerTooLarge as error:
            self.inventory.error(f"{digest}: {error}; the rest not read")
        except (tarfile.TarError, zlib.error, EOFError, OSError, FileUnreadable) as error:
            self.inventory.error(f"{digest}: not a readable tar layer ({str(error)[:120]})")
        self.inventory.bytes_expanded += stream.expanded
        # The layer's whiteouts remove what lies below it, then its own files are laid on top.
        for path in removed:
            self._drop(lambda p: p == path or p.startswith(path + "/"))
        for directory in opaque:
            self._drop(lambda p: p.startswith(directory + "/") if directory else True)
        self.found.update(own)

    def _drop(self, matches: Callable[[str], bool]) -> None:
        for path in [p for p in self.found if matches(p)]:
            del self.found[path]

    def _member(self, digest, archive, member, own, removed, opaque) -> None:
        path = _clean(member.name)
        if path is None:
            self.inventory.error(f"{digest}: {member.name[:100]!r} climbs out of the root (skipped)")
            return
        directory, base = posixpath.split(path)
        if base == ".wh..wh..opq":
            opaque.append(directory)
            return
        if base.startswith(".wh."):
            removed.append(posixpath.join(directory, base[4:]))
            return
        own.pop(path, None)
        if not member.isreg():
            return
        wanted = packages.reader_for(path)
        if wanted is None:
            if member.size >= 64:
                self._maybe_go(digest, path, archive.extractfile(member), own)
            return
        reader, limit = wanted
        if member.size > limit:
            self.inventory.error(f"{path}: {member.size} bytes, more than the {limit} read (skipped)")
            return
        data = archive.extractfile(member).read()
        self.inventory.files_read += 1
        if reader == "os-release" or reader in OS_READERS:
            own[path] = (reader, data)  # read once the distribution is known
            return
        try:
            own[path] = ("packages", packages.READERS[reader](path, data, None))
        except FileUnreadable as error:
            self.inventory.error(f"{path}: {error}")

    def _maybe_go(self, digest: str, path: str, file, own) -> None:
        """Look for Go's build information in an executable, reading it once, in pieces."""
        head = file.read(READ_BYTES)
        if not head.startswith(EXECUTABLE_MAGIC):
            return
        window, magic = head, packages.GO_BUILDINFO_MAGIC
        while True:
            at = window.find(magic)
            if at >= 0:
                info = window[at:]
                while len(info) < packages.GO_BUILDINFO_BYTES:
                    more = file.read(packages.GO_BUILDINFO_BYTES - len(info))
                    if not more:
                        break
                    info += more
                try:
                    own[path] = ("packages", packages.go(path, info[:packages.GO_BUILDINFO_BYTES], None))
                    self.inventory.files_read += 1
                except FileUnreadable as error:
                    self.inventory.error(f"{path}: {error}")
                return
            more = file.read(READ_BYTES)
            if not more:
                return
            window = window[-len(magic):] + more

    def finish(self) -> Inventory:
        distro = None
        for path in ("etc/os-release", "usr/lib/os-release"):
            if path in self.found:
                try:
                    distro = packages.os_release(self.found[path][1])
                    break
                except FileUnreadable as error:
                    self.inventory.error(f"{path}: {error}")
        self.inventory.distro = distro
        seen = set()
        for path, (reader, value) in sorted(self.found.items()):
            if reader == "os-release":
                continue
            if reader != "packages":
                try:
                    value = packages.READERS[reader](path, value, distro)
                except FileUnreadable as error:
                    self.inventory.error(f"{path}: {error}")
                    continue
            for package in value:
                if package.purl not in seen:
                    seen.add(package.purl)
                    self.inventory.packages.append(package)
        return self.inventory


def read_image(layers: Iterable[Tuple[str, int, Callable[[], Iterable[bytes]]]]) -> Inventory:
    """The inventory of an image's layers, lowest first: (digest, compressed size, a function
    that opens the layer's bytes as pieces)."""
    walk = _Walk(Inventory())
    for digest, size, open_layer in layers:
        walk.layer(digest, open_layer(), size)
    return walk.finish()
