"""Storage quotas (chalicelib/lifecycle/quota.py): what a namespace stores (distinct blobs, each once), every
way a push is refused past the quota with nothing left of it, the count going down as links go,
and the 80 % and 100 % alerts. tests/e2e/test_quota.py pushes with docker."""
import json
import logging

import pytest
import requests
from pynamodb.exceptions import TransactWriteError

from chalicelib.lifecycle import quota
from chalicelib.lifecycle.gc import GarbageCollector
from chalicelib.metadata.models import BlobLink, NamespaceStorage, failed_conditions, transaction
from tests.api.test_direct import complete, open_direct, start
from tests.fixtures import digest_of, error_code

CONFIG = json.dumps({"architecture": "amd64", "os": "linux"}).encode()


def set_quota(client, namespace, limit):
    response = client.put(f"/dockless/admin/v1/quotas/{namespace}", body=json.dumps({"bytes": limit}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    return response.json_body


def stored(client, namespace):
    response = client.get(f"/dockless/admin/v1/quotas/{namespace}")
    assert response.status_code == 200, response.body
    return response.json_body["stored_bytes"]


def refusal(response, message):
    """The refusal docker prints as "denied: <message>"."""
    assert response.status_code == 403, response.body
    assert error_code(response) == "DENIED"
    assert json.loads(response.body)["errors"][0]["message"] == message


def events(client, namespace, action):
    response = client.get(f"/dockless/admin/v1/audit?namespace={namespace}")
    return [e for e in response.json_body["events"] if e["action"] == action]


def test_a_namespace_stores_each_distinct_blob_once(client, push):
    push.image("team/app", "1", layers=(b"a" * 1000, b"b" * 2000))
    push.image("team/other", "1", layers=(b"a" * 1000, b"c" * 300))  # shares a layer and the config
    push.image("elsewhere/app", "1", layers=(b"a" * 1000,))
    assert stored(client, "team") == 1000 + 2000 + 300 + len(CONFIG)
    assert stored(client, "elsewhere") == 1000 + len(CONFIG)
    assert stored(client, "nobody") == 0


def test_a_blob_past_the_quota_is_refused_and_nothing_of_it_remains(client, push, state):
    push.image("team/app", "1", layers=(b"a" * 1000,))
    set_quota(client, "team", 1000 + len(CONFIG) + 500)
    before = state()
    data = b"x" * 501
    # Monolithic.
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest_of(data)}", body=data)
    refusal(response, "quota exceeded for team: 1.5 KiB of 1.5 KiB; delete images or ask an admin")
    assert json.loads(response.body)["errors"][0]["detail"] == {
        "namespace": "team", "bytes": 1000 + len(CONFIG) + 501, "quota": 1000 + len(CONFIG) + 500}
    # Chunked: the completion is refused before the chunks are copied, and the session goes.
    upload = client.post("/v2/team/app/blobs/uploads/")
    location = upload.headers["Location"].split("localhost:5000", 1)[-1]
    assert client.patch(location, body=data[:300]).status_code == 202
    refusal(client.put(f"{location}?digest={digest_of(data)}", body=data[300:]),
            "quota exceeded for team: 1.5 KiB of 1.5 KiB; delete images or ask an admin")
    assert client.get(location).status_code == 404
    # Direct: refused when it states its size, before a byte is sent.
    upload_id = start(client)
    refusal(open_direct(client, upload_id, digest_of(data), len(data)),
            "quota exceeded for team: 1.5 KiB of 1.5 KiB; delete images or ask an admin")
    assert client.get(f"/v2/team/app/blobs/uploads/{upload_id}").status_code == 404
    assert state() == before
    # Exactly to the quota is fine.
    push.blob("team/app", data[:500])
    assert stored(client, "team") == 1000 + len(CONFIG) + 500


def test_a_blob_the_namespace_stores_already_costs_nothing(client, push):
    push.image("team/app", "1", layers=(b"a" * 1000,))
    set_quota(client, "team", stored(client, "team"))
    push.image("team/copy", "1", layers=(b"a" * 1000,))  # uploaded again into another repository
    mounted = client.post(f"/v2/team/mounted/blobs/uploads/?mount={digest_of(b'a' * 1000)}&from=team/app")
    assert mounted.status_code == 201
    assert stored(client, "team") == 1000 + len(CONFIG)


def test_a_mount_past_the_quota_is_refused(client, push, state):
    push.image("elsewhere/app", "1", layers=(b"m" * 800,))
    set_quota(client, "team", 500)
    before = state()
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest_of(b'm' * 800)}&from=elsewhere/app")
    refusal(response, "quota exceeded for team: 800 B of 500 B; delete images or ask an admin")
    assert state() == before


