"""The audit trail: each action leaves exactly the expected events, a refused change leaves none,
queries by namespace, repository and actor, and the S3 export round-trips."""
import base64
import datetime
import json

import boto3
import pytest

from chalicelib.metadata.models import AuditEvent
from chalicelib.routes import jobs
from chalicelib.routes.jobs import export_audit
from tests.fixtures import digest_of

JSON = {"Content-Type": "application/json"}


def events(since=None):
    """(action, actor, repository, reference, outcome) of the events since a mark, sorted: the
    test clock stands still, so events of one test share a time and have no order of their own."""
    found = {e.at: e for e in AuditEvent.scan()}
    new = [e for at, e in found.items() if at not in (since or set())]
    return sorted((e.action, e.actor, e.repository or "", e.reference or "", e.outcome) for e in new)


@pytest.fixture
def mark():
    return lambda: {e.at for e in AuditEvent.scan()}


def test_manifest_push_and_tag_move_are_recorded_with_their_change(client, push, mark):
    before = mark()
    _, first = push.image("team/app", "v1", layers=(b"one",))
    _, second = push.image("team/app", "v1", layers=(b"two",))
    recorded = events(before)
    assert ("manifest.push", "admin", "team/app", "v1", "allowed") in recorded
    moves = [e for e in AuditEvent.scan() if e.action == "tag.move"]
    assert len(moves) == 1
    assert json.loads(moves[0].detail) == {"previous": first, "digest": second}
    pushed = [e for e in AuditEvent.scan() if e.action == "manifest.push"][0]
    assert pushed.request_id and pushed.request_id != "-"
    assert pushed.source_ip == "127.0.0.1"


def test_a_refused_push_writes_no_event(client, mark):
    before = mark()
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "x", "digest": digest_of(b"none"), "size": 4}, "layers": []})
    response = client.put("/v2/team/app/manifests/v1", body=body,
                          headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert response.status_code == 400
    assert mark() == before


def test_pull_delete_and_mount_are_recorded(client, push, mark):
    _, digest = push.image("team/app", "v1")
    layer = push.blob("team/app", b"shared")["digest"]
    before = mark()
    client.get("/v2/team/app/manifests/v1")
    client.post(f"/v2/team/copy/blobs/uploads/?mount={layer}&from=team/app")
    client.delete("/v2/team/copy/blobs/" + layer)
    client.delete("/v2/team/app/manifests/v1")
    client.delete(f"/v2/team/app/manifests/{digest}")
    assert [e[0] for e in events(before)] == sorted(["manifest.pull", "blob.mount", "blob.delete", "tag.delete",
                                                     "manifest.delete"])
    served = client.get("/dockless/admin/v1/audit?repository=team/copy").json_body["events"]
    assert sorted((e["action"], e["repository"], e["reference"], e["detail"]) for e in served) == [
        ("blob.delete", "team/copy", layer, None), ("blob.mount", "team/copy", layer, {"source": "team/app"})]


def basic(user, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def test_authentication_token_issue_and_denial(client, anonymous, mark):
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "eve"}), headers=JSON)
    secret = client.post("/dockless/admin/v1/principals/eve/tokens", body="{}", headers=JSON).json_body["token"]
    before = mark()
    anonymous.get("/token?service=dockless&scope=repository:team/app:pull", headers=basic("eve", secret))
    anonymous.get("/token?service=dockless", headers=basic("eve", secret[:-1] + ("B" if secret.endswith("A") else "A")))
    token = anonymous.get("/token?service=dockless&scope=repository:team/app:pull",
                          headers=basic("eve", secret)).json_body["token"]
    anonymous.post("/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    recorded = events(before)
    # A token request writes one event: the token issued (with how the caller proved itself), or
    # the failed authentication.
    assert recorded == sorted([("token.issue", "eve", "", "", "allowed"), ("authenticate", "eve", "", "", "denied"),
                               ("token.issue", "eve", "", "", "allowed"),
                               ("access.denied", "eve", "team/app", "", "denied")])


def test_an_event_as_served_names_every_field_and_the_credential_used(client, anonymous):
    """The fields README lists, by these names (the API and the daily export serve the same)."""
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "eve"}), headers=JSON)
    created = client.post("/dockless/admin/v1/principals/eve/tokens", body="{}", headers=JSON).json_body
    token = anonymous.get("/token?service=dockless&scope=repository:team/app:pull",
                          headers={**basic("eve", created["token"]), "User-Agent": "docker/27.5.1"}).json_body["token"]
    # A request with the token it got is the same credential's.
    anonymous.post("/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    served = client.get("/dockless/admin/v1/audit?actor=eve").json_body["events"]
    assert sorted((e["action"], e["credential_id"], e["user_agent"], e["outcome"]) for e in served) == [
        ("access.denied", created["id"], None, "denied"), ("token.issue", created["id"], "docker/27.5.1", "allowed")]
    assert set(served[-1]) == {"time", "actor", "credential_id", "source_ip", "user_agent", "action", "repository",
                              "reference", "outcome", "request_id", "detail"}
    # The token's creation names whose it is and which it is (its secret never).
    created_events = client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
    assert [e["detail"] for e in created_events if e["action"] == "credential.create"] == [
        {"principal": "eve", "credential": created["id"], "kind": "access", "expires_at": None, "parent": None}]


def test_a_challenge_to_a_request_without_credentials_is_not_recorded(anonymous, mark):
    # Every docker command starts with one: recording them would fill the trail with noise.
    before = mark()
    assert anonymous.get("/v2/team/app/manifests/v1").status_code == 401
    assert anonymous.post("/v2/team/app/blobs/uploads/").status_code == 401
    assert events(before) == []


def test_administration_is_recorded(client, mark):
    before = mark()
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "devs", "kind": "team"}), headers=JSON)
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "bob"}), headers=JSON)
    created = client.post("/dockless/admin/v1/principals/bob/tokens", body="{}", headers=JSON).json_body
    client.put("/dockless/admin/v1/teams/devs/members/bob")
    client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": "team/app", "subject": "team:devs",
                                                             "role": "write"}), headers=JSON)
    client.delete("/dockless/admin/v1/grants?resource=team/app&subject=team:devs")
    client.delete(f"/dockless/admin/v1/tokens/{created['id']}")
    assert [e[0] for e in events(before)] == sorted(["principal.create", "principal.create", "credential.create",
                                                     "team.add", "grant.set", "grant.revoke", "credential.revoke"])
    grants = {e.action: e for e in AuditEvent.scan() if e.action.startswith("grant.")}
    assert [(grants[action].repository, json.loads(grants[action].detail))
            for action in ("grant.set", "grant.revoke")] == [
        ("team/app", {"resource": "team/app", "subject": "team:devs", "role": "write"}),
        ("team/app", {"resource": "team/app", "subject": "team:devs"})]


