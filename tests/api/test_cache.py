"""Pull-through cache namespaces (chalicelib/pullthrough/proxy.py) against a real upstream: Debian's
docker-registry on loopback (tests/upstream.py), anonymous, behind Docker token auth and behind
Basic auth. What a pull fetches, verifies and keeps; what is served while the upstream is down;
when a moved tag is picked up; that nobody pushes to a cache; how a cache is set up and what is
never shown or recorded. tests/e2e/test_cache.py pulls through a cache with docker."""
import json
import os
import secrets

import boto3
import pytest
import requests

from chalicelib.access.service import AuthService, new_credential_text
from chalicelib.metadata.keys import tag_sort_key
from chalicelib.metadata.models import AuditEvent, BlobLink, Manifest, Tag
from chalicelib.oci import spec
from tests.api.test_auth import bearer, claims_of, get_token
from tests.fixtures import digest_of, error_code
from tests.upstream import PASSWORD, USERNAME, basic_auth, token_auth, token_issuer, upstream_registry

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with upstream_registry(tmp_path_factory.mktemp("upstream")) as registry:
        yield registry


def unique(prefix="app") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def make_cache(client, url, namespace="hub", **fields):
    response = client.put(f"/dockless/admin/v1/caches/{namespace}", body=json.dumps({"url": url, **fields}),
                          headers=JSON)
    assert response.status_code == 200, response.body
    return response.json_body


def manifest(client, repo, reference, method="GET"):
    return client.request(method, f"/v2/{repo}/manifests/{reference}",
                          headers={"Accept": spec.MANIFEST_ACCEPT})


def blob_bytes(client, repo, digest) -> bytes:
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 307, response.body
    assert response.headers[spec.CONTENT_DIGEST_HEADER] == digest
    return requests.get(response.headers["Location"]).content


def cache_events(action=None):
    return [e for e in AuditEvent.scan() if e.actor == "cache" and (action is None or e.action == action)]


def test_a_pull_fetches_verifies_and_keeps_the_image(client, upstream):
    name = unique()
    layers = [os.urandom(3000), os.urandom(70_000)]
    digest, body, blobs = upstream.image(f"library/{name}", "1.0", layers)
    make_cache(client, upstream.url)
    repo = f"hub/library/{name}"

    response = manifest(client, repo, "1.0")
    assert response.status_code == 200, response.body
    assert response.body == body
    assert response.headers[spec.CONTENT_DIGEST_HEADER] == digest
    assert response.headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert "Warning" not in response.headers
    assert Tag.get(repo, tag_sort_key("1.0")).digest == digest
    for blob, data in zip(blobs[1:], layers):
        assert blob_bytes(client, repo, blob) == data
    # Kept: the links are there, and the same pull again asks the upstream nothing.
    assert {link.digest for link in BlobLink.query(repo)} == set(blobs[1:])
    assert manifest(client, repo, digest).status_code == 200
    # Recorded as the cache's work, on behalf of whoever pulled.
    pushes = cache_events("manifest.push")
    assert [(e.repository, json.loads(e.detail)["digest"]) for e in pushes] == [(repo, digest)]
    assert json.loads(pushes[0].detail)["upstream"] == upstream.url
    assert json.loads(pushes[0].detail)["requested_by"] == "admin"
    # HEAD answers what GET answers.
    head = client.head(f"/v2/{repo}/blobs/{blobs[0]}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(
        len(upstream.blob_file(blobs[0]).read_bytes()))


def test_a_two_platform_index_brings_its_children_when_asked(client, upstream):
    name = unique()
    amd = upstream.image(name, None, [os.urandom(500)], "amd64")
    arm = upstream.image(name, None, [os.urandom(600)], "arm64")
    index_digest, index_body = upstream.index(name, "multi", [(amd[0], amd[1], "amd64"), (arm[0], arm[1], "arm64")])
    make_cache(client, upstream.url)
    repo = f"hub/{name}"
    response = manifest(client, repo, "multi")
    assert response.status_code == 200 and response.headers[spec.CONTENT_DIGEST_HEADER] == index_digest
    assert Manifest.get(repo, index_digest).children == {amd[0], arm[0]}
    assert [m.digest for m in Manifest.query(repo)] == [index_digest]  # children not yet
    child = manifest(client, repo, arm[0])
    assert child.status_code == 200 and child.body == arm[1]
    assert blob_bytes(client, repo, arm[2][1]) == upstream.blob_file(arm[2][1]).read_bytes()
    assert sorted(m.digest for m in Manifest.query(repo)) == sorted([index_digest, arm[0]])


