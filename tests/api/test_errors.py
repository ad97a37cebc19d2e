"""Errors a person causes with a plain mistake say what to do in their message: docker, podman and
skopeo print the message, never the detail."""
import json

from tests.fixtures import digest_of, error_code


def message(response) -> str:
    return json.loads(response.body)["errors"][0]["message"]


def test_plain_mistakes_are_explained(client, push):
    body, _ = push.image("team/app", "v1")
    checks = [
        (push.manifest("team/app", "-bad", body), "TAG_INVALID", "a tag is 1 to 128"),
        (client.get("/v2/Team/App/tags/list"), "NAME_INVALID", "lowercase"),
        (client.put(f"/v2/team/app/blobs/uploads/{'ab' * 16}?digest={digest_of(b'x')}"), "BLOB_UPLOAD_UNKNOWN",
         "push again"),
        (client.get("/v2/team/missing/tags/list"), "NAME_UNKNOWN", "push to create it"),
    ]
    upload = client.post("/v2/team/app/blobs/uploads/").headers["Location"].split("registry.example.test")[1]
    checks.append((client.put(upload), "DIGEST_INVALID", "PUT completes an upload and needs ?digest="))
    document = json.loads(body)
    document["layers"][0]["digest"] = digest_of(b"never pushed")
    checks.append((push.manifest("team/app", "v2", json.dumps(document).encode()), "MANIFEST_BLOB_UNKNOWN",
                   "push its config, layers"))
    for response, code, advice in checks:
        assert error_code(response) == code
        assert advice in message(response), message(response)


def test_every_answer_forbids_caching(client, anonymous, push):
    """CloudFront and any proxy must not replay an answer: it depends on the caller and changes
    with every push (a 404 before a push, say)."""
    push.image("team/app", "v1")
    layer = json.loads(client.get("/v2/team/app/manifests/v1").body)["layers"][0]["digest"]
    for response in (anonymous.get("/v2/"), client.get("/v2/team/app/tags/list"),
                     client.get(f"/v2/team/app/blobs/{layer}"), client.head("/v2/team/app/manifests/v2"),
                     anonymous.get("/token?service=dockless")):
        assert response.headers["Cache-Control"] == "no-store", response.status_code


def test_storage_still_busy_after_the_retries_is_a_503_to_retry_never_a_500(client, push, monkeypatch, state):
    """DynamoDB throttling past botocore's retries, or a write conflicting past ours
    (chalicelib/runtime/retries.py), is TOOMANYREQUESTS with Retry-After: run it again."""
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.registry.manifests import ManifestService
    push.image("team/app", "v1")
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")
    conflicted = TransactWriteError("Failed to write transaction items", cause=ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
         "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]}, "TransactWriteItems"))
    for error in (throttled, conflicted):
        def busy(*args, **kwargs):
            raise error
        monkeypatch.setattr(ManifestService, "tags", busy)
        before = state()
        answer = client.get("/v2/team/app/tags/list")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert error_code(answer) == "TOOMANYREQUESTS" and "busy" in message(answer)
        assert state() == before
    monkeypatch.setattr(ManifestService, "tags", lambda *args, **kwargs: 1 / 0)
    assert client.get("/v2/team/app/tags/list").status_code == 500  # a defect stays a 500
