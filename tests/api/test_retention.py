"""Retention rules, in process with the test clock: what each rule expires, what is exempt, the
once-a-day pull record, the preview's bytes, and that expiries are history and audit events by
`retention`. tests/e2e/test_retention.py applies rules to images docker pushed."""
import json

import pytest

from chalicelib.lifecycle.retention import RetentionService
from chalicelib.metadata.models import AuditEvent, Manifest, Signature
from chalicelib.routes import jobs
from tests.fixtures import OCI_INDEX, OCI_MANIFEST, digest_of, error_code


def rules(client, resource="team/app", **retention):
    response = client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": resource, "retention": retention}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def tags(client, repo="team/app"):
    return json.loads(client.get(f"/v2/{repo}/tags/list").body)["tags"]


def pushed(push, clock, *names, repo="team/app"):
    digests = {}
    for number, name in enumerate(names):
        clock.advance(hours=1)
        digests[name] = push.image(repo, name, layers=[f"{name} {number}".encode()])[1]
    return digests


def test_keep_last_expires_the_older_tags_but_not_exempt_or_immutable_ones(client, push, registry, clock):
    pushed(push, clock, "v1", "old", "older-fix", "latest")
    rules(client, keep_last=1, exempt=["v*"])
    client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team", "immutable_tags": ["older-*"]}),
               headers={"Content-Type": "application/json"})
    assert [(e.tag, e.reason) for e in RetentionService(registry).plan("team/app")] == [("old", "keep rules")]
    report = jobs.collect_garbage(registry)
    assert [(e["tag"], e["reason"]) for e in report["expired"]] == [("old", "keep rules")]
    assert tags(client) == ["latest", "older-fix", "v1"]
    event = json.loads(client.get("/dockless/v1/team/app/history?tag=old").body)["history"][0]
    assert (event["action"], event["actor"]) == ("expire", "retention")
    audited = [e for e in AuditEvent.scan() if e.action == "tag.expire"]
    assert [(e.reference, e.actor) for e in audited] == [("old", "retention")]


def test_keep_days_and_keep_last_together_keep_either(client, push, registry, clock):
    pushed(push, clock, "a", "b")
    clock.advance(days=10)
    pushed(push, clock, "c", "d")
    rules(client, keep_last=1, keep_days=5)  # d is the last; c is recent
    assert [e.tag for e in RetentionService(registry).plan("team/app")] == ["b", "a"]
    rules(client, keep_last=3, keep_days=5)  # b is among the last three
    assert [e.tag for e in RetentionService(registry).plan("team/app")] == ["a"]


def test_a_pull_is_one_write_call_with_or_without_its_daily_pull_record(client, push, clock, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="dockless.request")
    push.image("team/app", "v1")
    for _ in range(2):
        assert client.get("/v2/team/app/manifests/v1").status_code == 200
    gets = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"][-2:]
    writes = [[c for c in g["aws_calls"] if not c.endswith(("GetItem", "Query"))] for g in gets]
    assert writes == [["dynamodb:TransactWriteItems"], ["dynamodb:PutItem"]]  # audit + pull time, then audit


def test_an_unpulled_image_expires_and_a_pull_is_recorded_once_a_day(client, push, registry, clock):
    digests = pushed(push, clock, "pulled", "idle")
    clock.advance(days=5)
    assert client.get("/v2/team/app/manifests/pulled").status_code == 200
    first = Manifest.get("team/app", digests["pulled"]).pulled_at
    assert first == clock()
    clock.advance(hours=3)
    assert client.get("/v2/team/app/manifests/pulled").status_code == 200
    assert Manifest.get("team/app", digests["pulled"]).pulled_at == first  # not written again the same day
    assert client.head("/v2/team/app/manifests/idle").status_code == 200
    assert Manifest.get("team/app", digests["idle"]).pulled_at is None  # a HEAD is not a pull
    rules(client, unpulled_days=4)
    assert [(e.tag, e.reason) for e in RetentionService(registry).plan("team/app")] == [
        ("idle", "not pulled for 4 days")]


