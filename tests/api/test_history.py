"""Tag history, restore (the time machine), immutable tags, repository settings and the diff API,
in process. tests/e2e/test_history.py drives the same through docker, skopeo and the CLI."""
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.metadata.models import AuditEvent
from tests.fixtures import OCI_INDEX, OCI_LAYER, OCI_MANIFEST, digest_of, error_code


def history(client, repo="team/app", **query):
    path = f"/dockless/v1/{repo}/history"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    response = client.get(path)
    assert response.status_code == 200, response.body
    return response


def moves(client, repo="team/app", **query):
    """(action, tag, from, to) of each event, newest first."""
    return [(e["action"], e["tag"], e["from"], e["to"]) for e in json.loads(history(client, repo, **query).body)["history"]]


def restore(client, tag, repo="team/app", **body):
    return client.post(f"/dockless/v1/{repo}/tags/{tag}/restore", body=json.dumps(body),
                       headers={"Content-Type": "application/json"})


def settings(client, resource="team/app", **changes):
    response = client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": resource, **changes}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def tag_digest(client, tag, repo="team/app"):
    response = client.head(f"/v2/{repo}/manifests/{tag}")
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def image(push, repo, tag, layers=(b"layer-one",), platform=("linux", "amd64"), **config):
    """Push an image whose config carries `config` (Env, Labels, Cmd…) and a history entry per layer."""
    document = {"architecture": platform[1], "os": platform[0], "config": config,
                "created": "2026-01-01T00:00:00Z",
                "history": [{"created_by": f"ADD layer {i}"} for i in range(len(layers))]}
    descriptor = push.blob(repo, json.dumps(document).encode())
    descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor,
                       "layers": [dict(push.blob(repo, data), mediaType=OCI_LAYER) for data in layers]}).encode()
    response = push.manifest(repo, tag or digest_of(body), body)
    assert response.status_code == 201, response.body
    return digest_of(body)


# --- history ---------------------------------------------------------------------------------------

def test_every_tag_change_is_kept_newest_first_with_who_and_from_where(client, push, clock):
    _, first = push.image("team/app", "v1", layers=[b"a"])
    clock.advance(minutes=1)
    _, second = push.image("team/app", "v1", layers=[b"b"])
    clock.advance(minutes=1)
    push.image("team/app", "v1", layers=[b"b"])  # the same digest again changes nothing
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    assert moves(client) == [("delete", "v1", second, None), ("move", "v1", first, second),
                             ("push", "v1", None, first)]
    newest = json.loads(history(client).body)["history"][0]
    assert newest["actor"] == "admin" and newest["source_ip"] and newest["request_id"]
    assert newest["time"] == "2026-01-01T00:02:00+00:00"


def test_history_of_one_tag_and_pages_follow_the_link(client, push, clock):
    digests = []
    for number in range(5):
        clock.advance(seconds=1)
        digests.append(push.image("team/app", "v1", layers=[bytes([number])])[1])
        push.image("team/app", f"other{number}", layers=[bytes([number])])
    assert [m[3] for m in moves(client, tag="v1")] == digests[::-1]
    seen, path = [], "/dockless/v1/team/app/history?tag=v1&n=2"
    while path:
        response = client.get(path)
        assert response.status_code == 200, response.body
        page = json.loads(response.body)["history"]
        assert len(page) <= 2
        seen += [event["to"] for event in page]
        link = response.headers.get("Link")
        path = link[1:link.index(">")] if link else None
        if path:
            assert parse_qs(urlsplit(path).query)["tag"] == ["v1"]
    assert seen == digests[::-1]
    assert len(moves(client)) == 10


@pytest.mark.parametrize("query, code", [("n=x", "PAGINATION_NUMBER_INVALID"), ("last=../x", "PAGINATION_NUMBER_INVALID"),
                                         ("tag=-bad", "TAG_INVALID")])
def test_history_refuses_a_bad_query(client, push, query, code):
    push.image("team/app", "v1")
    response = client.get(f"/dockless/v1/team/app/history?{query}")
    assert response.status_code == 400
    assert error_code(response) == code


def test_history_of_an_unknown_repository_is_name_unknown(client):
    response = client.get("/dockless/v1/team/none/history")
    assert response.status_code == 404
    assert error_code(response) == "NAME_UNKNOWN"


# --- restore ---------------------------------------------------------------------------------------

