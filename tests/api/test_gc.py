"""Garbage collection, in process with the test clock: what goes (after the time-machine window, in
two runs a grace period apart), what stays (tags, history, index children, referrers, young
uploads), and every path by which a push relies on something a run has doomed.
tests/e2e/test_gc_race.py interleaves it with pushes at random on a real stack."""
import json

import boto3
import pytest

from chalicelib.lifecycle.gc import GarbageCollector
from chalicelib.metadata.models import BlobLink, GcCandidate, Manifest
from tests.fixtures import OCI_INDEX, OCI_MANIFEST, digest_of, error_code

GRACE_AND_MORE = {"hours": 1, "minutes": 1}


def objects():
    """Every object of the bucket and its size."""
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="test-bucket").get("Contents", ())
    return {item["Key"]: item["Size"] for item in listed}


def run(registry, **options):
    return GarbageCollector(registry, dry_run=options.pop("dry_run", False)).run(**options)


def pulls(client, repo, reference, body):
    """The manifest comes back byte-exact and every blob it names with its digest."""
    response = client.get(f"/v2/{repo}/manifests/{reference}")
    assert response.status_code == 200, response.body
    assert response.body == body
    document = json.loads(body)
    for descriptor in [document["config"], *document["layers"]]:
        blob = client.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
        assert blob.status_code in (200, 307), blob.body
        location = blob.headers.get("Location")
        data = blob.body if location is None else _fetch(location)
        assert digest_of(data) == descriptor["digest"]


def _fetch(url):
    import requests
    return requests.get(url, timeout=30).content


def two_runs(registry, clock):
    """Past the window, then the run that dooms and the run a grace period later that deletes."""
    clock.advance(days=15)
    first = run(registry)
    clock.advance(**GRACE_AND_MORE)
    return first, run(registry)


def test_an_untagged_image_leaves_the_bucket_in_two_runs_after_its_window(client, push, registry, clock):
    _, gone = push.image("team/app", "v1", layers=[b"only in v1" * 100, b"shared layer"])
    kept_body, _ = push.image("team/app", "v2", layers=[b"only in v2", b"shared layer"])
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    before = objects()
    assert run(registry)["manifests_doomed"] == 0  # inside the time-machine window
    first, second = two_runs(registry, clock)
    assert (first["manifests_doomed"], first["links_doomed"], first["objects_candidates"]) == (1, 1, 2)
    assert (second["manifests_deleted"], second["links_deleted"], second["objects_deleted"]) == (1, 1, 2)
    after = objects()
    removed = {f"blobs/sha256/{digest_of(b'only in v1' * 100)[7:]}", f"manifests/sha256/{gone[7:]}"}
    assert set(before) - set(after) == removed and set(after) <= set(before)
    assert second["bytes_deleted"] == sum(before[key] for key in removed) == sum(before.values()) - sum(after.values())
    assert client.get(f"/v2/team/app/manifests/{gone}").status_code == 404
    pulls(client, "team/app", "v2", kept_body)
    assert run(registry)["objects_candidates"] == 0  # nothing unreferenced is left
    for key in ("dynamodb_read_units", "dynamodb_write_units", "s3_requests"):
        assert second[key] > 0


def test_a_dry_run_changes_nothing_and_says_what_would_go(client, push, registry, clock, state):
    _, gone = push.image("team/app", "v1", layers=[b"old"])
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    clock.advance(days=15)
    run(registry)
    clock.advance(**GRACE_AND_MORE)
    before = state()
    report = run(registry, dry_run=True)
    assert f"team/app@{gone}" in report["would_delete"]
    assert state() == before


