"""`dockless gateway` in front of the local stack's API, driven over HTTP as docker drives it:
POST, a chunked PATCH, PUT ?digest=. The stack runs in this process so a transfer can fail."""
import hashlib
import json
import os

import pytest
import requests

from tests.fixtures import UnauthenticatedFirst, raw_exchange


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
    # S3 proved it part by part: it serves its own repository, and is mounted elsewhere only once
    # the verification job has hashed it whole (as deployed).
    def mount():
        return http.post(f"{stack.url}/v2/team/other/blobs/uploads/", params={"mount": digest(data), "from": "team/gw"})
    assert mount().status_code == 202
    from chalicelib.routes import jobs
    assert jobs.verify_unproven_blobs(stack.backend) >= 1
    assert mount().status_code == 201


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


# --- what the gateway will not do for strangers (issue 10, item 9) -------------------------------

def token_for(stack, scope, user="admin", secret=None):
    answer = requests.get(f"{stack.url}/token", params={"service": "dockless", "scope": scope},
                          auth=(user, secret or stack.admin_token))
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def open_spool_files() -> int:
    """Open files of this process (the stack and its gateway run here) that are deleted temporary files."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.endswith("(deleted)")
    return count


def test_an_unauthenticated_patch_is_challenged_and_nothing_is_spooled(stack):
    before, spooled = open_spool_files(), stack.gateway.spooled_bytes
    response = requests.patch(f"{stack.url}/v2/team/gw/blobs/uploads/{'ab' * 16}", data=os.urandom(MiB))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')
    assert 'scope="repository:team/gw:pull,push"' in response.headers["WWW-Authenticate"]
    assert stack.gateway.spooled_bytes == spooled and open_spool_files() == before


def test_a_patch_for_a_session_not_opened_here_is_the_apis_answer(stack, http):
    spooled = stack.gateway.spooled_bytes
    response = http.patch(f"{stack.url}/v2/team/gw/blobs/uploads/{'cd' * 16}", data=b"abc")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert stack.gateway.spooled_bytes == spooled
    assert http.get(f"{stack.url}/v2/team/gw/blobs/uploads/{'cd' * 16}").status_code == 404


def test_a_huge_non_upload_body_is_refused_before_it_is_read(stack):
    # Headers only: the 300 MiB body is never sent, and the answer still comes.
    answer = raw_exchange(stack.port, b"PUT /v2/x/y/manifests/z HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 314572800\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"SIZE_INVALID"' in answer and b"dockless gateway" in answer


def test_a_chunked_non_upload_body_is_cut_off_at_the_front_doors_limit(stack):
    chunk = os.urandom(MiB)
    body = b"".join(b"100000\r\n" + chunk + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
    answer = raw_exchange(stack.port, b"PUT /v2/x/y/manifests/z HTTP/1.1\r\nHost: x\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 413 ")


def open_session(stack, repo="team/gw"):
    auth = token_for(stack, f"repository:{repo}:pull,push")
    response = requests.post(f"{stack.url}/v2/{repo}/blobs/uploads/", headers=auth)
    assert response.status_code == 202
    return auth, response.headers["Location"], response.headers["Docker-Upload-UUID"]


def wait_until(predicate, seconds=10.0):
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_client_that_disconnects_mid_body_leaves_no_spool(stack):
    auth, location, upload_id = open_session(stack)
    before, spooled = open_spool_files(), stack.gateway.spooled_bytes
    head = (f"PATCH /v2/team/gw/blobs/uploads/{upload_id} HTTP/1.1\r\nHost: x\r\n{list(auth)[0]}: "
            f"{auth['Authorization']}\r\nContent-Length: {5 * MiB}\r\n\r\n").encode()
    raw_exchange(stack.port, head + os.urandom(MiB), read=False)
    assert wait_until(lambda: upload_id not in stack.gateway._sessions)
    assert stack.gateway.spooled_bytes == spooled and open_spool_files() <= before


def test_an_idle_spool_is_deleted(stack):
    import time
    auth, location, upload_id = open_session(stack)
    spooled = stack.gateway.spooled_bytes
    assert requests.patch(location, data=b"some bytes", headers=auth).status_code == 202
    assert stack.gateway.spooled_bytes == spooled + len(b"some bytes")
    assert stack.gateway.reap_idle(time.monotonic() + stack.gateway.idle_seconds + 1) >= 1
    assert stack.gateway.spooled_bytes == 0 and upload_id not in stack.gateway._sessions


def test_the_spool_is_bounded(stack, monkeypatch):
    monkeypatch.setattr(stack.gateway, "spool_limit_bytes", stack.gateway.spooled_bytes + MiB)
    spooled = stack.gateway.spooled_bytes
    auth, location, _ = open_session(stack)
    response = requests.patch(location, data=os.urandom(2 * MiB), headers=auth)
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "--spool-limit" in response.json()["errors"][0]["message"]
    assert response.headers["Retry-After"] == "60"
    assert stack.gateway.spooled_bytes == spooled


def test_content_range_must_cover_the_body(stack):
    auth, location, _ = open_session(stack)
    assert requests.patch(location, data=b"abc", headers={**auth, "Content-Range": "0-2"}).status_code == 202
    response = requests.patch(location, data=b"xyz", headers={**auth, "Content-Range": "3-9"})
    assert response.status_code == 416 and response.headers["Range"] == "0-2"
    assert response.json()["errors"][0]["code"] == "RANGE_INVALID"
    status = requests.get(location, headers=auth)
    assert status.status_code == 204 and status.headers["Range"] == "0-2"


# --- a client that sends before it holds a token (issue 11, item 1) -------------------------------

def test_unauthenticated_first_monolithic_post(stack, http):
    client, data = UnauthenticatedFirst(f"{stack.url}/token", "admin", stack.admin_token), os.urandom(300_000)
    response = client("POST", f"{stack.url}/v2/team/first/blobs/uploads/", params={"digest": digest(data)}, data=data)
    assert response.status_code == 201, response.text
    assert len(client.challenges) == 1
    assert http.get(f"{stack.url}/v2/team/first/blobs/{digest(data)}").content == data


def test_unauthenticated_first_post_then_put_with_the_body(stack, http):
    client, data = UnauthenticatedFirst(f"{stack.url}/token", "admin", stack.admin_token), os.urandom(300_000)
    started = client("POST", f"{stack.url}/v2/team/first/blobs/uploads/")
    assert started.status_code == 202
    response = client("PUT", started.headers["Location"], params={"digest": digest(data)}, data=data)
    assert response.status_code == 201, response.text
    assert len(client.challenges) == 2
    assert http.get(f"{stack.url}/v2/team/first/blobs/{digest(data)}").content == data


def test_unauthenticated_first_chunked_upload(stack, http):
    client, data = UnauthenticatedFirst(f"{stack.url}/token", "admin", stack.admin_token), os.urandom(3 * MiB)
    started = client("POST", f"{stack.url}/v2/team/first/blobs/uploads/")
    patched = client("PATCH", started.headers["Location"], data=data,
                     headers={"Content-Range": f"0-{len(data) - 1}"})
    assert patched.status_code == 202 and patched.headers["Range"] == f"0-{len(data) - 1}"
    done = client("PUT", patched.headers["Location"], params={"digest": digest(data)})
    assert done.status_code == 201, done.text
    assert len(client.challenges) == 3
    assert http.get(f"{stack.url}/v2/team/first/blobs/{digest(data)}").content == data
    assert upload_of(patched) not in stack.gateway._sessions


def upload_of(response):
    return response.headers["Docker-Upload-UUID"]


def test_the_apis_refusal_of_the_direct_upload_reaches_the_client_as_it_is(stack):
    """A token that may push when the session opens but not when it completes (another
    repository's scope): the API's 401 and challenge, not a 502."""
    auth, location, upload_id = open_session(stack)
    assert requests.patch(location, data=b"bytes", headers=auth).status_code == 202
    # The same principal (so the gateway spools), with a token for another repository only.
    wrong = token_for(stack, "repository:team/elsewhere:pull,push")
    response = requests.put(location, params={"digest": digest(b"bytes")}, headers=wrong)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] in ("UNAUTHORIZED", "DENIED")
    assert 'scope="repository:team/gw:pull,push"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("target", ["/v2/", "/v2/team/gw/manifests/v1", "/v2/team/gw/blobs/uploads/"])
def test_a_client_that_promises_a_body_and_leaves_gets_no_502(stack, target):
    """Found by the fuzz tier: the client's own disconnect was taken for the upstream failing."""
    answer = raw_exchange(stack.port, f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".encode())
    assert b" 502 " not in answer.split(b"\r\n", 1)[0]
    assert requests.get(f"{stack.url}/v2/").status_code == 401
