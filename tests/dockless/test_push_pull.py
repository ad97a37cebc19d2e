"""`dockless push` and `dockless pull` (the library under the CLI) against the local stack."""
import json

import pytest
import requests

from dockless import sources, transfer
from dockless.client import ClientError, RegistryClient
from dockless.reference import Reference
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


def test_pull_of_unknown_tag_fails_with_the_registry_error(stack, tmp_path):
    client = admin_client(stack)
    with pytest.raises(ClientError, match="MANIFEST_UNKNOWN"):
        transfer.pull(reference(stack, "team/none:1"), tmp_path / "out", client, UI())


@pytest.mark.parametrize("text", ["noslash", "host:1/Bad/Name", "localhost:5000/app:-tag", "localhost/app@sha256:zz"])
def test_references_are_checked(text):
    with pytest.raises(ValueError):
        Reference.parse(text)