def test_what_tags_history_indexes_and_referrers_keep_stays(client, push, registry, clock, state):
    child_body, child = push.image("team/app", None, layers=[b"child layer"])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}).encode()
    assert push.manifest("team/app", "multi", index).status_code == 201
    referrer_body, _ = push.image("team/app", None, layers=[b"sbom"],
                                  subject={"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)})
    clock.advance(days=20)
    _, moved_away = push.image("team/app", "prod", layers=[b"prod 1"])
    clock.advance(days=1)
    push.image("team/app", "prod", layers=[b"prod 2"])
    clock.advance(days=13)  # prod 1 was named 13 days ago; the index, its child and referrer pushed 34
    before = state()
    first = run(registry)
    clock.advance(**GRACE_AND_MORE)
    second = run(registry)
    assert first["manifests_doomed"] == second["manifests_deleted"] == 0
    assert first["links_doomed"] == 0
    assert state()[0]["Manifest"] == before[0]["Manifest"]
    pulls(client, "team/app", child, child_body)
    assert client.get(f"/v2/team/app/manifests/{moved_away}").status_code == 200
    assert client.get(f"/v2/team/app/referrers/{child}").json_body["manifests"][0]["digest"] == digest_of(referrer_body)


def test_a_referrer_goes_with_its_subject(client, push, registry, clock):
    subject_body, subject = push.image("team/app", "v1", layers=[b"app"])
    referrer_body, referrer = push.image("team/app", None, layers=[b"sbom"], subject={
        "mediaType": OCI_MANIFEST, "digest": subject, "size": len(subject_body)})
    assert client.delete(f"/v2/team/app/manifests/{subject}").status_code == 202
    _, second = two_runs(registry, clock)
    assert second["manifests_deleted"] == 2
    assert {m.digest for m in Manifest.query("team/app")} == set()


def test_a_blob_uploaded_for_a_manifest_still_on_its_way_stays(client, push, registry, clock):
    push.blob("team/app", b"uploaded, manifest not yet pushed")
    push.image("team/app", "v1")
    clock.advance(hours=20)  # within an upload session's day (and the grace period after it)
    run(registry)
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["links_deleted"] == 0
    assert BlobLink.count("team/app", BlobLink.digest == digest_of(b"uploaded, manifest not yet pushed")) == 1
    clock.advance(days=2)
    run(registry)
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["links_deleted"] == 1


def test_a_push_that_relies_on_a_doomed_manifest_and_its_blobs_revives_them(client, push, registry, clock):
    body, digest = push.image("team/app", "v1", layers=[b"layer"])
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    clock.advance(days=15)
    assert run(registry)["manifests_doomed"] == 1
    assert push.manifest("team/app", "again", body).status_code == 201
    clock.advance(**GRACE_AND_MORE)
    report = run(registry)
    assert (report["manifests_deleted"], report["links_deleted"], report["objects_deleted"]) == (0, 0, 0)
    pulls(client, "team/app", "again", body)


def test_an_index_pushed_over_doomed_children_revives_them(client, push, registry, clock):
    child_body, child = push.image("team/app", None, layers=[b"child"])
    clock.advance(days=15)
    assert run(registry)["manifests_doomed"] == 1
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_body)}]}).encode()
    assert push.manifest("team/app", "multi", index).status_code == 201
    assert Manifest.get("team/app", child).doomed_at is None
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["manifests_deleted"] == 0
    pulls(client, "team/app", child, child_body)


def test_a_mount_from_a_doomed_link_keeps_the_bytes(client, push, registry, clock):
    _, digest = push.image("team/src", "v1", layers=[b"mounted layer"])
    assert client.delete(f"/v2/team/src/manifests/{digest}").status_code == 202
    clock.advance(days=15)
    assert run(registry)["links_doomed"] == 2  # the layer and the config
    layer = digest_of(b"mounted layer")
    assert BlobLink.get("team/src", layer).doomed_at is not None
    assert client.post(f"/v2/team/dst/blobs/uploads/?mount={layer}&from=team/src").status_code == 201
    clock.advance(**GRACE_AND_MORE)
    run(registry)
    clock.advance(**GRACE_AND_MORE)
    run(registry)
    blob = client.get(f"/v2/team/dst/blobs/{layer}")
    assert blob.status_code == 307 and digest_of(_fetch(blob.headers["Location"])) == layer


def test_an_upload_that_reuses_an_unreferenced_object_claims_it(client, push, registry, clock):
    data = b"unlinked, then uploaded again"
    push.blob("team/a", data)
    assert client.delete(f"/v2/team/a/blobs/{digest_of(data)}").status_code == 202
    clock.advance(days=3)
    assert run(registry)["objects_candidates"] == 1
    push.blob("team/b", data)  # the bytes at the digest's key are reused: claimed first
    assert GcCandidate.count() == 0
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["objects_deleted"] == 0
    assert digest_of(_fetch(client.get(f"/v2/team/b/blobs/{digest_of(data)}").headers["Location"])) == digest_of(data)


