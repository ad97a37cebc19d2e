"""Blob GET (307 to presigned S3), HEAD (answered from the link) and DELETE (distribution-spec
end-2, end-10)."""
import json
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests

from tests.fixtures import digest_of, error_code


def test_blob_get_redirects_to_a_short_lived_sigv4_url(client, push):
    digest = push.blob("team/app", b"layer bytes")["digest"]
    response = client.get(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 307
    assert response.headers["Docker-Content-Digest"] == digest
    url = urlparse(response.headers["Location"])
    query = parse_qs(url.query)
    assert url.path.endswith(f"/blobs/sha256/{digest[7:]}")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]


def test_blob_head_answers_digest_length_and_type_from_one_read(client, push, caplog):
    import json
    import logging
    caplog.set_level(logging.INFO, logger="dockless.request")
    digest = push.blob("team/app", b"layer bytes")["digest"]
    response = client.head(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 200 and response.body == b""
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Length"] == str(len(b"layer bytes"))
    assert response.headers["Content-Type"] == "application/octet-stream"
    record = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"][-1]
    assert record["aws_calls"] == ["dynamodb:BatchGetItem"] and record["presigned_urls"] == []


def test_presigned_get_serves_the_exact_bytes(client, push):
    data = b"\x00\x01binary layer\xff" * 100
    digest = push.blob("team/app", data)["digest"]
    location = client.get(f"/v2/team/app/blobs/{digest}").headers["Location"]
    # moto (in process) answers the presigned URL through requests' mocked transport
    assert requests.get(location).content == data


def test_unknown_blob_is_404_blob_unknown(client):
    response = client.get(f"/v2/team/app/blobs/{digest_of(b'never pushed')}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"digest": digest_of(b"never pushed")}


def test_blob_of_another_repository_is_not_served_here(client, push):
    digest = push.blob("team/private", b"only in private")["digest"]
    assert client.get(f"/v2/team/app/blobs/{digest}").status_code == 404
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nodigest"])
def test_malformed_digest_is_400_digest_invalid(client, digest):
    response = client.get(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_delete_unlinks_from_this_repository_only(client, push):
    digest = push.blob("team/app", b"shared")["digest"]
    push.blob("team/other", b"shared")
    assert client.delete(f"/v2/team/app/blobs/{digest}").status_code == 202
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
    assert client.head(f"/v2/team/other/blobs/{digest}").status_code == 200
    from chalicelib.metadata.models import AuditEvent
    deleted = [(e.repository, e.reference, e.actor) for e in AuditEvent.scan() if e.action == "blob.delete"]
    assert deleted == [("team/app", digest, "admin")]


def test_a_blob_deleted_by_another_request_meanwhile_is_unknown(client, push, monkeypatch):
    """The race between reading the link and deleting it: the loser answers as if it had not been
    there (quota.delete_link finds no link to delete)."""
    from chalicelib.lifecycle import quota
    digest = push.blob("team/app", b"raced")["digest"]
    monkeypatch.setattr(quota, "delete_link", lambda *args, **kwargs: None)
    response = client.delete(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 404 and error_code(response) == "BLOB_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"digest": digest}
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.head_object(Bucket="test-bucket", Key=f"blobs/sha256/{digest[7:]}")


def test_delete_unknown_blob_is_404(client, state):
    before = state()
    response = client.delete(f"/v2/team/app/blobs/{digest_of(b'x')}")
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"digest": digest_of(b"x")}
    assert state() == before


def test_a_small_blob_is_read_up_to_its_limit_and_no_further(registry, push):
    """What reads an image config in the function (platforms, diff) reads at most `limit` bytes."""
    from chalicelib.registry.blobs import BlobService
    from chalicelib.oci.errors import RegistryError
    data = b'{"architecture": "amd64", "os": "linux"}'
    digest = push.blob("team/app", data)["digest"]
    assert BlobService(registry).small_blob("team/app", digest, limit=len(data)) == data
    with pytest.raises(RegistryError) as refused:
        BlobService(registry).small_blob("team/app", digest, limit=len(data) - 1)
    assert refused.value.error.code == "SIZE_INVALID"
    assert str(refused.value.detail) == f"{digest} is {len(data)} bytes; at most {len(data) - 1} are read here"