def test_a_direct_upload_refused_at_completion_leaves_nothing(client, push, state):
    """The room was there when the upload started and gone when it completed (another push, into
    another repository of the namespace, took it: that push keeps what it has)."""
    set_quota(client, "team", 1000)
    data = b"d" * 700
    upload_id = start(client)
    plan = open_direct(client, upload_id, digest_of(data), len(data)).json_body
    assert requests.put(plan["url"], data=data, headers=plan["headers"]).status_code == 200
    push.blob("team/other", b"e" * 400)
    before_keys = state()[1]
    refusal(complete(client, upload_id, digest_of(data)),
            "quota exceeded for team: 1.1 KiB of 1000 B; delete images or ask an admin")
    items, keys = state()
    assert [key for key in keys if key not in before_keys] == []
    assert f"blobs/direct/{upload_id}" not in keys
    assert stored(client, "team") == 400
    assert client.head(f"/v2/team/app/blobs/{digest_of(data)}").status_code == 404


def test_a_manifest_is_refused_while_the_namespace_stores_more_than_its_quota(client, push, state):
    body, _ = push.image("team/app", "1", layers=(b"a" * 1000,))
    set_quota(client, "team", 500)  # lowered below what it stores
    before = state()
    response = push.manifest("team/app", "2", body)
    refusal(response, "quota exceeded for team: 1 KiB of 500 B; delete images or ask an admin")
    assert state() == before
    assert client.get("/v2/team/app/manifests/2").status_code == 404
    set_quota(client, "team", None)
    assert push.manifest("team/app", "2", body).status_code == 201


def test_the_count_goes_down_with_the_last_link_of_the_namespace(client, push):
    shared, alone = b"s" * 1000, b"o" * 300
    push.blob("team/app", shared)
    push.blob("team/other", shared)
    push.blob("team/app", alone)
    assert stored(client, "team") == 1300
    assert client.delete(f"/v2/team/app/blobs/{digest_of(shared)}").status_code == 202
    assert stored(client, "team") == 1300  # team/other still links it
    assert client.delete(f"/v2/team/other/blobs/{digest_of(shared)}").status_code == 202
    assert stored(client, "team") == 300
    assert client.delete(f"/v2/team/app/blobs/{digest_of(alone)}").status_code == 202
    assert client.delete(f"/v2/team/app/blobs/{digest_of(alone)}").status_code == 404
    assert stored(client, "team") == 0


def test_garbage_collection_frees_quota_and_usage_says_how_much(client, push, registry, clock):
    gone_body, _ = push.image("team/app", "v1", layers=(b"only in v1" * 100,))
    push.image("team/app", "v2", layers=(b"kept",))
    set_quota(client, "team", 2000)
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    clock.advance(days=15)
    GarbageCollector(registry).run()
    clock.advance(hours=1, minutes=1)
    GarbageCollector(registry).run()
    assert stored(client, "team") == len(b"kept") + len(CONFIG)
    report = client.get("/dockless/admin/v1/usage").json_body
    (team,) = report["namespaces"]
    assert team == {"namespace": "team", "stored_bytes": 4 + len(CONFIG), "quota_bytes": 2000,
                    "used_percent": round((4 + len(CONFIG)) * 100 / 2000, 1), "gc_freed_bytes": 1000}
    bucket = report["bucket"]
    assert bucket["gc_runs"] == 2
    # The first run only found candidates; the second deleted the layer and the manifest's bytes.
    assert bucket["gc_freed_bytes"] == 1000 + len(gone_body)
    assert bucket["bytes_before"] - bucket["bytes_after"] == bucket["gc_freed_bytes"]


def test_reaching_80_and_100_percent_raises_an_alert_once_each(client, push, caplog):
    caplog.set_level(logging.INFO, logger="dockless.events")
    set_quota(client, "team", 1000)
    push.blob("team/app", b"1" * 700)
    assert events(client, "team", "quota.warning") == []
    push.blob("team/app", b"2" * 100)
    push.blob("team/app", b"3" * 50)
    (warning,) = events(client, "team", "quota.warning")
    assert warning["detail"] == {"bytes": 800, "quota": 1000, "percent": 80.0}
    push.blob("team/app", b"4" * 150)
    (reached,) = events(client, "team", "quota.reached")
    assert reached["detail"] == {"bytes": 1000, "quota": 1000, "percent": 100.0}
    metrics = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.events"]
    assert [(m["Threshold"], m["QuotaAlerts"], m["namespace"]) for m in metrics] == [("80", 1, "team"), ("100", 1, "team")]
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "QuotaAlerts", "Unit": "Count"}]
    # Below the level again (images deleted), then past it: raised again.
    for data in (b"2" * 100, b"3" * 50, b"4" * 150):
        assert client.delete(f"/v2/team/app/blobs/{digest_of(data)}").status_code == 202
    push.blob("team/app", b"5" * 100)
    assert len(events(client, "team", "quota.warning")) == 2