def test_an_upload_while_a_run_deletes_the_object_writes_its_own(client, push, registry, clock):
    data = b"being deleted right now"
    push.blob("team/a", data)
    assert client.delete(f"/v2/team/a/blobs/{digest_of(data)}").status_code == 202
    clock.advance(days=3)
    run(registry)
    key = f"blobs/sha256/{digest_of(data)[7:]}"
    GcCandidate.get(key).update(actions=[GcCandidate.deleting.set(True)])  # a run is between its steps
    push.blob("team/b", data)
    link = BlobLink.get("team/b", digest_of(data))
    assert link.location.startswith("blobs/direct/")
    boto3.client("s3", region_name="us-east-1").delete_object(Bucket="test-bucket", Key=key)  # the run finishes
    assert digest_of(_fetch(client.get(f"/v2/team/b/blobs/{digest_of(data)}").headers["Location"])) == digest_of(data)


def test_a_restore_revives_a_doomed_manifest_and_after_collection_says_unknown(client, push, registry, clock):
    _, digest = push.image("team/app", "prod", layers=[b"x"])
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    clock.advance(days=15)
    run(registry)
    restored = client.post("/dockless/v1/team/app/tags/prod/restore", body=json.dumps({"digest": digest}),
                           headers={"Content-Type": "application/json"})
    assert restored.status_code == 404  # outside the window: refused before it could revive it
    assert error_code(restored) == "MANIFEST_UNKNOWN"
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["manifests_deleted"] == 1


def test_the_admin_route_runs_it_and_refuses_bad_bodies(client, push, registry, state):
    push.image("team/app", "v1")
    answer = client.post("/dockless/admin/v1/gc", body=json.dumps({"dry_run": True, "namespace": "team"}),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.body
    report = json.loads(answer.body)
    assert (report["repositories"], report["dry_run"], report["namespace"]) == (1, True, "team")
    before = state()
    for body in ({"dry_run": "yes"}, {"namespace": "Not/Valid"}, []):
        refused = client.post("/dockless/admin/v1/gc", body=json.dumps(body), headers={"Content-Type": "application/json"})
        assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert state() == before


@pytest.mark.parametrize("namespace, repositories", [("team", 1), ("other", 0)])
def test_a_namespace_run_touches_only_its_repositories_and_no_object(push, registry, clock, namespace, repositories):
    push.blob("team/app", b"x")
    clock.advance(days=30)
    report = run(registry, namespace=namespace)
    assert (report["repositories"], report["objects_found"]) == (repositories, 0)


def test_cosigns_signature_stays_with_its_subject_and_goes_with_it_tag_and_all(client, push, registry, clock):
    from chalicelib.signing import cosign
    from tests.api.test_cosign import payload, push_signatures
    _, kept = push.image("team/app", "v1", layers=[b"kept image"])
    _, gone = push.image("team/app", "v2", layers=[b"image deleted"])
    for digest in (kept, gone):
        signed = payload(digest, "registry.example.test/team/app")
        push_signatures(push, "team/app", digest, (signed, b"a signature"))
    assert client.delete(f"/v2/team/app/manifests/{gone}").status_code == 202
    first, second = two_runs(registry, clock)
    tags = json.loads(client.get("/v2/team/app/tags/list").body)["tags"]
    assert sorted(tags) == sorted(["v1", cosign.signature_tag(kept)])  # the deleted image's signature went with it
    assert second["manifests_deleted"] == 2
    assert client.get(f"/v2/team/app/manifests/{cosign.signature_tag(kept)}").status_code == 200
    assert client.get(f"/v2/team/app/manifests/{cosign.signature_tag(gone)}").status_code == 404
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    collected = [e for e in events if e["action"] == "manifest.collect" and e["detail"].get("tags")]
    assert [e["detail"]["tags"] for e in collected] == [[cosign.signature_tag(gone)]]
    # Kept while its subject is: more runs change nothing.
    clock.advance(days=30)
    run(registry)
    clock.advance(**GRACE_AND_MORE)
    assert run(registry)["manifests_deleted"] == 0