def test_what_is_cached_keeps_pulling_while_the_upstream_is_down(client, upstream, clock):
    name = unique()
    digest, body, blobs = upstream.image(name, "stable", [os.urandom(1000)])
    make_cache(client, upstream.url, freshness_seconds=3600)
    repo = f"hub/{name}"
    assert manifest(client, repo, "stable").status_code == 200
    assert blob_bytes(client, repo, blobs[1])
    other = upstream.image(name, "never-pulled", [os.urandom(1000)])
    upstream.stop()
    try:
        # Fresh: served as cached, no warning.
        fresh = manifest(client, repo, "stable")
        assert fresh.status_code == 200 and "Warning" not in fresh.headers
        # Due for a check that cannot happen: still served, with the stale warning.
        clock.advance(seconds=3601)
        for method in ("GET", "HEAD"):
            stale = manifest(client, repo, "stable", method)
            assert stale.status_code == 200, stale.body
            assert stale.headers[spec.CONTENT_DIGEST_HEADER] == digest
            assert stale.headers["Warning"] == spec.CACHE_STALE_WARNING
        assert manifest(client, repo, digest).status_code == 200
        assert len(blob_bytes(client, repo, blobs[1])) == 1000
        # Never cached: unknown, saying the upstream did not answer, and nothing written.
        before = {m.digest for m in Manifest.query(repo)}
        for reference in ("never-pulled", other[0]):
            missing = manifest(client, repo, reference)
            assert missing.status_code == 404 and error_code(missing) == "MANIFEST_UNKNOWN"
            assert "is not cached and the upstream registry did not answer" in \
                json.loads(missing.body)["errors"][0]["message"]
        unknown_blob = client.get(f"/v2/{repo}/blobs/{other[2][1]}")
        assert unknown_blob.status_code == 404 and error_code(unknown_blob) == "BLOB_UNKNOWN"
        assert json.loads(unknown_blob.body)["errors"][0]["detail"]["reason"] == "unreachable"
        assert {m.digest for m in Manifest.query(repo)} == before
        assert [t.tag for t in Tag.query(repo)] == ["stable"]
    finally:
        upstream.start()


def test_a_tag_moved_upstream_is_picked_up_after_the_freshness_window(client, upstream, clock):
    name = unique()
    first = upstream.image(name, "latest", [os.urandom(100)])
    make_cache(client, upstream.url, freshness_seconds=600)
    repo = f"hub/{name}"
    assert manifest(client, repo, "latest").headers[spec.CONTENT_DIGEST_HEADER] == first[0]
    second = upstream.image(name, "latest", [os.urandom(100)])
    clock.advance(seconds=599)
    assert manifest(client, repo, "latest").headers[spec.CONTENT_DIGEST_HEADER] == first[0]
    clock.advance(seconds=2)
    moved = manifest(client, repo, "latest")
    assert moved.headers[spec.CONTENT_DIGEST_HEADER] == second[0] and "Warning" not in moved.headers
    assert Tag.get(repo, tag_sort_key("latest")).digest == second[0]
    moves = cache_events("tag.move")
    assert [json.loads(e.detail) for e in moves] == [{"previous": first[0], "digest": second[0]}]
    # Unchanged upstream: the check only marks the tag checked.
    clock.advance(seconds=601)
    assert manifest(client, repo, "latest").headers[spec.CONTENT_DIGEST_HEADER] == second[0]
    assert Tag.get(repo, tag_sort_key("latest")).checked_at == clock()
    assert len(cache_events("manifest.push")) == 2


def test_bytes_that_do_not_match_the_digest_are_refused_and_not_kept(client, upstream, state):
    name = unique()
    layer = os.urandom(2048)
    digest, body, blobs = upstream.image(name, "1", [layer])
    bad = os.urandom(2048)
    upstream.blob_file(blobs[1]).write_bytes(bad)  # the upstream's disk went bad
    make_cache(client, upstream.url)
    repo = f"hub/{name}"
    assert manifest(client, repo, "1").status_code == 200
    before = state()
    response = client.get(f"/v2/{repo}/blobs/{blobs[1]}")
    assert response.status_code == 400 and error_code(response) == "DIGEST_INVALID"
    error = json.loads(response.body)["errors"][0]
    assert error["message"] == f"the upstream sent bytes that are not {blobs[1]}; nothing was kept"
    # What was sent instead is not told: it may be what an internal address answered.
    assert error["detail"] == {"expected": blobs[1]} and digest_of(bad) not in response.body.decode()
    assert state() == before


