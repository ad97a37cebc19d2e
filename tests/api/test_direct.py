"""The direct-upload extension (/dockless/v1): presigned URLs, completion, proof of possession."""
import base64
import dataclasses
import hashlib
import json
import os
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests
from botocore.stub import Stubber

from chalicelib.backend import use_backend
from chalicelib.metadata.models import BlobLink
from chalicelib.registry.blobs import BlobService
from chalicelib.storage.objects import ObjectStore
from tests.fixtures import PUBLIC_URL, digest_of, error_code

MiB = 1024 * 1024
SIGNED = "content-length;host;x-amz-checksum-sha256;x-amz-sdk-checksum-algorithm"


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def start(client, repo="team/app"):
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    return response.headers["Docker-Upload-UUID"]


def open_direct(client, upload_id, digest, size, repo="team/app"):
    return client.post(f"/dockless/v1/{repo}/uploads/{upload_id}/direct",
                       body=json.dumps({"digest": digest, "size": size}),
                       headers={"Content-Type": "application/json"})


def complete(client, upload_id, digest, repo="team/app"):
    return client.put(f"/v2/{repo}/blobs/uploads/{upload_id}?digest={digest}")


def bucket_keys(prefix=""):
    s3 = boto3.client("s3", region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket="test-bucket", Prefix=prefix).get("Contents", ())]


@pytest.fixture
def multipart(registry):
    """Settings with the multipart threshold lowered, as tests may not push gigabytes."""
    settings = dataclasses.replace(registry.settings, multipart_threshold_bytes=6 * MiB, part_bytes=5 * MiB)
    use_backend(dataclasses.replace(registry, settings=settings))


def test_single_put_url_signs_length_and_checksum(client):
    data = os.urandom(1000)
    upload_id = start(client)
    response = open_direct(client, upload_id, digest_of(data), len(data))
    assert response.status_code == 200
    plan = response.json_body
    assert (plan["mode"], plan["method"]) == ("single", "PUT")
    query = parse_qs(urlparse(plan["url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == [SIGNED]
    assert query["X-Amz-Expires"] == ["300"]
    assert urlparse(plan["url"]).path.endswith(f"/blobs/direct/{upload_id}")
    assert plan["headers"] == {"Content-Length": "1000", "x-amz-checksum-sha256": b64(data),
                               "x-amz-sdk-checksum-algorithm": "SHA256"}


def test_single_put_then_complete_links_the_object_where_it_lies(client, caplog):
    caplog.set_level("INFO", logger="dockless.request")
    data = os.urandom(5000)
    digest = digest_of(data)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest, len(data)).json_body
    assert requests.put(plan["url"], data=data, headers=plan["headers"]).status_code == 200
    response = complete(client, upload_id, digest)
    assert response.status_code == 201
    opened, completed = [json.loads(r.getMessage())["aws_calls"] for r in caplog.records
                         if r.name == "dockless.request"][-2:]
    # Opening: the session and what the quota needs in one read, then the plan written on the
    # session. Completing: one read again, S3's stored checksum, the digest's links elsewhere (is
    # it proven already?), one transaction, then the repository's catalog entry read after it
    # (and, the repository's first, written). A check that reads again costs a call here.
    assert opened == ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
    assert completed == ["dynamodb:BatchGetItem", "s3:HeadObject", "dynamodb:Query", "dynamodb:TransactWriteItems",
                         "dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"] == f"{PUBLIC_URL}/v2/team/app/blobs/{digest}"
    location = client.get(f"/v2/team/app/blobs/{digest}").headers["Location"]
    assert urlparse(location).path.endswith(f"/blobs/direct/{upload_id}")  # recorded, not copied
    assert requests.get(location).content == data
    assert bucket_keys("blobs/sha256/") == []


def test_complete_without_uploading_is_refused_even_if_the_digest_exists_elsewhere(client, push, state):
    data = b"a layer that another team pushed"
    digest = push.blob("other/team", data)["digest"]
    upload_id = start(client)
    open_direct(client, upload_id, digest, len(data))
    before = state()
    response = complete(client, upload_id, digest)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
    after = state()
    assert [k for k in after[1] if "direct" in k] == []
    assert after[0]["BlobLink"] == before[0]["BlobLink"]


def test_completion_for_another_digest_than_signed_is_refused(client):
    data = os.urandom(100)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
    requests.put(plan["url"], data=data, headers=plan["headers"])
    response = complete(client, upload_id, digest_of(b"other"))
    assert error_code(response) == "DIGEST_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == {
        "expected": digest_of(data), "given": digest_of(b"other"), "reason": "not the digest signed"}
    assert client.head(f"/v2/team/app/blobs/{digest_of(b'other')}").status_code == 404


def test_same_bytes_already_proven_are_deduplicated(client, push):
    data = os.urandom(2000)
    digest = push.blob("team/base", data)["digest"]
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest, len(data)).json_body
    requests.put(plan["url"], data=data, headers=plan["headers"])
    assert complete(client, upload_id, digest).status_code == 201
    location = client.get(f"/v2/team/app/blobs/{digest}").headers["Location"]
    assert urlparse(location).path.endswith(f"/blobs/sha256/{digest[7:]}")
    assert bucket_keys("blobs/direct/") == []


