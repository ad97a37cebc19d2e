"""`dockless diff` between OCI layouts: layers applied as a runtime applies them (whiteouts,
opaque directories, links), gzip, zstd and plain tar, the exact text a person reads, and bytes
checked against their digests. tests/e2e/test_history.py diffs images docker built and pushed."""
import gzip
import hashlib
import io
import json
import tarfile

import pytest
import zstandard
from click.testing import CliRunner

from dockless.cli import main
from chalicelib.oci.sizes import human as human_bytes
from tests.e2e.images import OCI_CONFIG, OCI_MANIFEST, OciLayout

GZIP, ZSTD, PLAIN = "gzip", "zstd", "plain"
MEDIA = {GZIP: "application/vnd.oci.image.layer.v1.tar+gzip", ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
         PLAIN: "application/vnd.oci.image.layer.v1.tar"}


def layer(entries, compression=GZIP) -> tuple:
    """A layer from (name, content | ("dir",) | ("symlink", target) | ("hardlink", target), mode, uid)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mode = rest[0] if rest else 0o644
            info.uid = rest[1] if len(rest) > 1 else 0
            data = None
            if isinstance(content, tuple):
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                             "hardlink": tarfile.LNKTYPE}[content[0]]
                info.linkname = content[1] if len(content) > 1 else ""
            else:
                info.size, data = len(content), io.BytesIO(content)
            tar.addfile(info, data)
    tar_bytes = buffer.getvalue()
    if compression == GZIP:
        return gzip.compress(tar_bytes, mtime=0), MEDIA[GZIP]
    if compression == ZSTD:
        return zstandard.ZstdCompressor().compress(tar_bytes), MEDIA[ZSTD]
    return tar_bytes, MEDIA[PLAIN]


def image(layout: OciLayout, tag: str, layers, arch="amd64", **config) -> dict:
    descriptors = [layout.add_blob(*data) for data in layers]
    body = {"architecture": arch, "os": "linux", "config": config, "created": "2026-01-01T00:00:00Z",
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": layout.add_blob(json.dumps(body).encode(), OCI_CONFIG), "layers": descriptors}
    descriptor = layout.add_blob(json.dumps(manifest).encode(), OCI_MANIFEST)
    if tag:
        layout.tag(descriptor, tag)
    return descriptor


def short(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def diff(*args):
    return CliRunner().invoke(main, ["diff", *args])


PASSWD_BEFORE, PASSWD_AFTER = b"root\n", b"root\nuser\n"
BASE = [("etc", ("dir",), 0o755), ("etc/passwd", PASSWD_BEFORE), ("etc/keep", b"k"), ("app", ("dir",), 0o755),
        ("app/old.txt", b"old"), ("app/conf", ("dir",), 0o755), ("app/conf/a", b"a"), ("app/conf/b", b"b"),
        ("bin", ("dir",), 0o755), ("bin/tool", b"#!tool", 0o755), ("bin/alias", ("symlink", "tool"))]


@pytest.fixture
def layouts(tmp_path):
    layout = OciLayout(tmp_path / "layout")
    base = layer(BASE, GZIP)
    image(layout, "v1", [base], Env=["A=1", "B=2"], Labels={"tier": "web"})
    changes = layer([("app/.wh.old.txt", b""), ("app/new.txt", b"new file"), ("etc/passwd", PASSWD_AFTER),
                     ("app/conf/.wh..wh..opq", b""), ("app/conf/c", b"c"), ("bin/tool", b"#!tool", 0o700, 1000),
                     ("bin/alias", ("symlink", "other")), ("bin/hard", ("hardlink", "./bin/tool"))], ZSTD)
    extra = layer([("data.bin", b"x" * 3000)], PLAIN)
    image(layout, "v2", [base, changes, extra], Env=["A=1", "B=3", "C=4"], Labels={"tier": "api"})
    return tmp_path / "layout"


def test_files_are_compared_after_whiteouts_and_opaque_directories_apply(layouts):
    result = diff(f"oci:{layouts}:v1", f"oci:{layouts}:v2", "--json")
    assert result.exit_code == 0, result.output
    [platform] = json.loads(result.stdout)["platforms"]
    files = platform["files"]
    assert [f["path"] for f in files["added"]] == ["/app/conf/c", "/app/new.txt", "/bin/hard", "/data.bin"]
    assert [f["path"] for f in files["removed"]] == ["/app/conf/a", "/app/conf/b", "/app/old.txt"]
    changed = {c["path"]: c for c in files["changed"]}
    assert sorted(changed) == ["/bin/alias", "/bin/tool", "/etc/passwd"]
    assert (changed["/etc/passwd"]["from"]["size"], changed["/etc/passwd"]["to"]["size"]) == (5, 10)
    assert changed["/bin/tool"]["to"]["mode"] == "0700" and changed["/bin/tool"]["to"]["uid"] == 1000
    assert changed["/bin/alias"]["to"]["link"] == "other"
    added = {f["path"]: f for f in files["added"]}
    assert added["/bin/hard"]["kind"] == "hardlink" and added["/bin/hard"]["link"] == "bin/tool"
    assert added["/data.bin"]["digest"] == "sha256:" + hashlib.sha256(b"x" * 3000).hexdigest()
    assert [layer["mediaType"] for layer in platform["layers"]["added"]] == [MEDIA[ZSTD], MEDIA[PLAIN]]


def test_the_text_output_is_exact(layouts):
    result = diff(f"oci:{layouts}:v1", f"oci:{layouts}:v2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    index = json.loads((layouts / "index.json").read_text())["manifests"]
    v1, v2 = (entry["digest"] for entry in index)
    assert lines[:2] == [f"--- oci:{layouts}:v1 {v1}", f"+++ oci:{layouts}:v2 {v2}"]
    body = "\n".join(lines[2:])
    zstd_layer = json.loads((layouts / "blobs/sha256" / v2.split(":")[1]).read_text())["layers"][1]
    plain_layer = json.loads((layouts / "blobs/sha256" / v2.split(":")[1]).read_text())["layers"][2]
    base_layer = json.loads((layouts / "blobs/sha256" / v2.split(":")[1]).read_text())["layers"][0]
    shared, zs, pl = (human_bytes(x["size"]) for x in (base_layer, zstd_layer, plain_layer))
    total = human_bytes(zstd_layer["size"] + plain_layer["size"])
    assert body == f"""platform linux/amd64