def puller(anonymous, registry, namespace="hub") -> str:
    """A token of a user who may pull the namespace and nothing else."""
    auth = AuthService(registry)
    auth.ensure_principal("reader")
    secret = new_credential_text()
    auth.store_credential("reader", secret)
    auth.set_grant(namespace, "user:reader", "read")
    return secret


def reader_pull(anonymous, secret, repo, method="GET", path="blobs"):
    def send(reference):
        token = get_token(anonymous, "reader", secret, [f"repository:{repo}:pull"]).json_body["token"]
        return anonymous.request(method, f"/v2/{repo}/{path}/{reference}", headers=bearer(token))
    return send


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_cache_never_hands_out_another_repositorys_blob_by_digest(anonymous, client, upstream, registry, push,
                                                                     state, method):
    """The side door: a layer of a private repository, asked for by digest in a cache namespace
    whose upstream never had it. The upstream is asked; it has no such blob; nothing is linked."""
    private = os.urandom(1500)
    push.blob("private/app", private)
    make_cache(client, upstream.url)
    secret = puller(anonymous, registry)
    before = state()
    response = reader_pull(anonymous, secret, "hub/anything", method)(digest_of(private))
    assert response.status_code == 404, response.body
    if method == "GET":
        assert error_code(response) == "BLOB_UNKNOWN"
        assert json.loads(response.body)["errors"][0]["detail"]["reason"] == "missing"
    assert state() == before  # no link, no repository, no quota count
    assert "hub/anything" not in client.get("/v2/_catalog").json_body["repositories"]


def test_a_public_cache_hands_the_anonymous_nothing_of_the_registry(anonymous, client, upstream, push, state):
    private = os.urandom(1600)
    push.blob("private/app", private)
    make_cache(client, upstream.url)
    assert client.put("/dockless/admin/v1/grants", body=json.dumps(
        {"resource": "hub", "subject": "*", "role": "read"}), headers=JSON).status_code == 204
    before = state()
    token = get_token(anonymous, scopes=["repository:hub/x:pull"]).json_body["token"]
    for method in ("GET", "HEAD"):
        response = anonymous.request(method, f"/v2/hub/x/blobs/{digest_of(private)}", headers=bearer(token))
        assert response.status_code == 404, response.body
    assert state() == before


def test_a_layer_the_upstream_serves_is_verified_even_when_the_bucket_holds_it(client, upstream, push):
    """Bytes stored for another repository are linked, not copied again, only after the upstream
    sent them and they hashed to the digest."""
    name, layer = unique(), os.urandom(1500)
    digest, body, blobs = upstream.image(name, "1", [layer])
    push.blob("team/app", layer)
    make_cache(client, upstream.url)
    repo = f"hub/{name}"
    assert manifest(client, repo, "1").status_code == 200
    assert blob_bytes(client, repo, digest_of(layer)) == layer
    shared = BlobLink.get(repo, digest_of(layer))
    assert (shared.size, shared.location) == (len(layer), BlobLink.get("team/app", digest_of(layer)).location)


def test_a_layer_the_caller_may_pull_anyway_is_shared_while_the_upstream_is_down(anonymous, client, upstream,
                                                                                registry, push):
    name, layer = unique(), os.urandom(1500)
    upstream.image(name, "1", [layer])
    push.blob("team/app", layer)
    make_cache(client, upstream.url)
    secret = puller(anonymous, registry)
    repo = f"hub/{name}"
    upstream.stop()
    try:
        # The reader may not pull team/app: the upstream is asked, and is down.
        refused = reader_pull(anonymous, secret, repo)(digest_of(layer))
        assert refused.status_code == 404 and json.loads(refused.body)["errors"][0]["detail"]["reason"] == \
            "unreachable"
        assert BlobLink.count(repo) == 0
        # An admin may pull team/app anyway: its link is shared, as a mount would.
        assert blob_bytes(client, repo, digest_of(layer)) == layer
    finally:
        upstream.start()
    assert BlobLink.get(repo, digest_of(layer)).location == BlobLink.get("team/app", digest_of(layer)).location