def test_completion_compares_the_checksum_s3_stored(client, state):
    """Other bytes of the same size in the staged object (S3 would have refused them at the
    presigned PUT; written here straight to the key): completion refuses them from S3's own
    checksum, and nothing is linked."""
    claimed, other = os.urandom(100), os.urandom(100)
    before = state()
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(claimed), len(claimed))
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="test-bucket", Key=f"blobs/direct/{upload_id}", Body=other, ChecksumSHA256=b64(other))
    response = complete(client, upload_id, digest_of(claimed))
    assert response.status_code == 400 and error_code(response) == "DIGEST_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == {
        "expected": digest_of(claimed), "reason": "the bucket holds no such bytes for this upload"}
    assert client.head(f"/v2/team/app/blobs/{digest_of(claimed)}").status_code == 404
    assert state() == before


def upload_parts(client, upload_id, data, plan, repo="team/app"):
    size = plan["part_size"]
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    assert len(pieces) == plan["part_count"]
    response = client.post(f"/dockless/v1/{repo}/uploads/{upload_id}/parts",
                           body=json.dumps({"parts": [{"number": n + 1, "sha256": b64(p)}
                                                      for n, p in enumerate(pieces)]}),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    for part, piece in zip(response.json_body["parts"], pieces, strict=True):
        query = parse_qs(urlparse(part["url"]).query)
        assert query["X-Amz-SignedHeaders"] == [SIGNED]
        assert part["headers"] == {"Content-Length": str(len(piece)), "x-amz-checksum-sha256": b64(piece),
                                   "x-amz-sdk-checksum-algorithm": "SHA256"}
        assert requests.put(part["url"], data=piece, headers=part["headers"]).status_code == 200


def test_multipart_blob_stays_unshared_until_verified(client, multipart, registry):
    data = os.urandom(12 * MiB)
    digest = digest_of(data)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest, len(data)).json_body
    assert plan == {"mode": "multipart", "part_size": 5 * MiB, "part_count": 3, "max_parts_per_request": 100}
    upload_parts(client, upload_id, data, plan)
    assert complete(client, upload_id, digest).status_code == 201
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
    # Not proven as a whole: no mount into another repository yet.
    assert client.post(f"/v2/team/copy/blobs/uploads/?mount={digest}&from=team/app").status_code == 202

    from chalicelib.routes.jobs import verify_unproven_blobs
    assert verify_unproven_blobs(registry) == 1
    assert client.post(f"/v2/team/copy/blobs/uploads/?mount={digest}&from=team/app").status_code == 201
    location = client.get(f"/v2/team/copy/blobs/{digest}").headers["Location"]
    assert requests.get(location).content == data


def test_verification_job_unlinks_a_multipart_blob_that_does_not_hash(client, multipart, registry):
    data = os.urandom(7 * MiB)
    wrong = digest_of(b"not these bytes")
    upload_id = start(client)
    plan = open_direct(client, upload_id, wrong, len(data)).json_body
    upload_parts(client, upload_id, data, plan)
    assert complete(client, upload_id, wrong).status_code == 201
    from chalicelib.routes.jobs import verify_unproven_blobs
    assert verify_unproven_blobs(registry) == 0
    assert client.head(f"/v2/team/app/blobs/{wrong}").status_code == 404
    assert bucket_keys("blobs/direct/") == []


