"""dockless/images/mirror.py between two of Debian's docker-registry on loopback (no dockless on either
side: the standard upload): a layer that arrives with other bytes than its digest stops the copy
before any manifest names it, and leaves nothing in the spool; a partial download is continued
with a Range request."""
import os

import pytest

from chalicelib.oci import spec
from chalicelib.oci.reference import Reference
from dockless.client.registry import ClientError, RegistryClient
from dockless.images.mirror import Mirror
from dockless.ui import UI
from tests.upstream import upstream_registry


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    with upstream_registry(root / "source") as source, upstream_registry(root / "destination") as destination:
        yield source, destination


def copier(source, destination, spool):
    return Mirror(RegistryClient(source.url), RegistryClient(destination.url), spool, UI())


def manifest_status(registry, name, reference):
    import urllib3
    return urllib3.request("HEAD", f"{registry.url}/v2/{name}/manifests/{reference}",
                           headers={"Accept": spec.MANIFEST_ACCEPT}).status


def test_bytes_that_are_not_their_digest_stop_the_copy_before_any_manifest(registries, tmp_path):
    source, destination = registries
    digest, _, blobs = source.image("bad/app", "1", [os.urandom(50_000)])
    source.blob_file(blobs[1]).write_bytes(os.urandom(50_000))
    with pytest.raises(ClientError, match=f"{blobs[1]} arrived from the source with another digest"):
        copier(source, destination, tmp_path).image("bad/app", "1", "bad/app")
    assert manifest_status(destination, "bad/app", "1") == 404
    assert manifest_status(source, "bad/app", "1") == 200
    assert list(tmp_path.iterdir()) == []


def test_a_partial_download_is_continued_and_the_whole_checked(registries, tmp_path):
    source, destination = registries
    layer = os.urandom(300_000)
    digest, _, blobs = source.image("part/app", "1", [layer])
    (tmp_path / (blobs[1].replace(":", "-") + ".partial")).write_bytes(layer[:100_000])
    mirror = copier(source, destination, tmp_path)
    assert mirror.image("part/app", "1", "copy/app") == digest
    assert mirror.report.resumed_bytes == 100_000 and mirror.report.copied_blobs == 2
    assert manifest_status(destination, "copy/app", "1") == 200
    assert mirror.tags(Reference.parse(f"127.0.0.1:{source.port}/part/app"), "*") == ["1"]
    assert list(tmp_path.iterdir()) == []


def test_one_platform_of_an_index_is_copied_as_that_image(registries, tmp_path):
    source, destination = registries
    amd = source.image("multi/app", None, [os.urandom(1000)], "amd64")
    arm = source.image("multi/app", None, [os.urandom(1000)], "arm64")
    source.index("multi/app", "1", [(amd[0], amd[1], "amd64"), (arm[0], arm[1], "arm64")])
    mirror = Mirror(RegistryClient(source.url), RegistryClient(destination.url), tmp_path, UI(), platform="linux/arm64")
    assert mirror.image("multi/app", "1", "arm/app") == arm[0]
    assert mirror.report.copied_blobs == 2 and manifest_status(destination, "arm/app", "1") == 200
    with pytest.raises(ClientError, match="has no linux/s390x image"):
        Mirror(RegistryClient(source.url), RegistryClient(destination.url), tmp_path, UI(),
               platform="linux/s390x").image("multi/app", "1", "arm/app")
