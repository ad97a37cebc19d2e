"""`dockless pull` and `dockless mirror` against a registry on loopback that lies: a layer longer
than its descriptor says (without end), an index listing the same child twice at every level, a
manifest that never ends. Each stops at what the descriptor or the manifest limit allows, fetches
each digest once, and leaves nothing behind."""
import hashlib
import http.server
import json
import threading

import pytest

from chalicelib.oci import spec
from chalicelib.oci.reference import Reference
from dockless.client.registry import ClientError, RegistryClient
from dockless.images.mirror import Mirror
from dockless.images.transfer import pull
from dockless.ui import UI
from tests.upstream import upstream_registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Liar(http.server.ThreadingHTTPServer):
    """Serves `manifests` ({reference: (media type, body)}), the config `{}` and, for every other
    blob, `blob_bytes` (an endless stream when None); counts requests and the bytes it sent."""

    def __init__(self, manifests, blob_bytes=None, endless_manifest=False):
        self.manifests, self.blob_bytes, self.endless_manifest = manifests, blob_bytes, endless_manifest
        self.asked, self.sent = [], 0
        super().__init__(("127.0.0.1", 0), _LiarHandler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _LiarHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.asked.append(self.path)
        reference = self.path.rsplit("/", 1)[-1]
        try:
            if "/manifests/" in self.path:
                if server.endless_manifest:
                    return self._endless(OCI_MANIFEST, b"{" + b" " * 65536)
                media_type, body = server.manifests[reference]
                return self._whole(media_type, body)
            if reference == digest_of(b"{}"):  # the config: honest
                return self._whole(spec.OCTET_STREAM, b"{}")
            if server.blob_bytes is None:
                return self._endless(spec.OCTET_STREAM, b"\0" * 65536)
            return self._whole(spec.OCTET_STREAM, server.blob_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_HEAD(self):  # noqa: N802 - as a destination: it has nothing
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _whole(self, media_type, body):
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.sent += len(body)

    def _endless(self, media_type, piece):
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while self.server.sent < 64 * spec.MiB:  # a bound for the test's sake: the client stops far sooner
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.server.sent += len(piece)


def image(layer_size=10, layer_digest=None):
    config = b"{}"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": digest_of(config), "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                   "digest": layer_digest or digest_of(b"x" * layer_size), "size": layer_size}]}).encode()
    return body


def test_a_layer_longer_than_its_descriptor_is_cut_at_its_size_and_nothing_is_kept(tmp_path):
    body = image(layer_size=10)
    with Liar({"1": (OCI_MANIFEST, body)}, blob_bytes=None) as liar:
        with pytest.raises(ClientError, match="sent more than the .* bytes expected"):
            pull(Reference.parse(f"{liar.host}/x/app:1"), tmp_path / "out", RegistryClient(f"http://{liar.host}"), UI())
        assert liar.sent < 16 * spec.MiB
    stored = {p.name for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()}
    assert stored <= {digest_of(body)[7:], digest_of(b"{}")[7:]}  # the manifest, maybe the config: no layer


def test_a_layer_shorter_than_its_descriptor_is_refused(tmp_path):
    layer = b"short"
    body = image(layer_size=10, layer_digest=digest_of(layer))
    with Liar({"1": (OCI_MANIFEST, body)}, blob_bytes=layer) as liar:
        with pytest.raises(ClientError, match="ended after 5 of its 10 bytes"):
            pull(Reference.parse(f"{liar.host}/x/app:1"), tmp_path / "out", RegistryClient(f"http://{liar.host}"), UI())


def test_an_index_listing_a_child_twice_at_every_level_fetches_each_manifest_once(tmp_path):
    leaf = image(layer_size=4, layer_digest=digest_of(b"leaf"))
    manifests = {digest_of(leaf): (OCI_MANIFEST, leaf)}
    child, child_type = leaf, OCI_MANIFEST
    for _ in range(22):
        entry = {"mediaType": child_type, "digest": digest_of(child), "size": len(child)}
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry, entry]}).encode()
        manifests[digest_of(index)] = (OCI_INDEX, index)
        child, child_type = index, OCI_INDEX
    manifests["1"] = (OCI_INDEX, child)
    with Liar(manifests, blob_bytes=b"leaf") as liar:
        digest = pull(Reference.parse(f"{liar.host}/x/app:1"), tmp_path / "out", RegistryClient(f"http://{liar.host}"),
                      UI())
        assert digest == digest_of(child)
        fetched = [path for path in liar.asked if "/manifests/" in path]
        assert len(fetched) == 23 and len(set(fetched)) == 23
    with Liar(manifests, blob_bytes=b"leaf") as liar:
        mirror = Mirror(RegistryClient(f"http://{liar.host}"), RegistryClient(f"http://{liar.host}"), tmp_path / "spool",
                        UI(), dry_run=True)
        mirror.image("x/app", "1", "y/app")
        assert len([path for path in liar.asked if "/manifests/" in path]) == 23


def test_a_manifest_without_end_is_refused_at_the_limit_without_reading_it_whole(tmp_path):
    with Liar({}, endless_manifest=True) as liar:
        with pytest.raises(ClientError, match=f"sent more than the {spec.MANIFEST_MAX_BYTES} bytes expected"):
            RegistryClient(f"http://{liar.host}").get_manifest("x/app", "1")
        assert liar.sent < 3 * spec.MANIFEST_MAX_BYTES


def test_a_mirror_stops_a_layer_at_its_descriptors_size(tmp_path):
    body = image(layer_size=10)
    with Liar({"1": (OCI_MANIFEST, body)}, blob_bytes=None) as liar, \
            upstream_registry(tmp_path / "destination") as destination:
        mirror = Mirror(RegistryClient(f"http://{liar.host}"), RegistryClient(destination.url), tmp_path / "spool", UI())
        with pytest.raises(ClientError, match="sent more than the .* bytes expected"):
            mirror.image("x/app", "1", "x/app")
        assert liar.sent < 16 * spec.MiB
    assert all(p.stat().st_size <= 10 for p in (tmp_path / "spool").iterdir())


def test_dockless_diff_reads_a_layer_no_further_than_its_descriptor(tmp_path):
    from dockless.images.diff import DiffError, Layers, RegistrySide
    body = image(layer_size=10)
    with Liar({"1": (OCI_MANIFEST, body)}, blob_bytes=None) as liar:
        side = RegistrySide(RegistryClient(f"http://{liar.host}"), "x/app", "1", "hostile")
        with side.open_blob(digest_of(b"x" * 10), 10) as source:
            assert len(source.read()) == 10
        with pytest.raises(DiffError, match="is not a tar archive|arrived with other bytes"):
            Layers().tree(side, json.loads(body)["layers"])  # its 10 bytes of zeros, then the end
        assert liar.sent < 16 * spec.MiB