def test_completing_a_multipart_upload_with_parts_missing_is_refused(client, multipart):
    data = os.urandom(12 * MiB)
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(data), len(data))
    response = complete(client, upload_id, digest_of(data))
    assert response.status_code == 400
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == "not every part has been uploaded"


@pytest.mark.parametrize("parts, message", [
    ([{"number": 0, "sha256": b64(b"x")}], "part number must be 1..3"),
    ([{"number": 4, "sha256": b64(b"x")}], "part number must be 1..3"),
    ([{"number": 1, "sha256": "not base64"}], "sha256 is the part's base64 SHA-256"),
    ([{"number": True, "sha256": b64(b"x")}], "part number must be 1..3"),
    ([], "ask for 1 to 100 parts at a time"),
    ([{"number": 1, "sha256": b64(b"x")}] * 101, "ask for 1 to 100 parts at a time"),
])
def test_bad_part_requests_are_refused(client, multipart, parts, message):
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(b"x" * 12 * MiB), 12 * MiB)
    response = client.post(f"/dockless/v1/team/app/uploads/{upload_id}/parts",
                           body=json.dumps({"parts": parts}), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == message


def test_part_urls_for_a_single_put_upload_are_refused(client):
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(b"small"), 5)
    response = client.post(f"/dockless/v1/team/app/uploads/{upload_id}/parts",
                           body=json.dumps({"parts": [{"number": 1, "sha256": b64(b"small")}]}),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "BLOB_UPLOAD_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == "this upload is not a direct multipart upload"


@pytest.mark.parametrize("body, code", [
    ({"digest": "sha256:12", "size": 1}, "DIGEST_INVALID"),
    ({"size": 1}, "DIGEST_INVALID"),
    ({"digest": digest_of(b"x"), "size": -1}, "SIZE_INVALID"),
    ({"digest": digest_of(b"x"), "size": "1"}, "SIZE_INVALID"),
])
def test_bad_open_requests_are_refused(client, state, body, code):
    upload_id = start(client)
    before = state()
    response = client.post(f"/dockless/v1/team/app/uploads/{upload_id}/direct", body=json.dumps(body),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == code
    assert state() == before


def test_open_twice_or_after_chunks_is_refused(client):
    upload_id = start(client)
    assert open_direct(client, upload_id, digest_of(b"x"), 1).status_code == 200
    assert error_code(open_direct(client, upload_id, digest_of(b"x"), 1)) == "BLOB_UPLOAD_INVALID"
    other = start(client)
    client.patch(f"/v2/team/app/blobs/uploads/{other}", body=b"abc",
                 headers={"Content-Type": "application/octet-stream"})
    assert error_code(open_direct(client, other, digest_of(b"abc"), 3)) == "BLOB_UPLOAD_INVALID"


def test_direct_session_completes_without_a_body_only(client):
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(b"x"), 1)
    response = client.put(f"/v2/team/app/blobs/uploads/{upload_id}?digest={digest_of(b'x')}", body=b"x",
                          headers={"Content-Type": "application/octet-stream"})
    assert error_code(response) == "BLOB_UPLOAD_INVALID"


def test_expired_direct_session_loses_its_object(client, clock, state, registry):
    before = state()
    data = os.urandom(100)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
    requests.put(plan["url"], data=data, headers=plan["headers"])
    clock.advance(days=2)
    from chalicelib.routes.jobs import clean_expired_uploads
    assert clean_expired_uploads(registry) == 1
    assert state() == before


def test_completion_refuses_a_checksum_s3_reports_for_other_bytes(client, state, monkeypatch):
    """As S3 answers HeadObject for an object of the right size whose stored SHA-256 is another's
    (in-process moto reports no checksum at all, which would pass for any comparison): refused,
    and nothing linked."""
    from chalicelib.storage.objects import ObjectStore
    claimed, other = os.urandom(100), os.urandom(100)
    before = state()
    upload_id = start(client)
    open_direct(client, upload_id, digest_of(claimed), len(claimed))
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="test-bucket", Key=f"blobs/direct/{upload_id}", Body=other)
    monkeypatch.setattr(ObjectStore, "stored_checksum", lambda self, key: (len(other), b64(other)))
    response = complete(client, upload_id, digest_of(claimed))
    assert response.status_code == 400 and error_code(response) == "DIGEST_INVALID", response.body
    assert json.loads(response.body)["errors"][0]["detail"] == {
        "expected": digest_of(claimed), "reason": "the bucket holds no such bytes for this upload"}
    assert BlobLink.count("team/app") == 0
    assert client.head(f"/v2/team/app/blobs/{digest_of(claimed)}").status_code == 404
    assert state() == before