def test_setting_a_quota_below_what_is_stored_alerts_at_once(client, push):
    push.blob("team/app", b"x" * 900)
    set_quota(client, "team", 1000)
    assert [e["detail"]["percent"] for e in events(client, "team", "quota.warning")] == [90.0]
    (change,) = events(client, "team", "quota.set")
    assert change["detail"] == {"bytes": 900, "quota": 1000}


def test_a_link_that_read_a_stale_count_reads_again_and_counts_once(client, push, registry):
    """Two pushes of one new blob into two repositories race: the second one's read says the
    namespace does not store it yet; its transaction's condition fails, it reads again, and the
    blob counts once."""
    data = b"r" * 1000
    stale = quota.standing("team/one", digest_of(data))
    push.blob("team/one", data)
    link = BlobLink("team/two", digest_of(data), size=1000, location=BlobLink.get("team/one", digest_of(data)).location,
                    verified=True, linked_at=registry.clock())
    quota.write_link(registry, link, lambda txn: None, known=stale)
    assert stored(client, "team") == 1000
    assert quota.standing("team/two", digest_of(data)).entry.repositories == {"team/one", "team/two"}
    assert quota.delete_link(registry, BlobLink.get("team/one", digest_of(data))) == 0
    two = BlobLink.get("team/two", digest_of(data))
    assert quota.delete_link(registry, two, condition=BlobLink.doomed_at.exists()) is None  # not doomed: kept
    assert quota.delete_link(registry, two) == 1000
    assert quota.delete_link(registry, two) is None  # gone already: counted once
    assert stored(client, "team") == 0


