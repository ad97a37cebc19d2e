"""Blob uploads (distribution-spec end-4a/4b/5/6/11/13 and cancel), in process."""
import json
import os

import boto3
import pytest

from chalicelib.oci import spec
from tests.fixtures import PUBLIC_URL, digest_of, error_code

OCTET = {"Content-Type": "application/octet-stream"}


def start(client, repo="team/app"):
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    return response.headers["Location"][len(PUBLIC_URL):]


def s3_object(key):
    return boto3.client("s3", region_name="us-east-1").get_object(Bucket="test-bucket", Key=key)["Body"].read()


def test_post_opens_a_session_with_location_range_and_uuid(client):
    response = client.post("/v2/team/app/blobs/uploads/")
    assert response.status_code == 202
    upload_id = response.headers["Docker-Upload-UUID"]
    assert response.headers["Location"] == f"{PUBLIC_URL}/v2/team/app/blobs/uploads/{upload_id}"
    assert response.headers["Range"] == "0-0"


def test_monolithic_post_links_the_blob(client):
    data = os.urandom(1000)
    digest = digest_of(data)
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest}", body=data, headers=OCTET)
    assert response.status_code == 201
    assert response.headers["Location"] == f"{PUBLIC_URL}/v2/team/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert s3_object(f"blobs/sha256/{digest[7:]}") == data
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200


def test_monolithic_post_with_wrong_digest_is_refused_and_writes_nothing(client, state):
    before = state()
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest_of(b'other')}", body=b"data",
                           headers=OCTET)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == {"expected": digest_of(b"other"),
                                                                "actual": digest_of(b"data")}
    assert state() == before


def test_chunked_upload_in_order_then_put(client):
    location = start(client)
    first, second, last = os.urandom(1000), os.urandom(500), os.urandom(10)
    response = client.patch(location, body=first, headers={**OCTET, "Content-Range": "0-999"})
    assert response.status_code == 202
    assert response.headers["Range"] == "0-999"
    location = response.headers["Location"][len(PUBLIC_URL):]
    response = client.patch(location, body=second, headers={**OCTET, "Content-Range": "1000-1499"})
    assert response.headers["Range"] == "0-1499"
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-1499"
    assert status.headers["Location"].endswith(location)
    digest = digest_of(first + second + last)
    response = client.put(f"{location}?digest={digest}", body=last, headers=OCTET)
    assert response.status_code == 201, response.body
    assert response.headers["Docker-Content-Digest"] == digest
    assert s3_object(f"blobs/sha256/{digest[7:]}") == first + second + last
    # The session is over: its staged chunks are gone and it no longer answers.
    assert client.get(location).status_code == 404
    keys = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="test-bucket", Prefix="uploads/")
    assert keys["KeyCount"] == 0


def test_streamed_patch_without_content_range_appends(client):
    location = start(client)
    client.patch(location, body=b"abc", headers=OCTET)
    response = client.patch(location, body=b"def", headers=OCTET)
    assert response.headers["Range"] == "0-5"
    response = client.put(f"{location}?digest={digest_of(b'abcdef')}")
    assert response.status_code == 201


def test_out_of_order_chunk_gets_416_and_changes_nothing(client, state):
    location = start(client)
    client.patch(location, body=b"abc", headers={**OCTET, "Content-Range": "0-2"})
    before = state()
    response = client.patch(location, body=b"xyz", headers={**OCTET, "Content-Range": "10-12"})
    assert response.status_code == 416
    assert error_code(response) == "RANGE_INVALID"
    assert response.headers["Range"] == "0-2"
    assert state() == before


def test_content_range_that_does_not_match_the_body_is_refused(client, state):
    location = start(client)
    before = state()
    response = client.patch(location, body=b"abc", headers={**OCTET, "Content-Range": "0-9"})
    assert response.status_code == 416
    assert state() == before


def test_put_with_wrong_digest_links_nothing_and_cleans_the_session(client, state):
    before = state()
    location = start(client)
    client.patch(location, body=b"abc", headers=OCTET)
    wrong = digest_of(b"something else")
    response = client.put(f"{location}?digest={wrong}")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == {"expected": wrong, "actual": digest_of(b"abc")}
    assert client.head(f"/v2/team/app/blobs/{wrong}").status_code == 404
    assert state() == before