def test_untagged_manifests_expire_after_their_days_but_not_an_indexs_children(client, push, registry, clock):
    child_body, child = push.image("team/app", None, layers=[b"child"])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}).encode()
    assert push.manifest("team/app", "multi", index).status_code == 201
    _, loose = push.image("team/app", None, layers=[b"loose"])
    rules(client, untagged_days=3)
    assert RetentionService(registry).plan("team/app") == []
    clock.advance(days=4)
    assert [(e.digest, e.reason) for e in RetentionService(registry).plan("team/app")] == [(loose, "untagged")]
    jobs.collect_garbage(registry)
    assert client.get(f"/v2/team/app/manifests/{loose}").status_code == 404
    assert client.get(f"/v2/team/app/manifests/{child}").status_code == 200
    restored = client.post("/dockless/v1/team/app/tags/back/restore", body=json.dumps({"digest": loose}),
                           headers={"Content-Type": "application/json"})
    assert restored.status_code == 201  # expired like a DELETE by digest: restorable within the window


def test_a_signed_image_never_expires(client, push, registry, clock):
    digests = pushed(push, clock, "signed", "plain", "new")
    Signature(f"team/app@{digests['signed']}", "sig", content=b"x", identity="x", created_at=clock()).save()
    rules(client, keep_last=1)
    assert [e.tag for e in RetentionService(registry).plan("team/app")] == ["plain"]


def test_a_repositorys_rules_replace_its_namespaces(client, push, registry, clock):
    pushed(push, clock, "a", "b", "c")
    rules(client, "team", keep_last=1)
    assert len(RetentionService(registry).plan("team/app")) == 2
    rules(client, "team/app", keep_last=2)
    assert [e.tag for e in RetentionService(registry).plan("team/app")] == ["a"]
    shown = json.loads(client.get("/dockless/admin/v1/settings?resource=team/app").body)
    assert shown["applied"]["retention"]["keep_last"] == 2 and shown["changes"]["retention"]["by"] == "admin"


def test_the_preview_says_what_would_go_and_the_bytes_only_it_needs(client, push, registry, clock):
    clock.advance(hours=1)
    push.image("team/app", "old", layers=[b"shared", b"only old" * 10])
    clock.advance(hours=1)
    push.image("team/app", "new", layers=[b"shared", b"only new"])
    rules(client, keep_last=1)
    answer = client.get("/dockless/admin/v1/retention?resource=team")
    assert answer.status_code == 200, answer.body
    preview = json.loads(answer.body)
    assert [(e["repository"], e["tag"]) for e in preview["expiring"]] == [("team/app", "old")]
    assert preview["bytes"] == len(b"only old" * 10)
    assert tags(client) == ["new", "old"]  # a preview changes nothing


@pytest.mark.parametrize("retention", [{"keep_last": -1}, {"keep_last": "20"}, {"keep_days": True},
                                       {"untagged": 3}, {"exempt": "v*"}, {"exempt": ["v/1"]}, []])
def test_bad_rules_are_refused_and_change_nothing(client, state, retention):
    before = state()
    response = client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team", "retention": retention}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "INVALID"
    assert state() == before


def test_a_tag_moved_since_the_plan_is_not_expired(client, push, registry, clock):
    pushed(push, clock, "a", "b")
    rules(client, keep_last=1)
    service = RetentionService(registry)
    [expiry] = service.plan("team/app")
    push.image("team/app", "a", layers=[b"moved meanwhile"])
    assert service._expire(expiry) is False
    assert "a" in tags(client) and digest_of(b"x") != expiry.digest


def test_cosigns_tags_are_not_counted_and_keep_their_image_from_expiring(client, push, registry, clock):
    from tests.api.test_cosign import payload, push_signatures
    _, signed = push.image("team/app", "old", layers=[b"old and signed"])
    signed_payload = payload(signed, "registry.example.test/team/app")
    push_signatures(push, "team/app", signed, (signed_payload, b"a signature"))
    clock.advance(days=1)
    push.image("team/app", "new", layers=[b"new"])
    answer = client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team", "retention": {"keep_last": 1}}),
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.body
    assert RetentionService(registry).plan("team/app") == []  # "old" is cosign-signed; its .sig tag is no tag
    clock.advance(days=1)
    push.image("team/app", "newer", layers=[b"newer"])
    assert [(e.tag, e.reason) for e in RetentionService(registry).plan("team/app")] == [("new", "keep rules")]