def test_a_quota_is_a_positive_number_of_bytes(client, state):
    before = state()
    for body in ({}, {"bytes": 0}, {"bytes": -5}, {"bytes": "10GiB"}, {"bytes": True}, {"bytes": 1.5}):
        response = client.put("/dockless/admin/v1/quotas/team", body=json.dumps(body),
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and error_code(response) == "INVALID", body
    assert state() == before


def catalog(client):
    return client.get("/v2/_catalog").json_body["repositories"]


def test_a_first_push_refused_for_the_quota_leaves_no_repository_and_no_bytes(client, push, state):
    set_quota(client, "capped", 1000)
    before = state()
    push.blob("capped/new", b"s" * 300)  # the push's first layer fits
    assert "capped/new" in catalog(client) and stored(client, "capped") == 300
    data = b"b" * 900
    refusal(client.post(f"/v2/capped/new/blobs/uploads/?digest={digest_of(data)}", body=data),
            "quota exceeded for capped: 1.2 KiB of 1000 B; delete images or ask an admin")
    # Nothing of the refused push: not in the catalog, the console or usage, no bytes counted.
    assert "capped/new" not in catalog(client)
    assert stored(client, "capped") == 0
    after = state()[0]
    assert {k: v for k, v in after.items() if k != "NamespaceStorage"} == \
        {k: v for k, v in before[0].items() if k != "NamespaceStorage"}  # the total reads 0 now, not absent
    usage = client.get("/dockless/admin/v1/usage").json_body
    assert "capped/new" not in json.dumps(usage)


def test_a_push_refused_for_the_quota_leaves_an_existing_repositorys_images_alone(client, push, clock):
    push.image("capped/app", "1", layers=(b"a" * 400,))
    set_quota(client, "capped", 400 + len(CONFIG) + 300)
    clock.advance(days=1)  # the first image's links are older than an upload session lives
    push.blob("capped/app", b"n" * 250)  # the new push's first layer
    data = b"m" * 200
    refusal(client.post(f"/v2/capped/app/blobs/uploads/?digest={digest_of(data)}", body=data),
            "quota exceeded for capped: 890 B of 740 B; delete images or ask an admin")
    assert stored(client, "capped") == 400 + len(CONFIG)
    assert client.head(f"/v2/capped/app/blobs/{digest_of(b'n' * 250)}").status_code == 404
    assert client.get("/v2/capped/app/manifests/1").status_code == 200
    assert client.head(f"/v2/capped/app/blobs/{digest_of(b'a' * 400)}").status_code == 200
    assert "capped/app" in catalog(client)


def test_a_refusal_stands_when_clearing_up_after_it_fails(client, push, monkeypatch):
    """The clean-up after a quota refusal is best effort: whatever it meets, the caller gets the
    quota's refusal, not another error."""
    from chalicelib.lifecycle import gc
    set_quota(client, "capped", 100)

    def unreadable(*args, **kwargs):
        raise RuntimeError("a manifest the clean-up cannot read")
    monkeypatch.setattr(gc, "blobs_of", unreadable)
    data = b"q" * 200
    refusal(client.post(f"/v2/capped/app/blobs/uploads/?digest={digest_of(data)}", body=data),
            "quota exceeded for capped: 200 B of 100 B; delete images or ask an admin")


def _counts(namespace):
    """What the namespace's total item and each shard count, as stored."""
    from chalicelib.metadata.models import NamespaceStorage
    found = {item.entry: int(item.bytes or 0) for item in NamespaceStorage.query(namespace)
             if item.entry.startswith("#")}
    return found.pop("#", None), found


def test_without_a_quota_new_blobs_are_counted_in_shards_not_in_one_item(client, push, monkeypatch):
    """No blob link of a namespace without a quota writes its total item: the bytes go to the
    digest's shard, so concurrent pushes of new blobs into one namespace do not all name one item."""
    from chalicelib.metadata import models
    named = []
    save = models.TransactWrite.update

    def recorded(txn, model, *args, **kwargs):
        named.append(model.entry if isinstance(model, models.NamespaceStorage) else None)
        return save(txn, model, *args, **kwargs)

    monkeypatch.setattr(models.TransactWrite, "update", recorded)
    layers = [bytes([n]) * (100 + n) for n in range(12)]
    push.image("team/app", "1", layers=layers)
    total, shards = _counts("team")
    expected = sum(map(len, layers)) + len(CONFIG)
    assert "#" not in named and total is None
    assert sum(shards.values()) == expected == stored(client, "team")
    assert len(shards) > 1 and set(shards) <= {f"#{n}" for n in range(quota.TOTAL_SHARDS)}
    assert client.get("/dockless/admin/v1/usage").json_body["namespaces"][0]["stored_bytes"] == expected


def test_under_a_quota_the_shards_count_toward_it_and_unlinks_take_from_them(client, push, state):
    """Bytes counted in shards before a quota count against it; a blob linked under the quota is
    counted in the total item (one conditional write decides the last room), and its unlink takes
    its bytes from its shard: the sum stays what the namespace stores."""
    push.image("team/app", "1", layers=(b"a" * 1000,))
    set_quota(client, "team", 1000 + len(CONFIG) + 600)
    push.image("team/app", "2", layers=(b"u" * 500,))  # room: its new layer counted in the total
    total, _ = _counts("team")
    assert total == 500
    before = state()
    data = b"x" * 101  # 1000 + config + 500 + 101 > quota: the shards' bytes counted
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest_of(data)}", body=data)
    refusal(response, "quota exceeded for team: 1.6 KiB of 1.6 KiB; delete images or ask an admin")
    assert state() == before
    assert client.delete(f"/v2/team/app/blobs/{digest_of(b'u' * 500)}").status_code == 202
    total, shards = _counts("team")
    assert total == 500 and sum(shards.values()) == 1000 + len(CONFIG) - 500  # a shard below zero is fine
    assert stored(client, "team") == 1000 + len(CONFIG)
    assert push.blob("team/app", data)["size"] == 101  # room again


def test_bytes_an_older_release_counted_in_the_total_item_still_count(client, push):
    from chalicelib.metadata.models import NamespaceStorage
    push.image("team/app", "1", layers=(b"a" * 1000,))
    NamespaceStorage("team", "#").update(actions=[NamespaceStorage.bytes.add(700)])  # as counted before the shards
    assert stored(client, "team") == 1000 + len(CONFIG) + 700


def test_a_refusals_reasons_name_the_writes_in_the_order_they_were_added(registry):
    """pynamodb sends condition checks first, then deletes, puts and updates; delete_link names
    its link's refusal by its place, so the reasons come back in the order the writes were added."""
    with pytest.raises(TransactWriteError) as raised:
        with transaction() as txn:
            txn.update(NamespaceStorage("ns", "a"), actions=[NamespaceStorage.bytes.add(1)])
            txn.delete(NamespaceStorage("ns", "b"), condition=NamespaceStorage.entry.exists())  # refused
            txn.condition_check(NamespaceStorage, "ns", "c", condition=NamespaceStorage.entry.does_not_exist())
            txn.condition_check(NamespaceStorage, "ns", "d", condition=NamespaceStorage.entry.does_not_exist())
    assert failed_conditions(raised.value) == [1]
    assert NamespaceStorage.count("ns") == 0  # nothing of it written