def test_aws_mode_completion_reads_no_layer_bytes(registry, client):
    """With botocore's Stubber as S3: completion may only HeadObject (checksum mode) and must
    neither GetObject nor copy. The Stubber fails on any call not expected here."""
    data = os.urandom(3000)
    digest = digest_of(data)
    upload_id = start(client)
    open_direct(client, upload_id, digest, len(data))

    s3 = boto3.client("s3", region_name="us-east-1")
    stubbed = dataclasses.replace(registry, objects=ObjectStore(s3, "test-bucket"))
    with Stubber(s3) as stubber:
        stubber.add_response("head_object",
                             {"ContentLength": len(data), "ChecksumSHA256": b64(data)},
                             {"Bucket": "test-bucket", "Key": f"blobs/direct/{upload_id}", "ChecksumMode": "ENABLED"})
        service = BlobService(stubbed)
        link = service.complete(service.load_upload("team/app", upload_id), digest, b"")
        stubber.assert_no_pending_responses()
    assert link.location == f"blobs/direct/{upload_id}" and link.verified


def test_cancelling_a_direct_multipart_upload_aborts_it_and_leaves_nothing(client, multipart, state):
    before = state()
    data = os.urandom(12 * MiB)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
    assert plan["mode"] == "multipart"
    part = data[:5 * MiB]
    [signed] = client.post(f"/dockless/v1/team/app/uploads/{upload_id}/parts",
                           body=json.dumps({"parts": [{"number": 1, "sha256": b64(part)}]}),
                           headers={"Content-Type": "application/json"}).json_body["parts"]
    assert requests.put(signed["url"], data=part, headers=signed["headers"]).status_code == 200
    s3 = boto3.client("s3", region_name="us-east-1")

    def open_uploads():
        return [u for u in s3.list_multipart_uploads(Bucket="test-bucket").get("Uploads", [])
                if u["Key"] == f"blobs/direct/{upload_id}"]
    assert len(open_uploads()) == 1
    assert client.delete(f"/v2/team/app/blobs/uploads/{upload_id}").status_code == 204
    assert open_uploads() == []
    assert client.get(f"/v2/team/app/blobs/uploads/{upload_id}").status_code == 404
    assert state()[1] == before[1]  # no object left in the bucket


def test_cancelling_a_direct_single_upload_deletes_what_was_put(client, state):
    data = os.urandom(1000)
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
    assert requests.put(plan["url"], data=data, headers=plan["headers"]).status_code == 200
    assert bucket_keys("blobs/direct/") != []
    assert client.delete(f"/v2/team/app/blobs/uploads/{upload_id}").status_code == 204
    assert bucket_keys("blobs/direct/") == []


def test_aborting_an_upload_s3_no_longer_has_is_not_an_error(registry):
    s3 = boto3.client("s3", region_name="us-east-1")
    multipart_id = registry.objects.start_multipart("blobs/direct/gone")
    s3.abort_multipart_upload(Bucket="test-bucket", Key="blobs/direct/gone", UploadId=multipart_id)
    registry.objects.abort_multipart("blobs/direct/gone", multipart_id)  # the job's retry: no error


