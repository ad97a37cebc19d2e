"""Manifests by tag and digest (distribution-spec end-3, end-7, end-9), in process."""
import json

import pytest

from chalicelib.oci import spec
from tests.fixtures import OCI_INDEX, OCI_MANIFEST, PUBLIC_URL, digest_of, error_code

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_put_by_tag_then_get_by_tag_and_digest_returns_the_exact_bytes(client, push):
    body, digest = push.image("team/app", "v1")
    for reference in ("v1", digest):
        response = client.get(f"/v2/team/app/manifests/{reference}")
        assert response.status_code == 200
        assert response.body == body
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest


def test_put_answers_201_with_location_and_digest(client, push):
    config = push.blob("team/app", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []},
                      indent=3).encode()  # unusual whitespace: the digest is of these exact bytes
    response = push.manifest("team/app", "v1", body)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    assert response.headers["Location"] == f"{PUBLIC_URL}/v2/team/app/manifests/{digest_of(body)}"
    assert client.get("/v2/team/app/manifests/v1").body == body


def test_head_answers_digest_length_and_type_in_one_response(client, push):
    body, digest = push.image("team/app", "v1")
    for reference in ("v1", digest):
        response = client.head(f"/v2/team/app/manifests/{reference}")
        assert response.status_code == 200 and response.body == b""
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["Content-Length"] == str(len(body))
        assert response.headers["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize("reference", [".INVALID_MANIFEST_NAME", "-x", "sha256:nothex", "md5:" + "a" * 32])
def test_a_reference_that_cannot_exist_is_manifest_unknown_except_on_put(client, push, state, reference):
    body, _ = push.image("team/app", "v1")
    before = state()
    for method in ("GET", "HEAD", "DELETE"):
        response = client.request(method, f"/v2/team/app/manifests/{reference}")
        assert response.status_code == 404, (method, response.body)
        if method != "HEAD":
            assert error_code(response) == "MANIFEST_UNKNOWN"
    put = push.manifest("team/app", reference, body)
    assert put.status_code == 400 and error_code(put) in ("TAG_INVALID", "DIGEST_INVALID")
    assert state() == before


def test_docker_schema2_media_type_is_kept(client, push):
    config = push.blob("team/app", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                       "config": dict(config, mediaType="application/vnd.docker.container.image.v1+json"),
                       "layers": []}).encode()
    assert push.manifest("team/app", "v1", body, DOCKER_MANIFEST).status_code == 201
    assert client.get("/v2/team/app/manifests/v1").headers["Content-Type"] == DOCKER_MANIFEST


def test_unknown_manifest_is_404(client, push):
    push.image("team/app", "v1")
    for reference, detail in (("v2", {"tag": "v2"}), (digest_of(b"nothing"), {"digest": digest_of(b"nothing")})):
        for method in ("GET", "HEAD"):
            response = client.request(method, f"/v2/team/app/manifests/{reference}")
            assert response.status_code == 404
            if method == "GET":
                assert error_code(response) == "MANIFEST_UNKNOWN"
                assert json.loads(response.body)["errors"][0]["detail"] == detail


def test_manifest_with_missing_blob_is_refused_and_writes_nothing(client, push, state):
    config = push.blob("team/app", b"{}")
    missing = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(b"absent"), "size": 6}
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                       "layers": [missing]}).encode()
    before = state()
    response = push.manifest("team/app", "v1", body)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"]["missing"] == [missing["digest"]]
    assert state() == before