def test_restore_by_digest_points_the_tag_back_and_is_recorded(client, push, clock):
    _, first = push.image("team/app", "prod", layers=[b"a"])
    clock.advance(minutes=1)
    _, second = push.image("team/app", "prod", layers=[b"b"])
    clock.advance(minutes=1)
    response = restore(client, "prod", digest=first)
    assert response.status_code == 201, response.body
    assert response.headers["Docker-Content-Digest"] == first
    assert response.headers["Location"].endswith(f"/v2/team/app/manifests/{first}")
    assert tag_digest(client, "prod") == first
    assert moves(client)[0] == ("restore", "prod", second, first)
    audited = [e for e in AuditEvent.scan() if e.action == "tag.restore"]
    assert [(e.reference, json.loads(e.detail)["digest"]) for e in audited] == [("prod", first)]


def test_restore_by_time_finds_what_the_tag_named_then(client, push, clock):
    _, first = push.image("team/app", "prod", layers=[b"a"])
    clock.advance(hours=1)
    then = clock().isoformat()
    clock.advance(hours=1)
    push.image("team/app", "prod", layers=[b"b"])
    clock.advance(hours=1)
    assert client.delete("/v2/team/app/manifests/prod").status_code == 202
    response = restore(client, "prod", at=then.replace("+00:00", "Z"))
    assert response.status_code == 201, response.body
    assert tag_digest(client, "prod") == first


def test_restore_to_a_time_before_the_tag_existed_changes_nothing(client, push, clock, state):
    clock.advance(hours=1)
    push.image("team/app", "prod")
    before = state()
    response = restore(client, "prod", at="2026-01-01T00:30:00+00:00")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert "team/app:prod named no manifest at 2026-01-01T00:30:00+00:00" in json.loads(response.body)["errors"][0]["message"]
    assert state() == before


@pytest.mark.parametrize("body", [{}, {"digest": "sha256:" + "0" * 64, "at": "2026-01-01T00:00:00Z"},
                                  {"digest": 7}, {"digest": "sha256:short"}, {"at": "yesterday"}])
def test_restore_refuses_a_bad_request_and_changes_nothing(client, push, state, body):
    push.image("team/app", "prod")
    before = state()
    response = restore(client, "prod", **body)
    assert response.status_code == 400, response.body
    assert error_code(response) in ("RESTORE_INVALID", "DIGEST_INVALID")
    assert state() == before


def test_restore_refuses_a_manifest_whose_layer_is_gone_and_changes_nothing(client, push, clock, state):
    """A tag restored to a manifest must pull: a layer deleted since is named, and the tag stays."""
    _, first = push.image("team/app", "prod", layers=[b"a"])
    clock.advance(minutes=1)
    _, second = push.image("team/app", "prod", layers=[b"b"])
    assert client.delete(f"/v2/team/app/blobs/{digest_of(b'a')}").status_code == 202
    before = state()
    response = restore(client, "prod", digest=first)
    assert response.status_code == 400 and error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"missing": [digest_of(b"a")]}
    assert tag_digest(client, "prod") == second
    assert state() == before


def test_restore_of_a_manifest_collected_meanwhile_is_unknown_and_the_tag_stays(client, push, clock, monkeypatch):
    """Garbage collection takes the manifest after restore read it, before the tag moves."""
    from chalicelib.registry.manifests import ManifestService
    from chalicelib.metadata.models import Manifest
    _, first = push.image("team/app", "prod", layers=[b"a"])
    clock.advance(minutes=1)
    _, second = push.image("team/app", "prod", layers=[b"b"])
    checked = ManifestService._require_mutable

    def collect_meanwhile(repo, tag, *args):
        for item in Manifest.query(repo, Manifest.digest == first):
            item.delete()
        return checked(repo, tag, *args)
    monkeypatch.setattr(ManifestService, "_require_mutable", staticmethod(collect_meanwhile))
    response = restore(client, "prod", digest=first)
    assert response.status_code == 404 and error_code(response) == "MANIFEST_UNKNOWN"
    assert json.loads(response.body)["errors"][0]["detail"] == {"digest": first}
    assert tag_digest(client, "prod") == second


def test_restore_of_a_digest_the_repository_never_had_is_unknown(client, push, state):
    push.image("team/app", "prod")
    _, elsewhere = push.image("team/other", "prod", layers=[b"z"])
    before = state()
    response = restore(client, "prod", digest=elsewhere)
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert state() == before


