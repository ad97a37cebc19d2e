"""Scheduled jobs run alone and go on where the last run stopped (chalicelib/metadata/leases.py):
a held lease keeps every other run out until it is given back or has run out, a run that lost its
lease cannot write, and a scan split over many runs reads every item exactly once."""
import json

import pytest

from chalicelib.metadata import leases
from chalicelib.metadata.leases import Lease, LeaseLost, Scan
from chalicelib.metadata.models import Grant, JobState
from chalicelib.routes import jobs
from tests.fixtures import error_code


def test_a_held_lease_keeps_every_other_run_out_until_it_is_given_back(registry):
    first = Lease.take("job", 30, registry.clock)
    assert first is not None and first.cursor is None
    assert Lease.take("job", 30, registry.clock) is None
    assert Lease.take("another job", 30, registry.clock) is not None
    first.keep({"after": "x"})
    first.give_back()
    second = Lease.take("job", 30, registry.clock)
    assert second is not None and second.holder != first.holder
    assert second.cursor == {"after": "x"}  # the cursor outlives the run that saved it


def test_a_run_ended_without_giving_back_is_followed_once_its_lease_ran_out(registry, clock):
    ended = Lease.take("job", 30, registry.clock)  # Lambda ends it at its timeout: no give_back
    clock.advance(seconds=30 + leases.LEASE_MARGIN_SECONDS - 1)
    assert Lease.take("job", 30, registry.clock) is None
    clock.advance(seconds=2)
    follower = Lease.take("job", 30, registry.clock)
    assert follower is not None
    with pytest.raises(LeaseLost):  # the ended run, had it gone on, could no longer write
        ended.keep({"after": "stale"})
    with pytest.raises(LeaseLost):
        ended.give_back()
    assert JobState.get("job").holder == follower.holder and JobState.get("job").cursor is None


def test_keeping_the_lease_extends_it(registry, clock):
    lease = Lease.take("job", 30, registry.clock)
    clock.advance(seconds=80)
    lease.keep(None)
    clock.advance(seconds=80)  # 160 s after it was taken, 80 after it was kept
    assert Lease.take("job", 30, registry.clock) is None


def test_a_scan_split_over_runs_reads_every_item_once(registry, monkeypatch):
    for n in range(25):
        Grant(f"team{n:02d}", "user:someone", role="read", granted_at=registry.clock()).save()
    monkeypatch.setattr(leases, "PAGE_ITEMS", 4)
    seen, cursor, runs = [], None, 0
    while True:
        runs += 1
        scan = Scan(Grant, cursor, 0)  # no time: each run reads one item
        seen.extend(grant.resource for grant in scan)
        cursor = scan.cursor
        if scan.finished:
            break
        assert runs < 100
    assert sorted(seen) == [f"team{n:02d}" for n in range(25)]
    assert len(seen) == 25 and runs >= 25
    whole = Scan(Grant, None, 60, Grant.resource.startswith("team1"))
    assert sorted(grant.resource for grant in whole) == [f"team{n}" for n in range(10, 20)]
    assert whole.finished and whole.cursor is None


def test_each_scheduled_job_does_nothing_while_another_run_holds_it(registry, push, clock, state):
    push.image("team/app", "v1")
    clock.advance(days=1)
    held = {name: Lease.take(name, 900, registry.clock) for name in jobs.JOBS}
    before = state()
    assert jobs.clean_expired_uploads(registry) == 0
    assert jobs.verify_unproven_blobs(registry) == 0
    assert jobs.export_audit(registry) == 0
    assert jobs.scheduled_collect_garbage(registry) is None
    assert state() == before
    for lease in held.values():
        lease.give_back()
    assert jobs.export_audit(registry) > 0


def test_an_admin_gc_run_is_refused_while_one_is_under_way(client, push, registry, clock, state):
    push.image("team/app", "v1")
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    clock.advance(days=30)
    running = Lease.take("collect_garbage", 900, registry.clock)
    before = state()
    refused = client.post("/dockless/admin/v1/gc", body="{}", headers={"Content-Type": "application/json"})
    assert refused.status_code == 409 and error_code(refused) == "CONFLICT"
    assert "garbage collection is running" in json.loads(refused.body)["errors"][0]["detail"]
    assert state() == before
    dry = client.post("/dockless/admin/v1/gc", body='{"dry_run": true}', headers={"Content-Type": "application/json"})
    assert dry.status_code == 200 and json.loads(dry.body)["manifests_doomed"] == 1  # a dry run reads only
    running.give_back()
    ran = client.post("/dockless/admin/v1/gc", body="{}", headers={"Content-Type": "application/json"})
    assert ran.status_code == 200 and json.loads(ran.body)["manifests_doomed"] == 1
    assert JobState.get("collect_garbage").holder is None  # given back when the run ended