def test_a_blob_head_answers_from_the_upstream_and_writes_nothing(anonymous, client, upstream, registry, state):
    name, layer = unique(), os.urandom(2500)
    digest, body, blobs = upstream.image(name, "1", [layer])
    make_cache(client, upstream.url)
    secret = puller(anonymous, registry)
    before = state()
    head = reader_pull(anonymous, secret, f"hub/{name}", "HEAD")(digest_of(layer))
    assert head.status_code == 200, head.body
    assert head.headers["Content-Length"] == str(len(layer))
    assert head.headers[spec.CONTENT_DIGEST_HEADER] == digest_of(layer)
    assert state() == before
    # GET fills, and HEAD then answers from the link.
    assert blob_bytes(client, f"hub/{name}", digest_of(layer)) == layer
    assert client.head(f"/v2/hub/{name}/blobs/{digest_of(layer)}").headers["Content-Length"] == str(len(layer))


def test_nobody_pushes_to_a_cache_namespace(anonymous, client, upstream, registry, state):
    make_cache(client, upstream.url)
    auth = AuthService(registry)
    auth.ensure_principal("will")
    secret = new_credential_text()
    auth.store_credential("will", secret)
    auth.set_grant("hub", "user:will", "write")
    token = get_token(anonymous, "will", secret, ["repository:hub/app:pull,push"]).json_body["token"]
    before = state()
    started = anonymous.post("/v2/hub/app/blobs/uploads/", headers=bearer(token))
    assert started.status_code == 401 and 'error="insufficient_scope"' in started.headers["WWW-Authenticate"]
    # Not even an admin, whose token holds push on everything.
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": []}).encode()
    response = client.put("/v2/hub/app/manifests/1", body=body,
                          headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert response.status_code == 403 and error_code(response) == "DENIED"
    assert json.loads(response.body)["errors"][0]["message"] == f"hub is a cache of {upstream.url}: pull only"
    assert state() == before
    # What the token holds: pull, not push.
    assert claims_of(token)["access"] == [{"type": "repository", "name": "hub/app", "actions": ["pull"]}]


@pytest.mark.parametrize("kind", ["token", "basic"])
def test_an_upstream_that_asks_for_credentials_gets_the_caches_own(client, tmp_path, kind):
    root = tmp_path / "private"
    with upstream_registry(root) as private, token_issuer(tmp_path) as issuer:
        name = unique()
        digest, body, blobs = private.image(name, "1", [os.urandom(4000)])
        private.stop()
        private.start(auth=token_auth(issuer) if kind == "token" else basic_auth(root))
        make_cache(client, private.url, namespace="priv", username=USERNAME, password=PASSWORD)
        response = manifest(client, f"priv/{name}", "1")
        assert response.status_code == 200, response.body
        assert response.headers[spec.CONTENT_DIGEST_HEADER] == digest
        assert len(blob_bytes(client, f"priv/{name}", blobs[1])) == 4000
        if kind == "token":
            assert issuer.issued >= 2
        # A wrong password: the upstream refuses, nothing new is cached, and the error says so.
        make_cache(client, private.url, namespace="priv", username=USERNAME, password="wrong")
        refused = manifest(client, f"priv/{name}", "2")
        assert refused.status_code == 404 and error_code(refused) == "MANIFEST_UNKNOWN"
        assert "is not in the upstream registry" in json.loads(refused.body)["errors"][0]["message"]


def test_the_password_is_kept_in_secrets_manager_and_never_shown_or_recorded(client, upstream, registry):
    answer = make_cache(client, upstream.url, username="robot", password="hunter2-upstream", freshness_seconds=60)
    assert answer == {"namespace": "hub", "url": upstream.url, "username": "robot", "freshness_seconds": 60,
                      "changed": {"by": "admin", "at": registry.clock().isoformat()}}
    shown = client.get("/dockless/admin/v1/caches/hub")
    assert shown.json_body == answer and b"hunter2" not in shown.body
    make_cache(client, "https://quay.io", namespace="quay")
    listed = client.get("/dockless/admin/v1/caches")
    assert listed.json_body == {"caches": [
        {"namespace": "hub", "url": upstream.url, "username": "robot", "freshness_seconds": 60},
        {"namespace": "quay", "url": "https://quay.io", "username": None, "freshness_seconds": 6 * 3600}]}
    secrets_manager = boto3.client("secretsmanager", region_name="us-east-1")
    assert secrets_manager.get_secret_value(SecretId="test/cache/hub")["SecretString"] == "hunter2-upstream"
    settings = client.get("/dockless/admin/v1/settings?resource=hub").json_body
    assert settings["own"]["upstream"] == {"url": upstream.url, "username": "robot", "freshness_seconds": 60}
    assert all("hunter2" not in (e.detail or "") for e in AuditEvent.scan())
    # Removed: the secret goes, pushes are allowed again.
    assert client.delete("/dockless/admin/v1/caches/hub").status_code == 204
    assert client.get("/dockless/admin/v1/caches/hub").status_code == 404
    with pytest.raises(secrets_manager.exceptions.ResourceNotFoundException):
        secrets_manager.get_secret_value(SecretId="test/cache/hub")


@pytest.mark.parametrize("document, message", [
    ({"url": "http://registry.example.com"}, "url is the upstream registry's https:// URL"),
    ({"url": "https://registry.example.com/v2/"}, "url is the upstream registry's https:// URL"),
    ({"url": "https://user:pw@registry.example.com"}, "url is the upstream registry's https:// URL"),
    ({"url": "ftp://registry.example.com"}, "url is the upstream registry's https:// URL"),
    ({"url": 7}, "url is the upstream registry's https:// URL"),
    ({"url": "https://registry.example.com", "username": "me"}, "give both username and password"),
    ({"url": "https://registry.example.com", "username": "me", "password": ""}, "give both username and password"),
    ({"url": "https://registry.example.com", "freshness_seconds": -1}, "freshness_seconds is 0"),
    ({"url": "https://registry.example.com", "freshness_seconds": True}, "freshness_seconds is 0"),
])
def test_a_bad_cache_setting_is_refused_and_changes_nothing(client, state, document, message):
    before = state()
    response = client.put("/dockless/admin/v1/caches/hub", body=json.dumps(document), headers=JSON)
    assert response.status_code == 400 and error_code(response) == "INVALID"
    assert json.loads(response.body)["errors"][0]["message"].startswith("invalid administration request: " + message)
    assert state() == before
    assert client.get("/dockless/admin/v1/caches/hub").status_code == 404


def test_docker_hub_official_images_are_under_library():
    from chalicelib.policy.cache import Upstream
    hub = Upstream("https://registry-1.docker.io")
    assert hub.repository("alpine") == "library/alpine"
    assert hub.repository("library/alpine") == "library/alpine"
    assert Upstream("https://quay.io").repository("alpine") == "alpine"


def test_a_manifest_that_is_not_what_the_upstream_says_is_refused_and_not_kept(client, upstream, state):
    name = unique()
    digest, body, blobs = upstream.image(name, "1", [os.urandom(100)])
    other = json.dumps({**json.loads(body), "annotations": {"swapped": "yes"}}).encode()
    upstream.blob_file(digest).write_bytes(other)  # served under the digest it does not have
    make_cache(client, upstream.url)
    before = state()
    for reference in ("1", digest):
        response = manifest(client, f"hub/{name}", reference)
        assert response.status_code == 404 and error_code(response) == "MANIFEST_UNKNOWN"
        assert f"the upstream sent a manifest of digest {digest_of(other)} for {digest}" in \
            json.loads(response.body)["errors"][0]["message"]
    assert state() == before


def test_retention_evicts_what_was_not_pulled_and_a_later_pull_fetches_it_again(client, upstream, registry, clock):
    from chalicelib.routes import jobs
    name = unique()
    digest, body, blobs = upstream.image(name, "1", [os.urandom(300)])
    make_cache(client, upstream.url)
    repo = f"hub/{name}"
    assert manifest(client, repo, "1").status_code == 200
    response = client.put("/dockless/admin/v1/settings", headers=JSON,
                          body=json.dumps({"resource": "hub", "retention": {"unpulled_days": 7}}))
    assert response.status_code == 200, response.body
    clock.advance(days=8)
    jobs.collect_garbage(registry)
    assert list(Tag.query(repo)) == []
    again = manifest(client, repo, "1")
    assert again.status_code == 200 and again.headers[spec.CONTENT_DIGEST_HEADER] == digest
    assert [json.loads(e.detail)["digest"] for e in cache_events("manifest.push")] == [digest, digest]


def test_an_upstream_that_stops_half_way_through_a_layer_leaves_nothing(client, state):
    """The failure docker-registry will not play: a layer's answer cut off after its first bytes."""
    import http.server
    import threading
    layer = os.urandom(200_000)

    class Cut(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(layer)))
            self.end_headers()
            self.wfile.write(layer[:1000])
            self.wfile.flush()
            self.connection.close()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Cut)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        make_cache(client, f"http://127.0.0.1:{server.server_address[1]}")
        before = state()
        response = client.get(f"/v2/hub/app/blobs/{digest_of(layer)}")
        assert response.status_code == 404 and error_code(response) == "BLOB_UNKNOWN", response.body
        assert json.loads(response.body)["errors"][0]["detail"]["reason"] == "unreachable"
        assert state() == before
    finally:
        server.shutdown()
        server.server_close()