def test_a_deleted_manifest_is_gone_but_restorable_within_the_window(client, push, clock):
    _, digest = push.image("team/app", "prod")
    clock.advance(seconds=1)
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 404
    assert client.get("/v2/team/app/manifests/prod").status_code == 404
    assert moves(client)[0] == ("delete", "prod", digest, None)
    clock.advance(days=13, hours=23)
    assert restore(client, "prod", digest=digest).status_code == 201
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 200
    assert tag_digest(client, "prod") == digest


def test_after_the_window_a_deleted_manifest_is_not_restorable(client, push, clock, state):
    _, digest = push.image("team/app", "prod")
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    clock.advance(days=14)
    before = state()
    response = restore(client, "prod", digest=digest)
    assert response.status_code == 404
    assert "more than the 14-day time-machine window ago" in json.loads(response.body)["errors"][0]["message"]
    assert state() == before


def test_a_zero_day_window_keeps_nothing_and_a_repository_overrides_its_namespace(client, push, clock):
    settings(client, "team", time_machine_days=0)
    _, digest = push.image("team/app", "prod")
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    assert restore(client, "prod", digest=digest).status_code == 404
    settings(client, "team/app", time_machine_days=30)
    clock.advance(days=20)
    assert restore(client, "prod", digest=digest).status_code == 201


def test_pushing_a_deleted_digest_again_brings_it_back(client, push):
    body, digest = push.image("team/app", "prod")
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    assert push.manifest("team/app", "again", body).status_code == 201
    assert client.get(f"/v2/team/app/manifests/{digest}").body == body


# --- immutable tags --------------------------------------------------------------------------------

IMMUTABLE = "tag v1.2 is immutable in team/app: push a new tag"


def refused(response):
    assert response.status_code == 403, response.body
    error = json.loads(response.body)["errors"][0]
    assert (error["code"], error["message"]) == ("DENIED", IMMUTABLE)


def test_an_immutable_tag_never_moves_or_goes_away(client, push, state):
    settings(client, "team", immutable_tags=["v*", "release-*"])
    body, digest = push.image("team/app", "v1.2", layers=[b"a"])
    assert push.manifest("team/app", "v1.2", body).status_code == 201  # the same digest again: fine
    _, other = push.image("team/app", "latest", layers=[b"b"])
    before = state()
    moved = push.manifest("team/app", "v1.2", json.dumps({**json.loads(body), "annotations": {"x": "y"}}).encode())
    refused(moved)
    refused(client.delete("/v2/team/app/manifests/v1.2"))
    refused(client.delete(f"/v2/team/app/manifests/{digest}"))
    refused(restore(client, "v1.2", digest=other))
    assert state() == before
    assert tag_digest(client, "v1.2") == digest
    assert push.image("team/app", "latest", layers=[b"c"])[1] != other  # other tags move


def test_what_an_immutable_index_names_is_not_deleted_expired_or_collected(client, push, registry, clock, state):
    from chalicelib.routes import jobs
    from chalicelib.lifecycle.retention import RetentionService
    settings(client, "team", immutable_tags=["v*"], time_machine_days=0)
    amd = image(push, "team/app", None, layers=[b"amd-layer"])
    arm = image(push, "team/app", None, layers=[b"arm-layer"], platform=("linux", "arm64"))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": len(client.get(f"/v2/team/app/manifests/{amd}").body),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": len(client.get(f"/v2/team/app/manifests/{arm}").body),
         "platform": {"os": "linux", "architecture": "arm64"}}]}).encode()
    assert push.manifest("team/app", "v9", index).status_code == 201
    before = state()
    for path, what in ((f"manifests/{arm}", arm), (f"blobs/{digest_of(b'arm-layer')}", digest_of(b"arm-layer"))):
        response = client.delete(f"/v2/team/app/{path}")
        assert response.status_code == 403, response.body
        error = json.loads(response.body)["errors"][0]
        assert (error["code"], error["message"]) == (
            "DENIED", f"{what} is part of team/app:v9, which is immutable: it cannot be deleted")
        assert error["detail"] == {"tag": "v9", "digest": what}
    assert state() == before
    # Neither retention (untagged for a day) nor garbage collection takes the children.
    client.put("/dockless/admin/v1/settings", body=json.dumps(
        {"resource": "team", "retention": {"untagged_days": 1}}), headers={"Content-Type": "application/json"})
    clock.advance(days=3)
    assert RetentionService(registry).apply() == []
    for _ in range(2):
        jobs.collect_garbage(registry)
        clock.advance(days=2)
    for child in (amd, arm):
        assert client.get(f"/v2/team/app/manifests/{child}").status_code == 200
    assert client.get(f"/v2/team/app/blobs/{digest_of(b'arm-layer')}").status_code == 307
    # A referrer of the image (an SBOM, a signature) is not part of it: it may go.
    config = push.blob("team/app", b"{}")
    referrer = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "text/plain",
                           "config": dict(config, mediaType="application/vnd.oci.empty.v1+json"), "layers": [],
                           "subject": {"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)}}
                          ).encode()
    assert push.manifest("team/app", digest_of(referrer), referrer).status_code == 201
    assert client.delete(f"/v2/team/app/manifests/{digest_of(referrer)}").status_code == 202