def test_blob_linked_only_in_another_repository_does_not_count(client, push, state):
    config = push.blob("team/other", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode()
    before = state()
    response = push.manifest("team/app", "v1", body)
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert state() == before


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"schemaVersion": 1}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
    b' "config": {"mediaType": "x", "digest": "sha256:12", "size": 1}, "layers": []}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
    b' "config": {"mediaType": "x", "digest": "sha256:' + b"a" * 64 + b'", "size": -1}, "layers": []}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": {}}',
    b'\xff\xfe{}',
])
def test_malformed_manifest_is_manifest_invalid(client, state, body):
    before = state()
    response = client.put("/v2/team/app/manifests/v1", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_INVALID"
    assert state() == before


def test_content_type_that_contradicts_the_body_is_refused(client, push, state):
    config = push.blob("team/app", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode()
    before = state()
    response = push.manifest("team/app", "v1", body, media_type=DOCKER_MANIFEST)
    assert error_code(response) == "MANIFEST_INVALID"
    assert state() == before


def test_a_manifests_bytes_go_to_the_bucket_with_their_sha256_for_s3_to_check(client, push, registry, monkeypatch):
    """S3 refuses a PUT whose bytes do not hash to the checksum it carries: what only real S3
    enforces (moto does not report this checksum back), checked as the call the code makes."""
    import base64
    import hashlib
    s3, sent = registry.objects._s3, []
    put_object = s3.put_object
    monkeypatch.setattr(s3, "put_object", lambda **call: sent.append(call) or put_object(**call))
    body, digest = push.image("team/app", "v1")
    assert [(call["Key"], call["ChecksumSHA256"]) for call in sent if call["Key"].startswith("manifests/")] == [
        (f"manifests/sha256/{digest[7:]}", base64.b64encode(hashlib.sha256(body).digest()).decode())]


def test_put_by_digest_must_match_the_body(client, push, state):
    config = push.blob("team/app", b"{}")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode()
    before = state()
    response = push.manifest("team/app", digest_of(b"other"), body)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert json.loads(response.body)["errors"][0]["detail"] == {"reference": digest_of(b"other"),
                                                                "actual": digest_of(body)}
    assert state() == before
    assert push.manifest("team/app", digest_of(body), body).status_code == 201


def test_manifest_above_4_mib_gets_413(client, state):
    before = state()
    body = b'{"schemaVersion": 2, "pad": "' + b"x" * spec.MANIFEST_MAX_BYTES + b'"}'
    response = client.put("/v2/team/app/manifests/v1", body=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 413
    assert state() == before


def test_large_manifest_is_kept_in_s3_and_served_exactly(client, push):
    config = push.blob("team/app", b"{}")
    annotations = {f"key{i}": "v" * 100 for i in range(500)}  # ~55 KB, above the inline limit
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [],
                       "annotations": annotations}).encode()
    assert len(body) > spec.MANIFEST_INLINE_MAX_BYTES
    assert push.manifest("team/app", "big", body).status_code == 201
    assert client.get("/v2/team/app/manifests/big").body == body


def test_image_with_127_layers(client, push):
    layers = [f"layer {i}".encode() for i in range(127)]
    body, digest = push.image("team/app", "tall", layers=layers)
    assert client.get("/v2/team/app/manifests/tall").headers["Docker-Content-Digest"] == digest


def test_re_put_of_identical_manifest_is_idempotent(client, push):
    body, digest = push.image("team/app", "v1")
    response = push.manifest("team/app", "v1", body)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest
    assert client.get("/v2/team/app/tags/list").json_body["tags"] == ["v1"]


def test_tag_moves_to_the_new_manifest(client, push):
    _, first = push.image("team/app", "latest", layers=(b"one",))
    _, second = push.image("team/app", "latest", layers=(b"two",))
    assert client.get("/v2/team/app/manifests/latest").headers["Docker-Content-Digest"] == second
    assert client.get(f"/v2/team/app/manifests/{first}").status_code == 200


def test_index_needs_its_children_in_the_repository(client, push, state):
    child_body, child = push.image("team/app")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"absent child"), "size": 10,
         "platform": {"architecture": "arm64", "os": "linux"}}]}
    before = state()
    response = push.manifest("team/app", "multi", json.dumps(index).encode())
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert state() == before
    index["manifests"].pop()
    body = json.dumps(index).encode()
    assert push.manifest("team/app", "multi", body).status_code == 201
    response = client.get("/v2/team/app/manifests/multi")
    assert response.body == body
    assert response.headers["Content-Type"] == OCI_INDEX


def test_artifact_with_subject_not_yet_pushed_is_accepted(client, push):
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"future image"), "size": 12}
    empty = push.blob("team/app", b"{}")
    empty["mediaType"] = "application/vnd.oci.empty.v1+json"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
                       "config": empty, "layers": [], "subject": subject}).encode()
    response = push.manifest("team/app", digest_of(body), body)
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == subject["digest"]