def test_put_without_digest_is_refused(client):
    location = start(client)
    response = client.put(location)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_chunks_beyond_one_part_are_assembled_by_multipart(client):
    location = start(client)
    chunks = [os.urandom(spec.API_MAX_BODY_BYTES), os.urandom(spec.API_MAX_BODY_BYTES), os.urandom(7)]
    offset = 0
    for chunk in chunks:
        response = client.patch(location, body=chunk,
                                headers={**OCTET, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert response.status_code == 202
        offset += len(chunk)
    digest = digest_of(b"".join(chunks))
    assert client.put(f"{location}?digest={digest}").status_code == 201
    assert s3_object(f"blobs/sha256/{digest[7:]}") == b"".join(chunks)


def test_body_above_the_api_limit_gets_413_with_advice(client, state):
    location = start(client)
    before = state()
    response = client.patch(location, body=b"x" * (spec.API_MAX_BODY_BYTES + 1), headers=OCTET)
    assert response.status_code == 413
    detail = json.loads(response.body)["errors"][0]["detail"]
    assert "dockless gateway" in detail["advice"] and "dockless push" in detail["advice"]
    assert state() == before


def test_upload_total_above_the_api_cap_gets_413(client, state, monkeypatch):
    monkeypatch.setattr(spec, "API_MAX_UPLOAD_BYTES", 5)
    location = start(client)
    client.patch(location, body=b"abc", headers=OCTET)
    before = state()
    response = client.patch(location, body=b"def", headers=OCTET)
    assert response.status_code == 413
    assert json.loads(response.body)["errors"][0]["detail"]["limit_bytes"] == 5
    assert state() == before


def test_delete_cancels_the_session_and_its_staged_data(client, state):
    before = state()
    location = start(client)
    client.patch(location, body=b"abc", headers=OCTET)
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert state() == before


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_gets_404(client, method):
    path = "/v2/team/app/blobs/uploads/0123456789abcdef"
    response = client.request(method, f"{path}?digest={digest_of(b'')}", body=b"", headers=OCTET)
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_of_another_repository_is_unknown_here(client):
    location = start(client, "team/app")
    response = client.get(location.replace("team/app", "team/other"))
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"upload": location.rsplit("/", 1)[1]}


def test_expired_session_is_unknown_and_cleaned_by_the_job(client, clock, state, registry):
    before = state()
    location = start(client)
    client.patch(location, body=b"abc", headers=OCTET)
    clock.advance(hours=25)
    response = client.patch(location, body=b"def", headers=OCTET)
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"upload": location.rsplit("/", 1)[1],
                                                                "reason": "expired"}
    from chalicelib.routes.jobs import clean_expired_uploads
    assert clean_expired_uploads(registry) == 1
    assert state() == before


def test_mount_from_a_repository_that_has_the_blob(client, push):
    descriptor = push.blob("team/base", b"shared bytes")
    digest = descriptor["digest"]
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=team/base")
    assert response.status_code == 201
    assert response.headers["Location"] == f"{PUBLIC_URL}/v2/team/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200


def test_mount_of_a_blob_the_source_lacks_opens_a_session_instead(client, push):
    push.blob("elsewhere/repo", b"bytes only elsewhere")
    digest = digest_of(b"bytes only elsewhere")
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=team/base")
    assert response.status_code == 202
    assert "Docker-Upload-UUID" in response.headers
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404


def test_mount_with_invalid_digest_is_refused(client):
    response = client.post("/v2/team/app/blobs/uploads/?mount=sha256:nothex&from=team/base")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_a_chunk_that_lost_a_race_is_range_invalid_with_the_sessions_state(client, registry):
    """Two PATCHes read the session at offset 0; the second to write finds it moved on: 416 with
    the Range the client must continue from, and its chunk not counted."""
    from chalicelib.registry.blobs import BlobService
    from chalicelib.oci.errors import RegistryError
    upload_id = start(client).rsplit("/", 1)[1]
    service = BlobService(registry)
    stale = service.load_upload("team/app", upload_id)
    service.append(service.load_upload("team/app", upload_id), b"first")
    with pytest.raises(RegistryError) as raced:
        service.append(stale, b"second")
    assert raced.value.status == 416 and raced.value.error.code == "RANGE_INVALID"
    assert raced.value.detail == "a concurrent chunk changed the upload"
    assert raced.value.headers["Range"] == "0-4"
    assert service.load_upload("team/app", upload_id).received == 5


def test_an_upload_may_reach_the_api_cap_exactly_and_not_a_byte_more(client, registry):
    from chalicelib.registry.blobs import BlobService
    from chalicelib.oci.errors import RegistryError
    from chalicelib.metadata.models import Upload
    upload_id = start(client).rsplit("/", 1)[1]
    Upload.get(upload_id).update(actions=[Upload.received.set(spec.API_MAX_UPLOAD_BYTES - 4)])
    service = BlobService(registry)
    assert service.append(service.load_upload("team/app", upload_id), b"last").received == spec.API_MAX_UPLOAD_BYTES
    with pytest.raises(RegistryError) as refused:
        service.append(service.load_upload("team/app", upload_id), b"!")
    assert refused.value.status == 413
    assert refused.value.detail == {"limit_bytes": spec.API_MAX_UPLOAD_BYTES, "advice": spec.BIG_BLOB_ADVICE}


def test_a_session_expires_at_its_expiry_time_exactly(client, clock, registry):
    from chalicelib.routes.jobs import clean_expired_uploads
    location = start(client)
    clock.advance(seconds=registry.settings.upload_ttl_seconds - 1)
    assert client.patch(location, body=b"abc", headers=OCTET).status_code == 202
    assert clean_expired_uploads(registry) == 0
    clock.advance(seconds=1)
    assert client.patch(location, body=b"def", headers=OCTET).status_code == 404
    assert clean_expired_uploads(registry) == 1