def test_lifting_immutability_is_a_recorded_setting_change(client, push, clock):
    settings(client, "team/app", immutable_tags=["*"])
    push.image("team/app", "v1.2", layers=[b"a"])
    clock.advance(seconds=1)
    refused(client.delete("/v2/team/app/manifests/v1.2"))
    shown = settings(client, "team/app", immutable_tags=[])
    assert shown["own"]["immutable_tags"] == []
    assert shown["changes"]["immutable_tags"]["by"] == "admin"
    assert client.delete("/v2/team/app/manifests/v1.2").status_code == 202
    changes = [json.loads(e.detail) for e in sorted(AuditEvent.scan(), key=lambda e: e.at)
               if e.action == "setting.change"]
    assert [c["immutable_tags"] for c in changes] == [["*"], []]


# --- settings --------------------------------------------------------------------------------------

def test_settings_show_their_own_values_who_changed_them_and_what_applies(client, clock):
    settings(client, "team", verified=True, immutable_tags=["v*"])
    clock.advance(minutes=5)
    settings(client, "team/app", time_machine_days=3, immutable_tags=["prod"])
    response = client.get("/dockless/admin/v1/settings?resource=team/app")
    assert response.status_code == 200
    shown = json.loads(response.body)
    assert shown["own"] == {"verified": False, "auto_sign": False, "immutable_tags": ["prod"], "time_machine_days": 3,
                            "retention": None, "upstream": None, "refuse_severity": None}
    assert shown["applied"] == {"verified": True, "auto_sign": False, "immutable_tags": ["prod", "v*"],
                                "time_machine_days": 3, "retention": None, "cache": None, "refuse_severity": None,
                                "accepted_risks": []}
    assert shown["changes"] == {"time_machine_days": {"by": "admin", "at": "2026-01-01T00:05:00+00:00"},
                                "immutable_tags": {"by": "admin", "at": "2026-01-01T00:05:00+00:00"}}
    fresh = json.loads(client.get("/dockless/admin/v1/settings?resource=other").body)
    assert fresh["applied"]["time_machine_days"] == 14 and fresh["changes"] == {}


@pytest.mark.parametrize("body", [{"resource": "team"}, {"resource": "Bad Name", "verified": True},
                                  {"resource": "team", "verified": "yes"},
                                  {"resource": "team", "immutable_tags": "v*"},
                                  {"resource": "team", "immutable_tags": ["v/1"]},
                                  {"resource": "team", "immutable_tags": ["v*"] * 21},
                                  {"resource": "team", "time_machine_days": -1},
                                  {"resource": "team", "time_machine_days": 1.5},
                                  {"resource": "team", "time_machine_days": 3651},
                                  {"resource": "team", "refuse_severity": "urgent"},
                                  {"resource": "team", "refuse_severity": 3}])
