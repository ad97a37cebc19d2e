"""Test images made on the fly: OCI layouts written by hand and Dockerfiles built FROM scratch.
Layer contents are random, so every run pushes bytes the registry has never seen."""
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Dict, List, Optional

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class OciLayout:
    """An OCI image layout directory (image-spec image-layout.md) built blob by blob."""

    def __init__(self, path: Path):
        self.path = Path(path)
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.index: List[dict] = []

    def add_blob(self, data: bytes, media_type: str) -> dict:
        digest = sha256(data)
        (self.path / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_image(self, layer_sizes: List[int], architecture: str = "amd64") -> dict:
        """An image whose layers each hold one random file; returns the manifest descriptor."""
        layers, diff_ids = [], []
        for number, size in enumerate(layer_sizes):
            tar = layer_tar({f"layer{number}.bin": os.urandom(size)})
            diff_ids.append(sha256(tar))
            layers.append(self.add_blob(gzip.compress(tar, compresslevel=1, mtime=0), OCI_LAYER_GZIP))
        config = {"architecture": architecture, "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "config": {"Cmd": ["/layer0.bin"]}}
        config_descriptor = self.add_blob(json.dumps(config).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor,
                    "layers": layers}
        descriptor = self.add_blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        descriptor["platform"] = {"architecture": architecture, "os": "linux"}
        return descriptor

    def add_index(self, children: List[dict]) -> dict:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.add_blob(json.dumps(index).encode(), OCI_INDEX)

    def tag(self, descriptor: dict, name: str) -> None:
        entry = dict(descriptor, annotations={"org.opencontainers.image.ref.name": name})
        self.index.append(entry)
        (self.path / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index}))

    def blob(self, digest: str) -> bytes:
        return (self.path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def blob_digests(layout: Path) -> set:
    return {"sha256:" + p.name for p in (Path(layout) / "blobs" / "sha256").iterdir()}


def dockerfile_context(path: Path, layer_sizes: List[int], extra: Optional[str] = None) -> Path:
    """A build context whose Dockerfile adds one random file per layer, FROM scratch."""
    path.mkdir(parents=True, exist_ok=True)
    lines = ["FROM scratch"]
    for number, size in enumerate(layer_sizes):
        (path / f"f{number}.bin").write_bytes(os.urandom(size))
        lines.append(f"COPY f{number}.bin /f{number}.bin")
    lines.append('CMD ["/f0.bin"]')
    if extra:
        lines.append(extra)
    (path / "Dockerfile").write_text("\n".join(lines) + "\n")
    return path


def write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for start in range(0, size, 8 << 20):
            out.write(os.urandom(min(8 << 20, size - start)))


def add_big_uncompressed_layer(layout: OciLayout, size: int) -> dict:
    """A tar layer holding one random file of `size` bytes, written straight into the layout
    (streamed and hashed, never held in memory). Uncompressed, so no time goes into gzip."""
    info = tarfile.TarInfo("big.bin")
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    padding = (512 - size % 512) % 512
    hasher, temporary = hashlib.sha256(), layout.path / "blobs" / "layer.tmp"
    with open(temporary, "wb") as out:
        for piece in _pieces(header, size, padding):
            hasher.update(piece)
            out.write(piece)
    digest = "sha256:" + hasher.hexdigest()
    length = temporary.stat().st_size
    temporary.rename(layout.path / "blobs" / "sha256" / digest.split(":")[1])
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": length}


def _pieces(header: bytes, size: int, padding: int):
    yield header
    for start in range(0, size, 8 << 20):
        yield os.urandom(min(8 << 20, size - start))
    yield b"\0" * (padding + 1024)  # file padding, then the two zero blocks that end a tar


def image_from_layers(layout: OciLayout, layers: List[dict]) -> dict:
    """An image manifest over layers already in the layout (uncompressed: diff_id == digest)."""
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}}
    config_descriptor = layout.add_blob(json.dumps(config).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layers}
    return layout.add_blob(json.dumps(manifest).encode(), OCI_MANIFEST)


def build(docker, context, tag, files, env, label):
    """An image FROM scratch: a base layer both builds share, an /app layer of `files`, env and a label."""
    base = context / "base"
    base.mkdir(parents=True, exist_ok=True)
    (base / "os-release").write_text("NAME=scratch\n")
    os.utime(base / "os-release", (0, 0))
    app = context / tag.rsplit(":", 1)[1]
    app.mkdir()
    for name, text in files.items():
        (app / name).write_text(text)
        os.utime(app / name, (0, 0))
    dockerfile = context / f"Dockerfile.{app.name}"
    dockerfile.write_text(f"FROM scratch\nCOPY base/ /etc/\nCOPY {app.name}/ /app/\nENV {env}\n"
                          f"LABEL tier={label}\nCMD [\"/app/keep.txt\"]\n")
    docker("build", "-q", "-f", str(dockerfile), "-t", tag, str(context))


def pushed_digest(output: str) -> str:
    return output.split("digest: ")[1].split()[0]