def test_queries_by_namespace_repository_and_actor(client, push, clock):
    push.image("team/app", "v1")
    push.image("team/web", "v1")
    push.image("other/app", "v1")
    clock.advance(minutes=1)
    by_namespace = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert {e["repository"] for e in by_namespace} == {"team/app", "team/web"}
    assert [e["time"] for e in by_namespace] == sorted(e["time"] for e in by_namespace)
    by_repository = client.get("/dockless/admin/v1/audit?repository=team/web").json_body["events"]
    assert {e["repository"] for e in by_repository} == {"team/web"}
    by_actor = client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
    assert {e["repository"] for e in by_actor} >= {"team/app", "team/web", "other/app"}
    later = client.get("/dockless/admin/v1/audit?namespace=team&since=2027-01-01T00:00:00Z"
                       "&until=2027-01-02T00:00:00Z").json_body["events"]
    assert later == []
    assert client.get("/dockless/admin/v1/audit").status_code == 400


def test_one_actors_events_spread_over_the_shards_and_older_unsharded_ones_are_still_found(client, push, clock):
    """The by_actor index is sharded as the events' own partitions are, so one busy actor (the
    anonymous pulls of a public image) is not one hot partition a day."""
    for number in range(12):
        push.image("team/app", f"v{number}")
    events = [e for e in AuditEvent.scan() if e.actor == "admin"]
    shards = {e.actor_day.rsplit("#", 1)[1] for e in events}
    assert all(e.actor_day.endswith("#" + e.partition.rsplit("#", 1)[1]) for e in events)
    assert len(shards) > 1 and shards <= {"0", "1", "2", "3"}
    legacy = events[0]
    legacy.actor_day = legacy.actor_day.rsplit("#", 1)[0]  # as written before the index was sharded
    legacy.at = legacy.at[:-1] + "x"
    legacy.save()
    clock.advance(minutes=1)
    found = client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
    assert len(found) == len(events) + 1


def exported(day):
    """The day's export as a client of the bucket reads it: its summary and its parts' events, in
    order, each part checked to be JSON lines, oldest first."""
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket="test-bucket", Prefix=f"audit/{day:%Y/%m/%d}/").get("Contents", ())
    names = sorted(item["Key"] for item in listed)
    summary = json.loads(s3.get_object(Bucket="test-bucket", Key=f"audit/{day:%Y/%m/%d}/day.json")["Body"].read())
    assert names == [f"audit/{day:%Y/%m/%d}/day.json",
                     *(f"audit/{day:%Y/%m/%d}/part-{n:05d}.jsonl" for n in range(1, summary["parts"] + 1))]
    lines = []
    for name in names[1:]:
        stored = s3.get_object(Bucket="test-bucket", Key=name)
        assert stored["ContentType"] == "application/x-ndjson"
        body = stored["Body"].read().decode()
        part = [json.loads(line) for line in body.splitlines()]
        assert body == "".join(json.dumps(line, sort_keys=True) + "\n" for line in part)
        assert [e["time"] for e in part] == sorted(e["time"] for e in part)
        lines.extend(part)
    assert summary == {"day": day.isoformat(), "events": len(lines), "parts": len(names) - 1}
    return lines


