"""The local stack's AWS is as closed as a deployment's (dockless/local/aws.py): the public S3 door
takes only unexpired URLs the registry presigned, the internal door only this run's signatures,
DynamoDB is never reachable from outside, and S3 checks x-amz-checksum-sha256 as AWS does."""
import hashlib
import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from dockless.local.aws import Door, LocalAws, Refused, Signatures

MiB = 1024 * 1024


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def admin(stack, scope):
    answer = requests.get(f"{stack.url}/token", params={"service": "dockless", "scope": scope},
                          auth=("admin", stack.admin_token))
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def start_direct(stack, repo, data):
    """Open a session and ask for a presigned single PUT: (auth, upload id, the plan)."""
    auth = admin(stack, f"repository:{repo}:pull,push")
    upload_id = requests.post(f"{stack.api_url}/v2/{repo}/blobs/uploads/", headers=auth).headers["Docker-Upload-UUID"]
    plan = requests.post(f"{stack.api_url}/dockless/v1/{repo}/uploads/{upload_id}/direct", headers=auth,
                         json={"digest": digest(data), "size": len(data)}).json()
    assert plan["mode"] == "single"
    return auth, upload_id, plan


def complete(stack, repo, auth, upload_id, data):
    return requests.put(f"{stack.api_url}/v2/{repo}/blobs/uploads/{upload_id}", params={"digest": digest(data)},
                        headers=auth)


def test_wrong_bytes_to_a_presigned_put_are_refused_by_s3(stack, http):
    data = os.urandom(100_000)
    auth, upload_id, plan = start_direct(stack, "team/s3", data)
    refused = requests.put(plan["url"], data=os.urandom(len(data)), headers=plan["headers"])
    assert refused.status_code == 400 and "<Code>BadDigest</Code>" in refused.text
    response = complete(stack, "team/s3", auth, upload_id, data)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert http.head(f"{stack.url}/v2/team/s3/blobs/{digest(data)}").status_code == 404


def test_a_used_presigned_url_cannot_rewrite_the_blob(stack, http, caplog):
    caplog.set_level("INFO", logger="dockless.request")
    data = os.urandom(100_000)
    auth, upload_id, plan = start_direct(stack, "team/s3", data)
    assert requests.put(plan["url"], data=data, headers=plan["headers"]).status_code == 200
    assert complete(stack, "team/s3", auth, upload_id, data).status_code == 201
    completion = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"][-1]
    # Proven by S3's checksum: one HeadObject, no byte read back.
    assert "s3:HeadObject" in completion["aws_calls"] and "s3:GetObject" not in completion["aws_calls"]
    again = requests.put(plan["url"], data=os.urandom(len(data)), headers=plan["headers"])
    assert again.status_code == 400 and "<Code>BadDigest</Code>" in again.text
    assert http.get(f"{stack.url}/v2/team/s3/blobs/{digest(data)}").content == data


def blob_url(stack, http, repo, data):
    """A presigned GET the registry handed out for a blob it holds."""
    http.post(f"{stack.url}/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, data=data)
    redirect = http.get(f"{stack.url}/v2/{repo}/blobs/{digest(data)}", allow_redirects=False)
    assert redirect.status_code == 307
    return redirect.headers["Location"]


def test_the_public_s3_door_takes_only_what_the_registry_presigned(stack, http):
    data = os.urandom(1000)
    url = blob_url(stack, http, "team/secret", data)
    assert requests.get(url).content == data
    parts = urlsplit(url)
    door = f"{parts.scheme}://{parts.netloc}"
    assert door != stack.moto_url  # clients are sent to the public door, never the internal one
    bucket_and_key = parts.path
    # Made-up credentials, which the moto server alone would accept: refused for S3 and DynamoDB.
    made_up = boto3.session.Session(aws_access_key_id="dockless-local", aws_secret_access_key="guess",
                                    region_name="us-east-1")
    for endpoint in (door, stack.moto_url):
        with pytest.raises(ClientError) as refused:
            made_up.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket_and_key.split("/")[1],
                                                                   Key=bucket_and_key.split("/", 2)[2])
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as refused:
            made_up.client("dynamodb", endpoint_url=endpoint).put_item(
                TableName="dockless-local-grants",
                Item={"resource": {"S": "ns:team"}, "subject": {"S": "user:mallory"}, "role": {"S": "admin"}})
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Unsigned, tampered with, or for another key: refused.
    assert requests.get(f"{door}{bucket_and_key}").status_code == 403
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered).status_code == 403
    other_key = url.replace(bucket_and_key, bucket_and_key[:-1] + ("0" if bucket_and_key[-1] != "0" else "1"))
    assert requests.get(other_key).status_code == 403