def test_a_bad_setting_is_refused_and_changes_nothing(client, state, body):
    before = state()
    response = client.put("/dockless/admin/v1/settings", body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.body
    assert error_code(response) == "INVALID"
    assert state() == before


# --- diff ------------------------------------------------------------------------------------------

def test_diff_reports_config_and_layer_changes(client, push):
    first = image(push, "team/app", "v1", layers=[b"base", b"app-1"], Env=["A=1", "B=2"],
                  Labels={"tier": "web"}, Cmd=["run"])
    second = image(push, "team/app", "v2", layers=[b"base", b"app-2"], Env=["A=1", "B=3", "C=4"],
                   Labels={"tier": "api"}, Cmd=["run"], ExposedPorts={"80/tcp": {}})
    response = client.get("/dockless/v1/team/app/diff?from=v1&to=v2")
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert (answer["from"]["digest"], answer["to"]["digest"]) == (first, second)
    [platform] = answer["platforms"]
    assert platform["platform"] == "linux/amd64"
    assert platform["config"] == {"env": {"B": {"from": "2", "to": "3"}, "C": {"from": None, "to": "4"}},
                                  "labels": {"tier": {"from": "web", "to": "api"}},
                                  "exposed_ports": {"80/tcp": {"from": None, "to": True}}}
    layers = platform["layers"]
    assert [layer["digest"] for layer in layers["shared"]] == [digest_of(b"base")]
    assert [(layer["digest"], layer["size"]) for layer in layers["added"]] == [(digest_of(b"app-2"), 5)]
    assert [layer["digest"] for layer in layers["removed"]] == [digest_of(b"app-1")]


def index(push, repo, tag, children):
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1, "platform": {"os": "linux", "architecture": arch}}
        for arch, digest in children]}).encode()
    assert push.manifest("team/app", tag, body).status_code == 201
    return digest_of(body)


def test_diff_of_indexes_goes_platform_by_platform(client, push):
    amd = image(push, "team/app", None, layers=[b"amd"], platform=("linux", "amd64"))
    arm_1 = image(push, "team/app", None, layers=[b"arm-1"], platform=("linux", "arm64"))
    arm_2 = image(push, "team/app", None, layers=[b"arm-2"], platform=("linux", "arm64"), User="app")
    s390 = image(push, "team/app", None, layers=[b"s390"], platform=("linux", "s390x"))
    index(push, "team/app", "multi-1", [("amd64", amd), ("arm64", arm_1)])
    index(push, "team/app", "multi-2", [("amd64", amd), ("arm64", arm_2), ("s390x", s390)])
    answer = json.loads(client.get("/dockless/v1/team/app/diff?from=multi-1&to=multi-2").body)
    assert answer["from"] == {"reference": "multi-1", "digest": answer["from"]["digest"], "mediaType": OCI_INDEX}
    answer_v = json.loads(client.get(f"/dockless/v1/team/app/diff?from=multi-1&to={amd}").body)
    assert (answer_v["from"]["mediaType"], answer_v["to"]["mediaType"]) == (OCI_INDEX, OCI_MANIFEST)
    by_platform = {p["platform"]: p for p in answer["platforms"]}
    assert list(by_platform) == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert by_platform["linux/amd64"]["config"] == {}
    assert by_platform["linux/amd64"]["layers"]["added"] == []
    assert by_platform["linux/arm64"]["config"] == {"user": {"from": None, "to": "app"}}
    assert by_platform["linux/s390x"] == {"platform": "linux/s390x", "from": None, "to": s390}


@pytest.mark.parametrize("query, status, code", [("from=v1", 404, "MANIFEST_UNKNOWN"),
                                                  ("from=v1&to=nope", 404, "MANIFEST_UNKNOWN"),
                                                  ("from=v1&to=..", 404, "MANIFEST_UNKNOWN")])
def test_diff_of_something_missing_is_manifest_unknown(client, push, query, status, code):
    image(push, "team/app", "v1")
    response = client.get(f"/dockless/v1/team/app/diff?{query}")
    assert response.status_code == status
    assert error_code(response) == code


