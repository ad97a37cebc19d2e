"""Images to push, read from where they are: an OCI layout directory, a docker-archive tarball
(`docker save`), or the local docker daemon (saved to a docker-archive first). Blobs are
described by file, offset and size and read later in pieces; nothing holds a layer in memory."""
import dataclasses
import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import List, Optional

from chalicelib.oci import spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.formats import ParsedManifest, parse_manifest

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclasses.dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    path: Path
    offset: int = 0


@dataclasses.dataclass(frozen=True)
class ManifestFile:
    digest: str
    media_type: str
    body: bytes


@dataclasses.dataclass
class Image:
    blobs: List[Blob]
    manifests: List[ManifestFile]  # children first; the last one is what the tag names

    @property
    def top(self) -> ManifestFile:
        return self.manifests[-1]


class SourceError(ValueError):
    """A local image that cannot be pushed as it is."""


def sha256_of(path: Path, offset: int = 0, size: Optional[int] = None) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as source:
        source.seek(offset)
        remaining = os.path.getsize(path) - offset if size is None else size
        while remaining > 0:
            piece = source.read(min(remaining, 1 << 20))
            if not piece:
                raise SourceError(f"{path} ends early")
            hasher.update(piece)
            remaining -= len(piece)
    return "sha256:" + hasher.hexdigest()


def open_image(source: str, workdir: Path) -> Image:
    """IMAGE as the user typed it: `DIR[:TAG]` (OCI layout), `FILE.tar` (docker-archive), or a
    name the local docker daemon knows."""
    directory, _, tag = source.partition(":") if ":" in source and os.path.isdir(source.split(":")[0]) \
        else (source, "", "")
    if os.path.isdir(directory) and os.path.exists(os.path.join(directory, "oci-layout")):
        return read_oci_layout(Path(directory), tag or None)
    if os.path.isfile(source):
        return read_docker_archive(Path(source))
    archive = workdir / "image.tar"
    result = subprocess.run(["docker", "save", "-o", str(archive), source], capture_output=True, text=True)
    if result.returncode != 0:
        raise SourceError(f"`docker save {source}` failed: {result.stderr.strip()}")
    return read_docker_archive(archive)


def layout_blob(directory: Path, digest: str) -> Path:
    """Where an OCI layout keeps a blob: blobs/sha256/<hex>. Only a well-formed sha256 digest names a
    file, so no digest read from an index or sent by a registry reaches outside the layout."""
    try:
        validate.digest(digest)
    except RegistryError:
        raise SourceError(f"{digest!r} is not a sha256 digest") from None
    return directory / "blobs" / "sha256" / digest.removeprefix("sha256:")


def parse_layout_manifest(body: bytes, media_type: Optional[str], where: str) -> ParsedManifest:
    try:
        return parse_manifest(body, media_type)
    except RegistryError as invalid:
        raise SourceError(f"{where}: invalid manifest: {invalid.detail}") from None


def read_oci_layout(directory: Path, tag: Optional[str]) -> Image:
    index = json.loads((directory / "index.json").read_text())
    entries = index.get("manifests", [])
    chosen = [e for e in entries if tag is None or e.get("annotations", {}).get(REF_NAME) == tag]
    if len(chosen) != 1:
        raise SourceError(f"{directory}: {'no' if not chosen else 'several'} manifests for tag {tag!r}; "
                          f"name one as DIR:TAG")
    blobs, manifests = {}, []

    def visit(digest: str, media_type: Optional[str]) -> None:
        manifest = parse_layout_manifest(layout_blob(directory, digest).read_bytes(), media_type, str(directory))
        for child in manifest.children:
            visit(child, manifest.descriptors[child][0])
        for blob in manifest.blobs:
            blobs[blob] = Blob(blob, manifest.descriptors[blob][1], layout_blob(directory, blob))
        manifests.append(ManifestFile(digest, manifest.media_type, manifest.body))

    visit(chosen[0].get("digest", ""), chosen[0].get("mediaType"))
    return Image(list(blobs.values()), manifests)


def read_docker_archive(archive: Path) -> Image:
    """A `docker save` tarball: its config and layer tars become an OCI image manifest with
    uncompressed layers, so the image ID (the config's digest) is unchanged."""
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        entries = json.load(tar.extractfile("manifest.json"))
        if len(entries) != 1:
            raise SourceError(f"{archive} holds {len(entries)} images; push one at a time")
        entry = entries[0]
        config_bytes = tar.extractfile(entry["Config"]).read()
    config = Blob("sha256:" + hashlib.sha256(config_bytes).hexdigest(), len(config_bytes), archive,
                  members[entry["Config"]].offset_data)
    layers = []
    for name in entry["Layers"]:
        member = members[name]
        layers.append(Blob(sha256_of(archive, member.offset_data, member.size), member.size, archive,
                           member.offset_data))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": spec.OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": b.digest, "size": b.size} for b in layers],
    }).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    unique = {b.digest: b for b in [config] + layers}
    return Image(list(unique.values()), [ManifestFile(digest, spec.OCI_MANIFEST, manifest)])