def test_signed_requests_for_other_services_never_pass_the_public_door(stack):
    """Even with the run's own credentials, the public door is S3 and presigned URLs only."""
    door = json_door(stack)
    dynamodb = boto3.session.Session().client("dynamodb", endpoint_url=door, region_name="us-east-1")
    with pytest.raises(ClientError) as refused:
        dynamodb.list_tables()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert dynamodb.meta.endpoint_url != stack.moto_url


def json_door(stack):
    from chalicelib.backend import backend
    return backend().settings.s3_presign_endpoint_url


def presigned_parts(url):
    parts = urlsplit(url)
    return parts, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_an_expired_presigned_url_is_refused():
    signatures = Signatures("a secret", clock=time.time)
    session = boto3.session.Session(aws_access_key_id="dockless-local", aws_secret_access_key="a secret",
                                    region_name="us-east-1")
    s3 = session.client("s3", endpoint_url="http://door.test:1", config=Config(signature_version="s3v4"))
    sigv2 = session.client("s3", endpoint_url="http://door.test:1", config=Config(signature_version="s3"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=300)
    old = urlsplit(sigv2.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}))
    with pytest.raises(Refused, match="only requests presigned"):
        signatures.presigned("GET", old.netloc, old.path, old.query, {"host": old.netloc})
    parts, _ = presigned_parts(url)
    assert signatures.presigned("GET", parts.netloc, parts.path, parts.query, {"host": parts.netloc}) == "s3"
    later = Signatures("a secret", clock=lambda: time.time() + 301)
    with pytest.raises(Refused, match="expired"):
        later.presigned("GET", parts.netloc, parts.path, parts.query, {"host": parts.netloc})
    with pytest.raises(Refused, match="signature"):
        Signatures("another secret").presigned("GET", parts.netloc, parts.path, parts.query, {"host": parts.netloc})


def test_host_0_0_0_0_does_not_widen_the_internal_door():
    aws = LocalAws("0.0.0.0", "a secret")
    aws.start()
    try:
        internal, public = (server.server_address[0] for server in aws._servers)
        assert internal == "127.0.0.1" and public == "0.0.0.0"
        assert isinstance(aws._servers[1].app, Door) and aws._servers[1].app._presigned_only
    finally:
        aws.stop()


def test_the_local_aws_holds_no_object_after_the_request_that_made_it(stack, http):
    """moto records every model object it makes (for a dashboard this stack does not serve): each
    item of the copy of the tables a transaction takes, each object a bucket ever held. A stack
    racing pushes for ten minutes grew by about 7 MB a push, to 18 GB. The doors forget them after
    each request: a push, a tag move and a delete leave no record behind."""
    from moto.core.model_instances import model_data
    config, layer = b'{"architecture": "amd64", "os": "linux"}', os.urandom(1000)
    for data in (config, layer):
        assert http.post(f"{stack.url}/v2/team/held/blobs/uploads/", params={"digest": digest(data)},
                         data=data).status_code == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest(layer), "size": len(layer)}]}).encode()
    for tag in ("v1", "v2"):
        assert http.put(f"{stack.url}/v2/team/held/manifests/{tag}", data=manifest,
                        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201
    assert http.delete(f"{stack.url}/v2/team/held/manifests/{digest(manifest)}").status_code == 202
    held = {name: len(model.instances_tracked) for service in model_data.values()
            for name, model in service.items() if model.instances_tracked}
    assert held == {}
    # What the tables and the bucket hold is theirs, not the records': the layer still pulls.
    assert http.get(f"{stack.url}/v2/team/held/blobs/{digest(layer)}").content == layer


def test_a_layer_lies_on_disk_and_a_small_object_in_memory(stack, http):
    """moto keeps an object's bytes in memory up to 5 MiB by default: a long-lived stack grew by
    every layer pushed (0.44 MB a push of 200 KB layers). Above OBJECT_BYTES_IN_MEMORY they are in
    a temporary file; a config stays in memory."""
    from moto.s3.models import s3_backends
    from dockless.local.aws import OBJECT_BYTES_IN_MEMORY
    layer, config = os.urandom(OBJECT_BYTES_IN_MEMORY + 4321), b'{"os": "linux", "disk": "test"}'
    for data in (layer, config):
        assert http.post(f"{stack.url}/v2/team/disk/blobs/uploads/", params={"digest": digest(data)},
                         data=data).status_code == 201
    buckets = [bucket for backend in s3_backends.values() for region in backend.values()
               for bucket in region.buckets.values()]
    stored = [key for bucket in buckets for key in bucket.keys.values()]
    (large,) = [key for key in stored if key.size == len(layer)]
    (small,) = [key for key in stored if key.size == len(config)]
    assert large._value_buffer._rolled and not small._value_buffer._rolled
    assert http.get(f"{stack.url}/v2/team/disk/blobs/{digest(layer)}").content == layer