config: 3 changed
  env B: "2" -> "3"
  env C: unset -> "4"
  labels tier: "web" -> "api"
  history + "layer 1"
  history + "layer 2"
layers: 1 shared ({shared}), 0 removed (0 B), 2 added ({total})
  + {zstd_layer['digest']} {zs}
  + {plain_layer['digest']} {pl}
files: 4 added, 3 removed, 3 changed
  A /app/conf/c (file 1 B, 0644 0:0)
  A /app/new.txt (file 8 B, 0644 0:0)
  A /bin/hard (hardlink -> bin/tool, 0644 0:0)
  A /data.bin (file 2.9 KiB, 0644 0:0)
  D /app/conf/a
  D /app/conf/b
  D /app/old.txt
  M /bin/alias: link tool -> other
  M /bin/tool: mode 0755 -> 0700, owner 0:0 -> 1000:0
  M /etc/passwd: size 5 B -> 10 B, content {short(PASSWD_BEFORE)} -> {short(PASSWD_AFTER)}"""


def test_a_whiteout_of_a_directory_removes_what_is_below_it_and_root_opaque_empties_all(tmp_path):
    layout = OciLayout(tmp_path / "layout")
    base = layer(BASE)
    image(layout, "a", [base])
    image(layout, "b", [base, layer([(".wh.app", b""), ("etc/.wh.keep", b"")])])
    image(layout, "c", [base, layer([(".wh..wh..opq", b""), ("only", b"1")])])
    removed = json.loads(diff(f"oci:{layout.path}:a", f"oci:{layout.path}:b", "--json").stdout)
    assert [f["path"] for f in removed["platforms"][0]["files"]["removed"]] == [
        "/app", "/app/conf", "/app/conf/a", "/app/conf/b", "/app/old.txt", "/etc/keep"]
    emptied = json.loads(diff(f"oci:{layout.path}:a", f"oci:{layout.path}:c", "--json").stdout)["platforms"][0]
    assert [f["path"] for f in emptied["files"]["added"]] == ["/only"]
    assert len(emptied["files"]["removed"]) == len(BASE)


def test_a_layer_whose_bytes_do_not_match_its_digest_is_an_error(layouts):
    index = json.loads((layouts / "index.json").read_text())["manifests"]
    manifest = json.loads((layouts / "blobs/sha256" / index[1]["digest"].split(":")[1]).read_text())
    plain = layouts / "blobs/sha256" / manifest["layers"][2]["digest"].split(":")[1]
    content = bytearray(plain.read_bytes())
    content[600] ^= 1  # inside the file's data: still a tar, other bytes
    plain.write_bytes(bytes(content))
    result = diff(f"oci:{layouts}:v1", f"oci:{layouts}:v2")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: the layer {manifest['layers'][2]['digest']} arrived with other bytes" in result.stderr


def test_a_layer_that_is_not_a_tar_is_an_error(tmp_path):
    layout = OciLayout(tmp_path / "layout")
    image(layout, "a", [layer(BASE)])
    image(layout, "b", [(b"not a tar at all" * 100, MEDIA[PLAIN])])
    result = diff(f"oci:{layout.path}:a", f"oci:{layout.path}:b")
    assert result.exit_code == 1
    assert "is not a tar archive (plain, gzip or zstd)" in result.stderr


def test_config_only_reads_no_layer(layouts):
    for blob in (layouts / "blobs/sha256").iterdir():
        if blob.stat().st_size > 0 and blob.read_bytes()[:2] == b"\x1f\x8b":
            blob.write_bytes(b"gone")
    result = diff(f"oci:{layouts}:v1", f"oci:{layouts}:v2", "--no-files")
    assert result.exit_code == 0, result.output
    assert "files:" not in result.stdout and "env B" in result.stdout
