"""`dockless gateway` in front of the local stack's API, driven over HTTP as docker drives it:
POST, a chunked PATCH, PUT ?digest=. The stack runs in this process so a transfer can fail."""
import hashlib
import json
import os

import pytest
import requests


MiB = 1024 * 1024


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def api_calls(stack, caplog):
    """The API's request records made during the test."""
    caplog.set_level("INFO", logger="dockless.request")
    return lambda: [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"]


def push_blob(http, url, repo, data, chunk=None):
    response = http.post(f"{url}/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.startswith(url.replace("127.0.0.1", "localhost"))  # rewritten to the gateway
    body = (data[i:i + (chunk or len(data) or 1)] for i in range(0, len(data), chunk or len(data) or 1))
    response = http.patch(location, data=body, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    return http.put(response.headers["Location"], params={"digest": digest(data)})


def test_single_put_path_round_trip(stack, http, api_calls):
    data = os.urandom(2 * MiB)
    response = push_blob(http, stack.url, "team/gw", data, chunk=256 * 1024)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest(data)
    assert http.get(f"{stack.url}/v2/team/gw/blobs/{digest(data)}").content == data
    routes = [r["route"] for r in api_calls()]
    assert "/dockless/v1/{name}/uploads/{upload_id}/direct" in routes
    assert all(r["body_bytes"] < 4096 for r in api_calls())  # no layer byte reached the API
    assert "/v2/{name}/blobs/uploads/{upload_id}" in routes and not [r for r in api_calls()
                                                                    if r["method"] == "PATCH"]


def test_multipart_path_round_trip(stack, http, api_calls):
    data = os.urandom(13 * MiB)
    response = push_blob(http, stack.url, "team/gw", data, chunk=MiB)
    assert response.status_code == 201, response.text
    assert http.get(f"{stack.url}/v2/team/gw/blobs/{digest(data)}").content == data
    assert [r["route"] for r in api_calls()].count("/dockless/v1/{name}/uploads/{upload_id}/parts") == 1
    # Proven by rehashing in the local stack, so it may be mounted at once.
    mount = http.post(f"{stack.url}/v2/team/other/blobs/uploads/",
                          params={"mount": digest(data), "from": "team/gw"})
    assert mount.status_code == 201


def test_a_part_that_fails_once_is_retried(stack, http, monkeypatch):
    real_put, failures = stack.gateway.bucket.session.put, []

    def flaky_put(url, **kwargs):
        if not failures:
            failures.append(url)
            raise requests.ConnectionError("injected: connection reset")
        return real_put(url, **kwargs)

    monkeypatch.setattr(stack.gateway.bucket.session, "put", flaky_put)
    data = os.urandom(11 * MiB)
    assert push_blob(http, stack.url, "team/flaky", data).status_code == 201
    assert failures
    assert http.get(f"{stack.url}/v2/team/flaky/blobs/{digest(data)}").content == data


def test_body_that_does_not_match_its_digest_is_refused_and_not_linked(stack, http):
    response = http.post(f"{stack.url}/v2/team/gw/blobs/uploads/")
    location = response.headers["Location"]
    http.patch(location, data=b"the real bytes", headers={"Content-Type": "application/octet-stream"})
    claimed = digest(b"other bytes")
    response = http.put(location, params={"digest": claimed})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert http.head(f"{stack.url}/v2/team/gw/blobs/{claimed}").status_code == 404
    assert http.get(location).status_code == 404  # the session upstream is gone too


def test_monolithic_post_goes_direct(stack, http, api_calls):
    data = os.urandom(300_000)
    response = http.post(f"{stack.url}/v2/team/mono/blobs/uploads/", params={"digest": digest(data)},
                             data=data, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"/v2/team/mono/blobs/{digest(data)}")
    assert http.get(f"{stack.url}/v2/team/mono/blobs/{digest(data)}").content == data
    assert all(r["body_bytes"] < 4096 for r in api_calls())


def test_out_of_order_chunk_is_416(stack, http):
    location = http.post(f"{stack.url}/v2/team/gw/blobs/uploads/").headers["Location"]
    http.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    response = http.patch(location, data=b"xyz", headers={"Content-Range": "5-7"})
    assert response.status_code == 416
    assert response.headers["Range"] == "0-2"
    status = http.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-2"


def test_other_requests_pass_through_unchanged(stack, http):
    direct = http.get(f"{stack.api_url}/v2/team/nothing/manifests/v1")
    via_gateway = http.get(f"{stack.url}/v2/team/nothing/manifests/v1")
    assert via_gateway.status_code == direct.status_code == 404
    assert via_gateway.content == direct.content
    assert via_gateway.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