def racing(monkeypatch, registry, body, repo="team/app", tag="prod"):
    """Between the moment a push reads the tag (with everything else it checks) and the moment it
    writes it, another request moves the tag to the manifest `body` (once)."""
    from chalicelib.registry import manifests
    real = manifests.gc.claim_object
    calls = []

    def claim_object(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            manifests.ManifestService(registry).put(repo, tag, body, OCI_MANIFEST)
        return real(*args, **kwargs)
    monkeypatch.setattr(manifests.gc, "claim_object", claim_object)


def test_a_tag_write_that_loses_a_race_is_checked_again_and_both_moves_are_kept(client, push, registry, monkeypatch,
                                                                              clock):
    _, first = push.image("team/app", "prod", layers=[b"a"])
    theirs, their_digest = push.image("team/app", None, layers=[b"b"])
    mine, my_digest = push.image("team/app", None, layers=[b"c"])
    clock.advance(seconds=1)
    racing(monkeypatch, registry, theirs)
    assert push.manifest("team/app", "prod", mine).status_code == 201
    assert tag_digest(client, "prod") == my_digest
    assert sorted(moves(client)) == sorted([("move", "prod", their_digest, my_digest),
                                            ("move", "prod", first, their_digest), ("push", "prod", None, first)])


def test_an_immutable_tag_created_during_a_push_is_not_moved_by_it(client, push, registry, monkeypatch, state):
    settings(client, "team", immutable_tags=["v*"])
    theirs, their_digest = push.image("team/app", None, layers=[b"b"])
    mine, _ = push.image("team/app", None, layers=[b"c"])
    racing(monkeypatch, registry, theirs, tag="v1.2")
    refused(push.manifest("team/app", "v1.2", mine))
    assert tag_digest(client, "v1.2") == their_digest
    assert moves(client, tag="v1.2") == [("push", "v1.2", None, their_digest)]


def test_who_may_push_diffs_unsigned_images_in_verified_mode(client, push):
    """As for a GET: verified mode serves only what is signed, except to those who may push."""
    image(push, "team/app", "v1", layers=[b"one"])
    image(push, "team/app", "v2", layers=[b"two"])
    settings(client, "team", verified=True)
    response = client.get("/dockless/v1/team/app/diff?from=v1&to=v2")
    assert response.status_code == 200, response.body


def moved_before_each_try(monkeypatch, registry, bodies, repo="team/app", tag="prod"):
    """Before each of a push's tries at writing the tag, another push moves it (to each of
    `bodies` in turn, while they last): the push loses the race every time until they run out."""
    from chalicelib.registry import manifests
    left, inside = list(bodies), []

    def pause(attempts):
        if left and not inside:
            inside.append(True)
            try:
                manifests.ManifestService(registry).put(repo, tag, left.pop(0), OCI_MANIFEST)
            finally:
                inside.clear()
    monkeypatch.setattr(manifests.retries, "pause", pause)
    return left


def test_a_push_that_loses_the_race_for_a_tag_again_and_again_still_lands(client, push, registry, monkeypatch):
    """Pushes of one tag at once (fifty clients pushing `latest`): each lost race is read again
    (consistently) and tried again, with a pause, many times over; the history keeps every move."""
    _, first = push.image("team/app", "prod", layers=[b"a"])
    theirs = [push.image("team/app", None, layers=[bytes([n])]) for n in range(6)]
    mine, my_digest = push.image("team/app", None, layers=[b"mine"])
    moved_before_each_try(monkeypatch, registry, [body for body, _ in theirs])
    assert push.manifest("team/app", "prod", mine).status_code == 201
    assert tag_digest(client, "prod") == my_digest
    chain = [first] + [digest for _, digest in theirs] + [my_digest]
    assert sorted(moves(client)) == sorted([("push", "prod", None, first)]
                                           + [("move", "prod", a, b) for a, b in zip(chain, chain[1:])])


def test_a_push_that_loses_every_try_is_ordered_before_the_last_move(client, push, registry, monkeypatch):
    """A push that loses the race for its tag at every try is stored and answered 201, ordered
    just before the push that moved the tag last: the tag and its history are that push's, and the
    audit trail says which push superseded it. Nothing is a 5xx or a refusal."""
    from chalicelib.runtime import retries
    push.image("team/app", "prod", layers=[b"a"])
    theirs = [push.image("team/app", None, layers=[bytes([n])])[0] for n in range(retries.RACE_ATTEMPTS)]
    mine, my_digest = push.image("team/app", None, layers=[b"mine"])
    moved_before_each_try(monkeypatch, registry, theirs)
    before = moves(client)
    response = push.manifest("team/app", "prod", mine)
    assert response.status_code == 201 and response.headers["Docker-Content-Digest"] == my_digest
    assert tag_digest(client, "prod") == digest_of(theirs[-1])
    assert client.get(f"/v2/team/app/manifests/{my_digest}").status_code == 200
    assert not [move for move in moves(client) if my_digest in move] and len(moves(client)) == len(before) + 12
    events = client.get("/dockless/admin/v1/audit?repository=team/app").json_body["events"]
    (superseded,) = [e for e in events if e["action"] == "tag.superseded"]
    assert superseded["detail"] == {"digest": my_digest, "by": digest_of(theirs[-1])}