def test_a_rate_limited_upstream_is_answered_from_the_cache(client, upstream, clock, registry):
    """The hub's 429 (toomanyrequests) is an outage like any other: what is cached keeps pulling."""
    import http.server
    import threading
    name = unique()
    digest, body, blobs = upstream.image(name, "1", [os.urandom(100)])
    make_cache(client, upstream.url, freshness_seconds=60)
    assert manifest(client, f"hub/{name}", "1").status_code == 200

    class Limited(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(429)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        make_cache(client, f"http://127.0.0.1:{server.server_address[1]}", freshness_seconds=60)
        clock.advance(seconds=61)
        served = manifest(client, f"hub/{name}", "1")
        assert served.status_code == 200 and served.headers["Warning"] == spec.CACHE_STALE_WARNING
        assert served.headers[spec.CONTENT_DIGEST_HEADER] == digest
        limited = manifest(client, f"hub/{name}", "2")
        assert limited.status_code == 404 and "the upstream registry did not answer (the upstream answered 429" in \
            json.loads(limited.body)["errors"][0]["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_password_never_goes_to_a_token_realm_over_plain_http(client):
    import http.server
    import threading
    asked = []

    class Challenging(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="http://auth.example.com/token",service="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Challenging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        make_cache(client, f"http://127.0.0.1:{server.server_address[1]}", username="me", password="s3cret-pw")
        response = manifest(client, "hub/app", "1")
        assert response.status_code == 404 and error_code(response) == "MANIFEST_UNKNOWN"
        assert "no https:// token realm" in json.loads(response.body)["errors"][0]["message"]
        assert asked == [None]  # asked once, without credentials; nothing went to the realm
    finally:
        server.shutdown()
        server.server_close()


class Hostile:
    """An upstream on loopback that answers every request with what `answer(handler)` does;
    what it was asked is in `asked` (method, path)."""

    def __init__(self, answer):
        import http.server
        import threading
        self.asked = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                outer.asked.append((self.command, self.path))
                answer(self)
            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def redirecting(location):
    def answer(handler):
        handler.send_response(307)
        handler.send_header("Location", location(handler) if callable(location) else location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def serving(data: bytes):
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command == "GET":
            handler.wfile.write(data)
    return answer


@pytest.mark.parametrize("target", ["other-port", "http://169.254.169.254/latest/meta-data/",
                                    "http://10.1.2.3/x", "ftp://127.0.0.1/x", "loop"])
def test_a_redirect_to_where_a_cache_may_not_fetch_is_not_followed(client, state, target):
    secret = os.urandom(700)
    with Hostile(serving(secret)) as internal:
        def location(handler):
            if target == "other-port":
                return internal.url + "/secret"
            if target == "loop":
                return handler.path  # again and again
            return target
        with Hostile(redirecting(location)) as upstream:
            make_cache(client, upstream.url)
            before = state()
            for method in ("GET", "HEAD"):
                response = client.request(method, f"/v2/hub/app/blobs/{digest_of(secret)}")
                assert response.status_code == 404, response.body
                if method == "GET":
                    error = json.loads(response.body)["errors"][0]
                    assert error["code"] == "BLOB_UNKNOWN" and error["detail"]["reason"] == "unreachable"
                    # Nothing of where it pointed or what is there reaches the caller.
                    assert "169.254" not in error["message"] and internal.url not in error["message"]
                    said = response.body.decode().replace(digest_of(secret), "").replace(upstream.url, "")
                    assert str(len(secret)) not in said  # the digest and the upstream's port may hold its digits
            assert internal.asked == []
            if target == "loop":
                assert len(upstream.asked) == 2 * (spec.UPSTREAM_MAX_REDIRECTS + 1)
            assert state() == before


def test_a_redirect_on_the_upstreams_own_origin_is_followed_without_credentials_elsewhere(client):
    layer = os.urandom(900)
    seen = []

    def answer(handler):
        seen.append((handler.path, handler.headers.get("Authorization")))
        if handler.path.startswith("/v2/"):
            return redirecting("/storage/layer")(handler)
        serving(layer)(handler)

    with Hostile(answer) as upstream:
        make_cache(client, upstream.url)
        assert blob_bytes(client, "hub/app", digest_of(layer)) == layer
        assert [path for path, _ in seen] == [f"/v2/app/blobs/{digest_of(layer)}", "/storage/layer"]


def test_a_slow_upstream_is_cut_off_at_the_budget(client, state, monkeypatch):
    """A layer sent a byte at a time, slowly: each read alone would never time out. The whole
    request ends at the budget, and the upstream sees its connection shut."""
    import time as clock
    layer = os.urandom(200)
    sent = []

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(layer)))
        handler.end_headers()
        try:
            for byte in layer:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                sent.append(byte)
                clock.sleep(0.05)
        except OSError:
            sent.append("cut")

    monkeypatch.setattr(spec, "UPSTREAM_BUDGET_SECONDS", 1)
    with Hostile(trickle) as upstream:
        make_cache(client, upstream.url)
        before = state()
        response = client.get(f"/v2/hub/app/blobs/{digest_of(layer)}")
        assert response.status_code == 404, response.body
        assert "did not finish within 1 s" in json.loads(response.body)["errors"][0]["message"]
        assert state() == before
        for _ in range(100):
            if sent and sent[-1] == "cut":
                break
            clock.sleep(0.1)
        assert sent[-1] == "cut" and len(sent) - 1 < len(layer)


def test_a_cache_namespace_has_only_so_many_requests_at_its_upstream(client, upstream, state):
    import contextlib
    from chalicelib.pullthrough.proxy import FETCHING
    name = unique()
    digest, body, blobs = upstream.image(name, "1", [os.urandom(300)])
    make_cache(client, upstream.url)
    before = state()
    with contextlib.ExitStack() as busy:
        for _ in range(spec.CACHE_FETCHES_PER_NAMESPACE):
            busy.enter_context(FETCHING.slot("hub"))
        response = manifest(client, f"hub/{name}", "1")
        assert response.status_code == 429 and error_code(response) == "TOOMANYREQUESTS", response.body
        assert response.headers["Retry-After"] == str(spec.UPSTREAM_BUSY_RETRY_SECONDS)
        assert state() == before
        # Another namespace's upstream, and the registry itself, are not held up.
        make_cache(client, upstream.url, namespace="other")
        assert manifest(client, f"other/{name}", "1").status_code == 200
    assert manifest(client, f"hub/{name}", "1").status_code == 200


@pytest.mark.parametrize("target, upstream_url, allowed", [
    ("https://cdn.example.com/blob?sig=1", "https://registry.example.com", True),
    ("http://cdn.example.com/blob", "https://registry.example.com", False),
    ("https://169.254.169.254/latest/", "https://registry.example.com", False),
    ("https://127.0.0.1:8443/", "https://registry.example.com", False),
    ("https://localhost/", "https://registry.example.com", False),
    ("https://10.0.0.5/", "https://registry.example.com", False),
    ("https://[::1]/", "https://registry.example.com", False),
    ("https://user:pw@cdn.example.com/", "https://registry.example.com", False),
    ("http://127.0.0.1:5001/v2/x", "http://127.0.0.1:5001", True),
    ("http://127.0.0.1:5002/v2/x", "http://127.0.0.1:5001", False),
    ("https://127.0.0.1:5002/v2/x", "http://127.0.0.1:5001", True),
    ("http://169.254.169.254/", "http://127.0.0.1:5001", False),
    ("https://2130706433/", "https://registry.example.com", False),  # 127.0.0.1, as resolvers read it
    ("https://127.1/", "https://registry.example.com", False),
    ("https://0xa9fea9fe/", "https://registry.example.com", False),  # 169.254.169.254
    ("https://[::ffff:127.0.0.1]/", "https://registry.example.com", False),
    ("https://cdn.example.com:notaport/", "https://registry.example.com", False),
])
def test_where_a_cache_may_send_a_request(target, upstream_url, allowed):
    from chalicelib.runtime.outbound import may_fetch
    assert may_fetch(target, upstream_url) is allowed
