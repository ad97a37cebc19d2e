"""`dockless push` and `dockless pull` (the library under the CLI) against the local stack."""
import json

import pytest
import requests

from dockless.images import sources
from dockless.images import transfer
from dockless.client.registry import ClientError, RegistryClient
from chalicelib.oci.reference import Reference
from dockless.ui import UI
from tests.e2e.images import OciLayout, blob_digests

MiB = 1024 * 1024


def admin_client(stack):
    return RegistryClient(f"http://localhost:{stack.port}", username="admin", password=stack.admin_token)


def reference(stack, name):
    return Reference.parse(f"localhost:{stack.port}/{name}")


def test_round_trip_with_multipart_recovers_from_a_failed_part(stack, tmp_path, monkeypatch):
    layout = OciLayout(tmp_path / "in")
    layout.tag(layout.add_image([13 * MiB, 100_000, 1_000]), "v1")
    client = admin_client(stack)
    real_put, failures = client.bucket.session.put, []

    def flaky_put(url, **kwargs):
        if "partNumber=2" in url and not failures:
            failures.append(url)
            raise requests.ConnectionError("injected: connection reset")
        return real_put(url, **kwargs)

    monkeypatch.setattr(client.bucket.session, "put", flaky_put)
    image = sources.read_oci_layout(layout.path, "v1")
    result = transfer.push(image, reference(stack, "team/pp:1"), client, UI())
    assert failures, "the multipart path was not taken"
    assert result.digest == image.top.digest
    assert len(result.uploaded) == 4 and result.skipped == []

    again = transfer.push(image, reference(stack, "team/pp:1"), client, UI())
    assert again.uploaded == [] and len(again.skipped) == 4

    out = tmp_path / "out"
    assert transfer.pull(reference(stack, "team/pp:1"), out, client, UI()) == image.top.digest
    assert blob_digests(out) == blob_digests(layout.path)
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "1"}


def test_multi_platform_index_round_trip(stack, tmp_path):
    layout = OciLayout(tmp_path / "in")
    index = layout.add_index([layout.add_image([10_000], "amd64"), layout.add_image([20_000], "arm64")])
    layout.tag(index, "multi")
    client = admin_client(stack)
    result = transfer.push(sources.read_oci_layout(layout.path, "multi"), reference(stack, "team/idx:2"),
                           client, UI())
    assert result.digest == index["digest"]
    out = tmp_path / "out"
    transfer.pull(reference(stack, "team/idx:2"), out, client, UI())
    assert blob_digests(out) == blob_digests(layout.path)
    # The first token carried push: no upload thread was refused on the way (or audited as such).
    trail = client.admin("GET", "/audit", params={"repository": "team/idx"})["events"]
    assert [e for e in trail if e["action"] == "access.denied"] == []
    assert [e["action"] for e in trail if e["action"] == "manifest.push"] == ["manifest.push"] * 3


def test_pull_of_unknown_tag_fails_with_the_registry_error(stack, tmp_path):
    client = admin_client(stack)
    with pytest.raises(ClientError, match="MANIFEST_UNKNOWN"):
        transfer.pull(reference(stack, "team/none:1"), tmp_path / "out", client, UI())


@pytest.mark.parametrize("text", ["noslash", "host:1/Bad/Name", "localhost:5000/app:-tag", "localhost/app@sha256:zz"])
def test_references_are_checked(text):
    with pytest.raises(ValueError):
        Reference.parse(text)


class HostileRegistry:
    """A registry that serves one manifest and whatever bytes for any blob."""

    def __init__(self, manifest: dict, blob: bytes):
        import http.server
        import threading
        body, payload = json.dumps(manifest).encode(), blob

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = body if "/manifests/" in self.path else payload
                self.send_response(200)
                self.send_header("Content-Type", manifest.get("mediaType", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def pull(self, out):
        return transfer.pull(Reference.parse(f"{self.host}/evil/app:1"), out, RegistryClient(f"http://{self.host}"), UI())


def hostile_manifest(layer_digest, layer_size=5, media_type="application/vnd.oci.image.layer.v1.tar"):
    config = b"{}"
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + __import__("hashlib").sha256(config).hexdigest(), "size": 2},
            "layers": [{"mediaType": media_type, "digest": layer_digest, "size": layer_size}]}


@pytest.mark.parametrize("layer_digest, media_type", [
    ("sha256:../../../../outside", "application/vnd.oci.image.layer.v1.tar"),
    ("sha256:" + "a" * 63 + "/", "application/vnd.oci.image.layer.v1.tar"),
    ("sha512:../../x", "application/vnd.oci.image.layer.v1.tar"),
    ("sha256:" + "a" * 64, "not a media type"),
])
def test_pull_refuses_what_a_hostile_registry_names_and_writes_nothing_outside(tmp_path, layer_digest, media_type):
    victim = tmp_path / "outside.partial"
    victim.write_text("keep me")
    registry = HostileRegistry(hostile_manifest(layer_digest, media_type=media_type), b"attacker bytes")
    out = tmp_path / "a" / "b" / "layout"
    with pytest.raises(ClientError, match="invalid manifest"):
        registry.pull(out)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "outside.partial"]
    assert [p.name for p in (out / "blobs" / "sha256").iterdir()] == []


def test_pull_leaves_no_partial_file_when_bytes_do_not_match(tmp_path):
    claimed = "sha256:" + "b" * 64
    registry = HostileRegistry(hostile_manifest(claimed, layer_size=14), b"attacker bytes")
    out = tmp_path / "layout"
    # The layer's 14 bytes are not its digest; the same bytes served for the 2-byte config are
    # longer than its descriptor: whichever download ends first is the error.
    with pytest.raises(ClientError, match="arrived with another digest|is 14 bytes, more than the 2 expected"):
        registry.pull(out)
    names = [p.name for p in (out / "blobs" / "sha256").iterdir()]
    assert "b" * 64 not in names and not [n for n in names if n.endswith(".partial")]