def test_export_round_trips(client, push, clock, registry):
    push.image("team/app", "v1")
    day = clock().date()
    expected = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    assert export_audit(registry) == 0  # the day is not over
    clock.advance(days=1)
    exported_count = export_audit(registry)
    assert exported_count >= len(expected)
    lines = exported(day)
    assert len(lines) == exported_count
    assert [e for e in lines if e["repository"] and e["repository"].startswith("team/")] == expected


def test_a_lost_read_event_never_fails_the_request(client, push, monkeypatch, caplog):
    push.image("team/app", "v1")

    def broken_write(self, *args, **kwargs):
        raise RuntimeError("DynamoDB unavailable")

    # Every write of an event, alone (save) or in a pull's transaction with its pull time (serialize).
    monkeypatch.setattr(AuditEvent, "save", broken_write)
    monkeypatch.setattr(AuditEvent, "serialize", broken_write)
    response = client.get("/v2/team/app/manifests/v1")
    assert response.status_code == 200
    assert "AUDIT EVENT LOST: manifest.pull team/app v1" in caplog.text


def test_source_address_is_the_client_the_front_door_reports(anonymous, push, registry, monkeypatch):
    import dataclasses

    from chalicelib.backend import use_backend
    from tests.fixtures import admin_token
    push.image("team/app", "v1")
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, trusted_proxy_hops=2)))
    # CloudFront appends the viewer's address, API Gateway then CloudFront's; anything before is the client's word.
    headers = {"X-Forwarded-For": "10.9.9.9, 198.51.100.7, 130.176.0.1",
               "Authorization": "Bearer " + admin_token("/v2/team/app/manifests/v1", registry.clock().timestamp())}
    assert anonymous.get("/v2/team/app/manifests/v1", headers=headers).status_code == 200
    pulls = [e for e in AuditEvent.scan() if e.action == "manifest.pull"]
    assert [e.source_ip for e in pulls] == ["198.51.100.7"]


def test_an_export_holds_exactly_its_days_events_in_order_as_json_lines(client, push, clock, registry):
    clock.advance(hours=23)
    push.image("team/app", "before")          # the day before, 23:00
    clock.advance(hours=2)
    day = clock().date()
    push.image("team/app", "first")           # the day, 01:00
    clock.advance(hours=21)
    push.image("team/app", "second")          # the day, 22:00
    clock.advance(hours=2)
    push.image("team/app", "after")           # the next day, 00:00 exactly
    expected = [e for e in client.get(f"/dockless/admin/v1/audit?namespace=team&since={day}T00:00:00Z"
                                      f"&until={day}T23:59:59Z").json_body["events"]]
    assert export_audit(registry) == len(expected) > 0  # the first export starts with yesterday
    lines = exported(day)
    assert {e["reference"] for e in lines if e["action"] == "manifest.push"} == {"first", "second"}
    assert lines == expected
    assert export_audit(registry) == 0  # each day once
    assert exported(day) == expected


def test_an_export_split_over_many_runs_and_failures_holds_each_event_once(client, push, clock, registry,
                                                                            monkeypatch):
    from chalicelib.metadata import audit, leases
    day = clock().date()
    assert export_audit(registry) == 0  # the first export: yesterday, when nothing happened
    assert exported(day - datetime.timedelta(days=1)) == []
    for n in range(6):
        push.image("team/app", f"v{n}")
    expected = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    clock.advance(days=3)  # three days to catch up with, two of them empty
    monkeypatch.setattr(jobs, "WORK_SHARE", 0)  # each run reads one item, then stops
    monkeypatch.setattr(leases, "PAGE_ITEMS", 3)
    monkeypatch.setattr(audit, "EXPORT_PART_EVENTS", 4)
    keep, calls = leases.Lease.keep, []

    def ended_now_and_then(lease, cursor):  # a run ended by its timeout after writing, before saving
        calls.append(cursor)
        if len(calls) % 3 == 0:
            raise TimeoutError("Lambda's timeout")
        keep(lease, cursor)
    monkeypatch.setattr(leases.Lease, "keep", ended_now_and_then)
    for runs in range(1, 400):
        try:
            export_audit(registry)
        except TimeoutError:
            clock.advance(seconds=jobs.RUN_SECONDS + leases.LEASE_MARGIN_SECONDS)  # given back, as a test's run is
        found = boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket="test-bucket", Prefix="audit/").get("Contents", ())
        if sum(item["Key"].endswith("day.json") for item in found) == 1 + 3:
            break
    lines = exported(day)
    assert runs > 10 and len(lines) > 4  # split over runs, and over parts
    assert sorted(e["request_id"] + e["time"] + e["action"] for e in lines) == sorted(
        {e["request_id"] + e["time"] + e["action"] for e in lines})  # no event twice
    def same_order(events):  # the test clock stands still: events of one time have no order of their own
        return sorted(events, key=lambda e: json.dumps(e, sort_keys=True))
    assert same_order(e for e in lines if e["repository"] == "team/app") == same_order(expected)
    for later in (day + datetime.timedelta(days=1), day + datetime.timedelta(days=2)):
        assert exported(later) == []
