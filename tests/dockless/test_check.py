"""`dockless check` against the local stack: every check passes, and each one fails, saying what to
do, when the fault it looks for is put into the local front door, bucket or app (what a real
deployment could get wrong: headers renamed, errors cached, chunked bodies cut, presigned URLs on
S3's global host, gateway responses not live, S3 not checking checksums ...)."""
import dataclasses
from urllib.parse import urlsplit


from chalicelib.backend import backend, use_backend
from chalicelib.storage.objects import ObjectStore
from dockless.local import frontdoor
from dockless.deploy.check import Check
from dockless.local.frontdoor import FrontDoor
from dockless.local.aws import Door


def verdicts(stack, names=None, **options):
    return {v.name: v for v in Check(stack.api_url, "admin", stack.admin_token, say=lambda line: None,
                                     **options).run(names)}


SHORT_TIMEOUT = 3  # the front door's here; a fresh thread's first DynamoDB client can take a second: the timeout check waits a second more


def test_every_check_passes_on_the_local_stack_and_its_repository_goes_whole(stack, http, monkeypatch):
    """Afterwards the check's repository (its gateway layer of 8 MiB included) is in no catalog,
    its namespace stores nothing, and the audit trail says it was deleted."""
    monkeypatch.setattr(stack.front_door, "timeout_seconds", SHORT_TIMEOUT)
    said = []
    checker = Check(stack.api_url, "admin", stack.admin_token, say=said.append, front_door_timeout=SHORT_TIMEOUT)
    results = {v.name: v for v in checker.run()}
    assert {name: v.status for name, v in results.items()} == {
        "challenge": "ok", "origin": "skip", "unknown route": "ok", "token": "ok", "body limit": "ok",
        "runtime": "skip", "timeout": "ok", "throttling": "ok", "push": "ok",
        "manifest HEAD": "ok", "blob GET": "ok", "blob gate": "ok", "direct upload": "ok", "gateway": "ok", "error caching": "ok",
        "signatures": "ok"}
    assert results["body limit"].detail == "7 MB: 502 UNKNOWN, 10 MB: 413 SIZE_INVALID, with advice"
    assert results["timeout"].detail.startswith("api-gateway: 504 UNAVAILABLE after")
    assert results["throttling"].detail == "503 TOOMANYREQUESTS, Retry-After 1"
    assert results["runtime"].detail.startswith("not on Lambda (a local stack): python 3.")
    assert results["push"].detail.endswith("a chunked PATCH arrives whole")
    repository = checker.repository
    assert http.get(f"{stack.url}/v2/{repository}/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert repository not in http.get(f"{stack.url}/v2/_catalog?n=1000").json()["repositories"]
    assert http.get(f"{stack.url}/dockless/admin/v1/quotas/dockless-check").json()["stored_bytes"] == 0
    events = http.get(f"{stack.url}/dockless/admin/v1/audit", params={"repository": repository}).json()["events"]
    (deleted,) = [e for e in events if e["action"] == "repository.delete"]
    assert deleted["detail"]["links"] >= 3 and deleted["detail"]["bytes_freed"] >= 8 * 1024 * 1024
    assert not [line for line in said if line.startswith("note:")]


def fails(results, name, *advice):
    verdict = results[name]
    assert verdict.status == "FAIL", verdict
    for words in advice:
        assert words in verdict.detail, verdict.detail


def test_challenge_fails_when_www_authenticate_is_not_restored(stack, monkeypatch):
    monkeypatch.setattr(frontdoor, "RESTORED_AT_THE_EDGE", ("content-length",))
    fails(verdicts(stack, ["challenge"]), "challenge", "restore WWW-Authenticate", "edge stack")


def test_manifest_head_fails_when_content_length_is_api_gateways(stack, monkeypatch):
    monkeypatch.setattr(frontdoor, "RESTORED_AT_THE_EDGE", ("www-authenticate",))
    fails(verdicts(stack, ["push", "manifest HEAD"]), "manifest HEAD", "'length': '0'", "restore Content-Length")


def test_error_caching_fails_when_the_front_door_replays_a_404(stack, monkeypatch):
    cached, handle = {}, FrontDoor.handle

    def caching(self, method, path, headers, body):
        if (method, path) in cached:
            return cached[(method, path)]
        answer = handle(self, method, path, headers, body)
        if answer[0] == 404:
            cached[(method, path)] = answer
        return answer

    monkeypatch.setattr(FrontDoor, "handle", caching)
    fails(verdicts(stack, ["error caching"]), "error caching", "the 404 was cached", "ErrorCachingMinTTL 0")


def test_push_fails_when_a_chunked_body_arrives_cut(stack, monkeypatch):
    def cut(rfile, headers, *args, **kwargs):
        pieces = list(frontdoor_iter_body(rfile, headers, *args, **kwargs))
        if "chunked" in headers.get("Transfer-Encoding", "") and pieces:
            pieces[-1] = pieces[-1][:-1]
        return iter(pieces)

    frontdoor_iter_body = frontdoor.iter_body
    monkeypatch.setattr(frontdoor, "iter_body", cut)
    fails(verdicts(stack, ["push"]), "push", "byte-exact", "binaryMediaTypes")


def test_every_check_passes_behind_the_function_url_door(stack, monkeypatch):
    monkeypatch.setattr(stack.front_door, "door", frontdoor.FUNCTION_URL_DOOR)
    monkeypatch.setattr(stack.front_door, "timeout_seconds", SHORT_TIMEOUT)
    results = verdicts(stack, front_door_timeout=SHORT_TIMEOUT)
    assert {name for name, v in results.items() if v.status != "ok"} == {"origin", "runtime"}, results
    assert results["timeout"].detail.startswith("function-url: 502 UNKNOWN after")
    assert results["body limit"].detail == "7 MB: 413 SIZE_INVALID, 10 MB: 413 SIZE_INVALID, with advice"
    assert "behind the function-url door" in results["runtime"].detail


def test_push_fails_saying_what_to_do_where_the_account_refuses_chunked_bodies(stack, monkeypatch):
    monkeypatch.setattr(stack.front_door, "chunked_bodies", frontdoor.REFUSED)
    fails(verdicts(stack, ["push"]), "push", "refuses a chunked PATCH (411)", "dockless serve --chunked-bodies refused")


def test_timeout_fails_where_the_front_door_lets_a_request_run_on(stack, monkeypatch):
    monkeypatch.setattr(stack.front_door, "timeout_seconds", 10)
    fails(verdicts(stack, ["timeout"], front_door_timeout=SHORT_TIMEOUT), "timeout", "answered 200",
          "INTEGRATION_TIMEOUT")


def test_throttling_fails_where_the_front_door_replaces_the_503(stack, monkeypatch):
    handle = FrontDoor.handle

    def replaced(self, method, path, headers, body):
        status, answer_headers, payload = handle(self, method, path, headers, body)
        if status == 503:
            return 502, [("Content-Type", "text/html"), ("Content-Length", "5")], b"oops!"
        return status, answer_headers, payload

    monkeypatch.setattr(FrontDoor, "handle", replaced)
    fails(verdicts(stack, ["throttling"]), "throttling", "answered 502", "Retry-After missing", "ResponsePagePath")


def test_runtime_fails_where_the_function_runs_another_python(stack, monkeypatch):
    import platform
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")  # as on Lambda
    monkeypatch.setattr(platform, "python_version", lambda: "3.13.9")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert verdicts(stack, ["runtime"])["runtime"].detail == "python 3.13.9 on aarch64 behind the api-gateway door, 1024 MB"
    monkeypatch.setattr(platform, "python_version", lambda: "3.9.20")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    fails(verdicts(stack, ["runtime"]), "runtime", "runs python 3.9.20 on x86_64 behind", "python3.13 on arm64",
          "dockless deploy")


def test_blob_get_fails_on_s3s_global_host(stack, monkeypatch):
    presign = ObjectStore.presign_get

    def global_host(self, key):
        url = urlsplit(presign(self, key))
        return url._replace(netloc="the-bucket.s3.amazonaws.com").geturl()

    monkeypatch.setattr(ObjectStore, "presign_get", global_host)
    fails(verdicts(stack, ["push", "blob GET"]), "blob GET", "global endpoint")


def test_unknown_route_and_body_limit_fail_without_customised_gateway_responses(stack, monkeypatch):
    def api_gateways_own(self, error, detail=None):
        body = b'{"message": "Missing Authentication Token"}'
        return 403 if error.status == 404 else error.status, [("Content-Type", "application/json"),
                                                              ("Content-Length", str(len(body)))], body

    monkeypatch.setattr(FrontDoor, "refuse", api_gateways_own)
    results = verdicts(stack, ["unknown route", "body limit"])
    fails(results, "unknown route", "gateway responses are not live")
    fails(results, "body limit", "how to push big layers")


def test_direct_upload_fails_when_s3_takes_any_bytes(stack, monkeypatch):
    monkeypatch.setattr(Door, "_check_checksum", staticmethod(lambda body, declared: None))
    fails(verdicts(stack, ["direct upload"]), "direct upload", "sign x-amz-checksum-sha256")


def test_token_fails_when_refresh_tokens_do_not_work(stack, monkeypatch):
    from chalicelib.oci import spec
    monkeypatch.setattr(spec, "REFRESH_TOKEN_SECONDS", -60)
    fails(verdicts(stack, ["token"]), "token", "refresh grant")


def test_gateway_fails_when_the_bucket_refuses_the_layer(stack, monkeypatch):
    from dockless.client.bucket import BucketUploader, TransferFailed

    def refused(self, signed, data):
        raise TransferFailed("S3 answered 403")

    monkeypatch.setattr(BucketUploader, "_transfer", refused)
    fails(verdicts(stack, ["gateway"]), "gateway", "through a gateway answered 502")


def test_signatures_fail_when_the_keys_cannot_be_read(stack, monkeypatch):
    from chalicelib.signing.service import SigningService

    def broken(self, namespace):
        raise RuntimeError("table gone")

    monkeypatch.setattr(SigningService, "keys", broken)
    fails(verdicts(stack, ["push", "signatures"]), "signatures", "KEYS answered 500")


def test_origin_passes_only_where_the_api_refuses_requests_around_the_front_door(stack):
    fails(verdicts(stack, ["origin"], origin=stack.api_url), "origin", "set DOCKLESS_ORIGIN_SECRET")
    original = backend()
    use_backend(dataclasses.replace(original, settings=dataclasses.replace(original.settings,
                                                                            origin_secret="only-cloudfront-knows")))
    try:
        assert verdicts(stack, ["origin"], origin=stack.api_url)["origin"].status == "ok"
    finally:
        use_backend(original)


def test_the_blob_gate_check_fails_where_the_edge_does_not_serve(stack, monkeypatch):
    """A front door without the gate (as a distribution whose BlobGate is missing): the function
    answers the pull token's blob GET, and the check says where to look."""
    monkeypatch.setattr(stack.front_door, "edge_secret", None)
    fails(verdicts(stack, ["push", "blob gate"]), "blob gate", "the blob gate did not serve it", "BlobGate")


def test_the_blob_gate_check_fails_where_the_edge_serves_an_unlinked_digest(stack, monkeypatch):
    """A gate that admits what its token does not list (the invariant broken at the edge)."""
    def admits_any(secret, authorization, method, path, now):
        match = frontdoor.edge.BLOB_PATH_RE.fullmatch(path)
        return f"blobs/sha256/{match.group('hex')}" if match and method == "GET" else None

    monkeypatch.setattr(frontdoor.edge, "admits", admits_any)
    fails(verdicts(stack, ["push", "blob gate"]), "blob gate", "not the function's 404 BLOB_UNKNOWN")