def test_delete_by_tag_removes_only_the_tag(client, push):
    _, digest = push.image("team/app", "v1")
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    assert client.get("/v2/team/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 200


def test_delete_by_digest_removes_the_manifest_and_its_tags(client, push):
    _, digest = push.image("team/app", "v1")
    push.manifest("team/app", "also", client.get("/v2/team/app/manifests/v1").body)
    _, other = push.image("team/app", "keep", layers=(b"other",))
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    for reference in ("v1", "also", digest):
        assert client.get(f"/v2/team/app/manifests/{reference}").status_code == 404
    assert client.get("/v2/team/app/tags/list").json_body["tags"] == ["keep"]


def moving_tags_meanwhile(monkeypatch, push, movers):
    """A tag in `movers`, when a delete's attempt checks it first (after reading the tags, before
    deleting them), is pushed to a new image: one move per attempt. Returns {tag: its new digest}."""
    from chalicelib.registry.manifests import ManifestService
    checked, moved, last = ManifestService._require_mutable, {}, [""]

    def move_meanwhile(repo, tag, *args):
        first_of_attempt, last[0] = tag <= last[0] or not last[0], tag  # tags are checked in order
        if first_of_attempt and tag in movers and tag not in moved:
            moved[tag] = None  # the push below checks its tag too
            moved[tag] = push.image(repo, tag, layers=(tag.encode(),))[1]
        return checked(repo, tag, *args)
    monkeypatch.setattr(ManifestService, "_require_mutable", staticmethod(move_meanwhile))
    return moved


def test_a_tag_moved_while_its_old_digest_is_deleted_keeps_the_new_image(client, push, monkeypatch):
    """Deleting by digest removes the tags that name it; one pushed elsewhere in the meantime is not
    among them any more, and the delete still happens."""
    body, digest = push.image("team/app", "v1")
    push.manifest("team/app", "also", body)
    moved = moving_tags_meanwhile(monkeypatch, push, {"also"})
    response = client.delete(f"/v2/team/app/manifests/{digest}")
    assert response.status_code == 202, response.body
    assert client.head("/v2/team/app/manifests/also").headers["Docker-Content-Digest"] == moved["also"]
    assert client.get("/v2/team/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 404


def test_tags_that_keep_moving_while_a_digest_is_deleted_get_429_and_it_stays(client, push, monkeypatch):
    """Each try reads the tags again after a pause (retries.pause); a tag moving before every one of
    retries.RACE_ATTEMPTS tries makes the delete busy, with nothing of it done."""
    from chalicelib.runtime import retries
    monkeypatch.setattr(retries, "pause", lambda attempts: None)
    tags = [f"t{number:02}" for number in range(retries.RACE_ATTEMPTS + 1)]
    body, digest = push.image("team/app", tags[0])
    for tag in tags[1:]:
        push.manifest("team/app", tag, body)
    moving_tags_meanwhile(monkeypatch, push, set(tags[:-1]))
    response = client.delete(f"/v2/team/app/manifests/{digest}")
    assert response.status_code == 429 and error_code(response) == "TOOMANYREQUESTS"
    assert json.loads(response.body)["errors"][0]["message"] == (
        f"the tags naming {digest} kept moving while it was deleted: try again")
    assert client.head(f"/v2/team/app/manifests/{tags[-1]}").headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 200


def test_delete_unknown_manifest_is_404(client, push, state):
    push.image("team/app", "v1")
    before = state()
    for reference in ("nope", digest_of(b"nope")):
        response = client.delete(f"/v2/team/app/manifests/{reference}")
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"
    assert state() == before


@pytest.mark.parametrize("reference, code", [("-leading-dash", "TAG_INVALID"), ("x" * 129, "TAG_INVALID"),
                                             ("sha256:short", "DIGEST_INVALID")])
def test_invalid_reference_is_refused(client, push, state, reference, code):
    body, _ = push.image("team/app")
    before = state()
    response = push.manifest("team/app", reference, body)
    assert response.status_code == 400
    assert error_code(response) == code
    assert state() == before