def test_the_multipart_calls_ask_s3_for_sha256_checksums(registry):
    """What only real S3 enforces, checked as the calls the code makes (botocore's Stubber fails
    on any other call or parameter): a multipart upload is created for SHA-256 checksums, completed
    with each part's checksum as S3 listed it, and a stored checksum is read in checksum mode."""
    s3 = boto3.client("s3", region_name="us-east-1")
    store = ObjectStore(s3, "test-bucket")
    with Stubber(s3) as stubber:
        stubber.add_response("create_multipart_upload", {"UploadId": "m1"},
                             {"Bucket": "test-bucket", "Key": "blobs/direct/k", "ChecksumAlgorithm": "SHA256"})
        stubber.add_response("list_parts", {"Parts": [
            {"PartNumber": 1, "ETag": '"a"', "ChecksumSHA256": "c1"}, {"PartNumber": 2, "ETag": '"b"'}]},
            {"Bucket": "test-bucket", "Key": "blobs/direct/k", "UploadId": "m1"})
        stubber.add_response("complete_multipart_upload", {}, {
            "Bucket": "test-bucket", "Key": "blobs/direct/k", "UploadId": "m1", "MultipartUpload": {"Parts": [
                {"PartNumber": 1, "ETag": '"a"', "ChecksumSHA256": "c1"}, {"PartNumber": 2, "ETag": '"b"'}]}})
        stubber.add_response("head_object", {"ContentLength": 7, "ChecksumSHA256": "c-2"},
                             {"Bucket": "test-bucket", "Key": "blobs/direct/k", "ChecksumMode": "ENABLED"})
        assert store.start_multipart("blobs/direct/k") == "m1"
        assert store.finish_multipart("blobs/direct/k", "m1", 2) is True
        assert store.stored_checksum("blobs/direct/k") == (7, "c-2")
        stubber.assert_no_pending_responses()


def test_a_multipart_upload_missing_a_part_is_not_completed(registry):
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stubber:
        stubber.add_response("list_parts", {"Parts": [{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 3, "ETag": '"c"'}]},
                             {"Bucket": "test-bucket", "Key": "k", "UploadId": "m1"})
        assert ObjectStore(s3, "test-bucket").finish_multipart("k", "m1", 3) is False
        stubber.assert_no_pending_responses()


def test_presigned_upload_urls_live_five_minutes(registry):
    store = registry.objects
    single, _ = store.presign_put("blobs/direct/k", 10, hashlib.sha256(b"x").hexdigest())
    part, _ = store.presign_part("blobs/direct/k", "m1", 2, 10, b64(b"x"))
    for url in (single, part):
        assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["300"]
    query = parse_qs(urlparse(part).query)
    assert query["partNumber"] == ["2"] and query["uploadId"] == ["m1"]
    assert urlparse(part).path.endswith("/blobs/direct/k") and "test-bucket" in urlparse(part).netloc + urlparse(part).path


@pytest.mark.parametrize("region, extra", [("us-east-1", {}),
                                           ("eu-west-1", {"CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}})])
def test_a_bucket_outside_us_east_1_names_its_region(region, extra):
    """The local stack and the tests create their bucket; S3 wants the region named outside us-east-1."""
    s3 = boto3.client("s3", region_name=region)
    with Stubber(s3) as stubber:
        stubber.add_response("create_bucket", {}, {"Bucket": "b", **extra})
        ObjectStore(s3, "b").create_bucket(region)
        stubber.assert_no_pending_responses()


def test_a_stream_that_fails_after_a_part_leaves_no_multipart_upload(registry):
    """ObjectStore.write_verified (upload completion, a cache's fill): bytes that stop coming after
    S3 got a part abort the multipart upload; nothing is left to pay for."""
    s3 = boto3.client("s3", region_name="us-east-1")

    def pieces():
        yield os.urandom(6 * MiB)  # one part goes up
        raise ConnectionError("the source went away")

    with pytest.raises(ConnectionError):
        registry.objects.write_verified(pieces(), "blobs/sha256/ab/cut", "0" * 64)
    assert [u for u in s3.list_multipart_uploads(Bucket="test-bucket").get("Uploads", [])
            if u["Key"] == "blobs/sha256/ab/cut"] == []
    assert bucket_keys("blobs/sha256/ab/") == []


def test_the_verification_job_counts_every_blob_it_proves(client, multipart, registry):
    from chalicelib.routes.jobs import verify_unproven_blobs
    from chalicelib.metadata.models import BlobLink
    digests = []
    for _ in range(2):
        data = os.urandom(7 * MiB)
        upload_id = start(client)
        plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
        upload_parts(client, upload_id, data, plan)
        assert complete(client, upload_id, digest_of(data)).status_code == 201
        digests.append(digest_of(data))
    assert [BlobLink.get("team/app", d).verified for d in digests] == [False, False]
    assert verify_unproven_blobs(registry) == 2
    assert [BlobLink.get("team/app", d).verified for d in digests] == [True, True]
    assert verify_unproven_blobs(registry) == 0
