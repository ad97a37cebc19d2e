"""SBOMs and vulnerabilities (chalicelib/scanning), in process on moto: an image built from real
package metadata formats (tests/packages.py) is scanned off the request path, its SBOM stored as
a CycloneDX referrer, matched against hand-written OSV advisories; new advisories match the stored
SBOMs again without reading layers; a team's own SBOM is used instead of ours; verified mode's
severity rule with accepted risks; hostile layers give bounded errors; bad input changes nothing."""
import dataclasses
import io
import json
import tarfile
import zipfile
import gzip
from urllib.parse import quote

import boto3
import pytest

from chalicelib.backend import backend, use_backend
from chalicelib.events import delivery
from chalicelib.metadata.models import Advisory, AuditEvent, ImageScan, JobState
from chalicelib.scanning import inventory, sbom, service
from chalicelib.scanning.service import ScanService
from chalicelib.storage import paths
from tests import packages as made
from tests.fixtures import digest_of, error_code

JSON = {"Content-Type": "application/json"}


def import_advisories(client, documents, rematch=True):
    answer = client.post("/dockless/admin/v1/advisories", body=json.dumps({"advisories": documents, "rematch": rematch}),
                         headers=JSON)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def report(client, reference="team/app/scans/v1", **headers):
    name, _, ref = reference.rpartition("/scans/")
    return client.get(f"/dockless/v1/{name}/scans/{ref}", headers=headers)


@pytest.fixture
def sample(push, registry):
    """The sample image, pushed as team/app:v1 and scanned (as the scans queue's consumer does)."""
    _, digest = push.image("team/app", "v1", layers=made.sample_layers())
    scanned = ScanService(backend()).scan("team/app", digest)
    assert scanned is not None and scanned.status == "done", scanned and scanned.error
    return digest


@pytest.fixture
def scans_on(registry):
    """The events' and scans' queues, as the stack makes them: a push's event schedules its scan."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    fifo = {"FifoQueue": "true", "VisibilityTimeout": "60"}
    events = sqs.create_queue(QueueName="scan-test-events.fifo", Attributes=fifo)["QueueUrl"]
    scans = sqs.create_queue(QueueName="scan-test-scans")["QueueUrl"]
    for url in (events, scans):
        sqs.purge_queue(QueueUrl=url)
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(
        registry.settings, events_queue_url=events, scans_queue_url=scans)))
    yield scans


def test_a_push_schedules_its_scan_which_stores_an_sbom_referrer_and_its_findings(client, push, scans_on):
    import_advisories(client, made.sample_advisories(), rematch=False)
    _, digest = push.image("team/app", "v1", layers=made.sample_layers())
    assert ImageScan.count() == 0  # nothing is read while the push is answered
    while delivery.pump(backend()):
        pass
    assert service.pump(backend(), 60) == 1
    shown = report(client)
    assert shown.status_code == 200, shown.body
    body = shown.json_body
    assert body["status"] == "done" and body["digest"] == digest
    assert {f["id"] for f in body["vulnerabilities"]} == made.SAMPLE_FINDINGS
    by_id = {f["id"]: f for f in body["vulnerabilities"]}
    assert by_id["DSA-5532-1"] | {} == {**by_id["DSA-5532-1"], "severity": "HIGH", "score": 7.5, "package": "openssl",
                                        "installed": "3.0.11-1~deb12u1", "fixed": "3.0.11-1~deb12u2"}
    assert by_id["GHSA-jfh8-c2jp-5v3q"]["severity"] == "CRITICAL" and by_id["GHSA-jfh8-c2jp-5v3q"]["fixed"] == "2.15.0"
    assert by_id["GHSA-j8r2-6x86-q33q"]["aliases"] == ["CVE-2023-32681", "PYSEC-2023-74"]
    assert body["summary"] == {"CRITICAL": 2, "HIGH": 2, "MEDIUM": 2, "LOW": 0, "UNKNOWN": 2}
    purls = {p["purl"] for p in body["packages"]}
    assert {"pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
            "pkg:pypi/requests@2.25.0", "pkg:npm/%40babel/traverse@7.23.1", "pkg:golang/golang.org/x/net@v0.17.0",
            "pkg:golang/stdlib@1.21.3", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"} <= purls
    assert not any("not-a-package" in p for p in purls) and not any("/gone@" in p for p in purls)

    # The SBOM is a referrer any OCI client finds, CycloneDX, naming the same packages.
    referrers = client.get(f"/v2/team/app/referrers/{digest}?artifactType={quote(sbom.CYCLONEDX)}")
    assert referrers.status_code == 200
    [descriptor] = referrers.json_body["manifests"]
    assert descriptor["artifactType"] == sbom.CYCLONEDX and descriptor["digest"] == body["images"][0]["sbom"]["digest"]
    assert descriptor["annotations"] == {sbom.GENERATOR_ANNOTATION: "dockless"}
    manifest = json.loads(client.get(f"/v2/team/app/manifests/{descriptor['digest']}",
                                     headers={"Accept": descriptor["mediaType"]}).body)
    assert manifest["subject"]["digest"] == digest
    document = json.loads(_blob(client, "team/app", manifest["layers"][0]["digest"]))
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
    assert {c["purl"] for c in document["components"] if "purl" in c} == purls
    assert document["metadata"]["component"] == {"type": "container", "name": "team/app", "version": digest,
                                                  "bom-ref": f"team/app@{digest}"}
    # The SBOM's own push is not scanned as an image, and the scan is an event of its own.
    while delivery.pump(backend()):
        pass
    assert service.pump(backend(), 60) == 1 and ImageScan.count() == 2
    assert ImageScan.get("team/app", descriptor["digest"]).status == "skipped"  # not an image: never held back
    [done] = [e for e in AuditEvent.scan() if e.action == "scan.complete"]
    assert done.repository == "team/app" and json.loads(done.detail)["summary"]["CRITICAL"] == 2


def _blob(client, repo, digest) -> bytes:
    """A blob as a client pulls it: the registry's 307, then the bucket's bytes."""
    assert client.get(f"/v2/{repo}/blobs/{digest}").status_code == 307
    return boto3.client("s3", region_name="us-east-1").get_object(Bucket="test-bucket",
                                                                  Key=paths.blob_key(digest))["Body"].read()


def test_new_advisories_match_the_stored_sboms_without_reading_any_layer(client, sample, registry):
    assert report(client).json_body["vulnerabilities"] == []  # no advisories yet
    s3 = boto3.client("s3", region_name="us-east-1")
    layers = json.loads(client.get("/v2/team/app/manifests/v1",
                                   headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).body)["layers"]
    for layer in layers:  # the layers' bytes are gone: what is matched now comes from the SBOM
        s3.delete_object(Bucket="test-bucket", Key=paths.blob_key(layer["digest"]))
    imported = import_advisories(client, made.sample_advisories(), rematch=False)
    assert imported["advisories"] == len(made.sample_advisories()) and imported["epoch"] == 1
    # The stored findings are of the old epoch until matched again, by the job or by a report.
    assert ScanService(backend()).rematch(60) == 1
    item = ImageScan.get("team/app", sample)
    assert item.advisories_epoch == 1 and json.loads(item.summary)["CRITICAL"] == 2
    assert {f["id"] for f in report(client).json_body["vulnerabilities"]} == made.SAMPLE_FINDINGS
    # A withdrawn advisory no longer counts; a newer one does, at once in a report.
    withdrawn = made.osv("GHSA-35jh-r3h4-6jhm", "npm", "lodash", [{"introduced": "0"}, {"fixed": "4.17.21"}],
                         withdrawn="2026-11-02T00:00:00Z")
    newer = made.osv("PYSEC-2026-1", "PyPI", "jinja2", [{"introduced": "3.0"}, {"fixed": "3.1.5"}], severity="LOW")
    import_advisories(client, [withdrawn, newer], rematch=False)
    ids = {f["id"] for f in report(client).json_body["vulnerabilities"]}
    assert ids == made.SAMPLE_FINDINGS - {"GHSA-35jh-r3h4-6jhm"} | {"PYSEC-2026-1"}
    assert ScanService(backend()).rematch(60) == 0  # the report brought it up to date already


def test_an_sbom_the_team_pushes_is_used_instead_of_one_made_from_layers(client, push):
    _, digest = push.image("team/app", "v1", layers=made.sample_layers())
    theirs = json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "packages": [
        {"name": "urllib3", "SPDXID": "SPDXRef-1", "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
             "referenceLocator": "pkg:pypi/urllib3@1.26.0"}]}]}).encode()
    blob = push.blob("team/app", theirs)
    empty = push.blob("team/app", b"{}")
    subject = json.loads(client.get(f"/v2/team/app/manifests/{digest}",
                                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).body)
    referrer = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": sbom.SPDX, "config": dict(empty, mediaType="application/vnd.oci.empty.v1+json"),
                "layers": [dict(blob, mediaType=sbom.SPDX)],
                "subject": {"mediaType": subject["mediaType"], "digest": digest,
                            "size": len(client.get(f"/v2/team/app/manifests/{digest}",
                                                   headers={"Accept": subject["mediaType"]}).body)}}
    body = json.dumps(referrer).encode()
    assert push.manifest("team/app", digest_of(body), body).status_code == 201
    import_advisories(client, [made.osv("GHSA-v845-jxx5-vc9f", "PyPI", "urllib3",
                                        [{"introduced": "0"}, {"fixed": "1.26.18"}], severity="MODERATE")]
                      + made.sample_advisories())
    # The scan message of the referrer's push scans its subject, from the team's SBOM.
    scanned = ScanService(backend()).scan("team/app", digest_of(body))
    assert scanned.digest == digest and scanned.sbom_source == "pushed" and scanned.sbom_digest == digest_of(body)
    shown = report(client).json_body
    assert [f["id"] for f in shown["vulnerabilities"]] == ["GHSA-v845-jxx5-vc9f"]
    assert [p["purl"] for p in shown["packages"]] == ["pkg:pypi/urllib3@1.26.0"]
    assert client.get(f"/v2/team/app/referrers/{digest}?artifactType={quote(sbom.CYCLONEDX)}").json_body["manifests"] == []


def _reader_token(client, anonymous, people):
    import base64
    auth = "Basic " + base64.b64encode(f"reader:{people['reader']}".encode()).decode()
    return anonymous.get("/token?service=dockless&scope=repository:team/app:pull",
                         headers={"Authorization": auth}).json_body["token"]


def test_verified_mode_refuses_severe_findings_except_accepted_ones(client, anonymous, people, sample, clock, push):
    import_advisories(client, made.sample_advisories())
    ScanService(backend()).rematch(60)  # the stored findings the rule reads, as the job leaves them
    assert client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team", "refuse_severity": "critical"}),
                      headers=JSON).status_code == 200
    headers = {"Authorization": f"Bearer {_reader_token(client, anonymous, people)}",
               "Accept": "application/vnd.oci.image.manifest.v1+json"}
    refused = anonymous.get("/v2/team/app/manifests/v1", headers=headers)
    assert refused.status_code == 403 and error_code(refused) == "DENIED"
    message = json.loads(refused.body)["errors"][0]["message"]
    assert "2 found (GHSA-67hx-6x53-jw92, GHSA-jfh8-c2jp-5v3q)" in message
    assert client.get("/v2/team/app/manifests/v1", headers={"Accept": headers["Accept"]}).status_code == 200  # a pusher

    for advisory in ("GHSA-67hx-6x53-jw92", "CVE-2021-44228"):  # an alias accepts its advisory too
        accepted = client.put(f"/dockless/admin/v1/accepted-risks/team/{advisory}",
                              body=json.dumps({"until": "2026-01-31", "reason": "not reachable"}), headers=JSON)
        assert accepted.status_code == 200 and accepted.json_body["until"] == "2026-01-31"
    assert anonymous.get("/v2/team/app/manifests/v1", headers=headers).status_code == 200
    shown = report(client).json_body
    assert {f["id"]: f.get("accepted", {}).get("reason") for f in shown["vulnerabilities"]}["GHSA-jfh8-c2jp-5v3q"] \
        == "not reachable"
    assert shown["summary"]["CRITICAL"] == 0
    assert sorted(json.loads(e.detail)["advisory"] for e in AuditEvent.scan() if e.action == "risk.accept") \
        == ["CVE-2021-44228", "GHSA-67hx-6x53-jw92"]
    clock.advance(days=31)  # past its last day: refused again
    headers["Authorization"] = f"Bearer {_reader_token(client, anonymous, people)}"
    assert anonymous.get("/v2/team/app/manifests/v1", headers=headers).status_code == 403
    # An image that calls itself an SBOM (artifactType) is scanned for what its config and layers are.
    _, disguised = push.image("team/app", "disguised", layers=made.sample_layers(), artifactType=sbom.CYCLONEDX)
    ScanService(backend()).scan("team/app", disguised)
    assert ImageScan.get("team/app", disguised).status == "done"
    assert anonymous.get("/v2/team/app/manifests/disguised", headers=headers).status_code == 403
    # One whose scan could not read all of it (a zstd layer) is refused: its status is not known.
    _, unread = push.image("team/app", "zstd", layers=[made.tar_layer({"a": b"b"}), b"\x28\xb5\x2f\xfd" + b"\0" * 64])
    ScanService(backend()).scan("team/app", unread)
    refused = anonymous.get("/v2/team/app/manifests/zstd", headers=headers)
    assert refused.status_code == 403 and "could not read all of it" in json.loads(refused.body)["errors"][0]["message"]
    # A lower threshold, an image not scanned yet.
    client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team/app", "refuse_severity": "low"}),
               headers=JSON)
    ImageScan.get("team/app", sample).delete()
    refused = anonymous.get(f"/v2/team/app/manifests/{sample}", headers=headers)
    assert refused.status_code == 403 and "not scanned yet" in json.loads(refused.body)["errors"][0]["message"]


def test_bad_advisories_and_acceptances_are_refused_and_change_nothing(client, state, sample):
    before = state()
    good = made.sample_advisories()[0]
    for documents in ([good, {"id": "bad id!", "affected": []}], [good, {"id": "X-1", "affected": [{"package": {}}]}],
                      [], "not a list", [good] * 1001, [{"id": "X-2", "affected": [{"package": {"ecosystem": "PyPI",
                                                                                               "name": "a"},
                                                                                   "ranges": [{"type": "SEMVER"}]}]}]):
        answer = client.post("/dockless/admin/v1/advisories", body=json.dumps({"advisories": documents}), headers=JSON)
        assert answer.status_code == 400 and error_code(answer) == "INVALID", documents
    for body in ({"until": "yesterday", "reason": "x"}, {"until": "2025-12-31", "reason": "x"},
                 {"until": "2026-02-01", "reason": ""}, {"until": "2026-02-01", "reason": "x" * 501}):
        answer = client.put("/dockless/admin/v1/accepted-risks/team/CVE-2024-1", body=json.dumps(body), headers=JSON)
        assert answer.status_code == 400 and error_code(answer) == "INVALID", body
    assert client.put("/dockless/admin/v1/accepted-risks/team/bad%20id", body=json.dumps({"until": "2026-02-01",
                                                                                          "reason": "x"}),
                      headers=JSON).status_code == 400
    assert client.delete("/dockless/admin/v1/accepted-risks/team/CVE-2024-1").status_code == 404
    assert client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "team", "refuse_severity": "severe"}),
                      headers=JSON).status_code == 400
    assert state() == before
    assert Advisory.count() == 0 and JobState.count(hash_key="advisories") == 0
    assert report(client, "team/app/scans/nope").status_code == 404


def test_hostile_layers_give_bounded_errors_and_the_rest_is_read(client, push):
    big_status = io.BytesIO()
    with tarfile.open(fileobj=big_status, mode="w") as archive:
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.size = 100 * 1024 * 1024
        archive.addfile(info, io.BytesIO(b"Package: x\n" * (info.size // 11) + b"\n" * (info.size % 11)))
    layers = [
        made.tar_layer({"../../../etc/evil/package.json": b"{}", "/abs/node_modules/ok/package.json":
                        made.package_json("ok", "1.0.0")}),
        gzip.compress(big_status.getvalue(), 1),  # a status file of 100 MB
        made.zeros_layer(400 * 1024 * 1024),  # a gzip bomb: 400 MB of zeros in under half a megabyte
        b"not a tar archive at all",
        b"\x28\xb5\x2f\xfd" + b"\0" * 64,  # zstd
        made.tar_layer({"usr/lib/python3/x.dist-info/METADATA": b"no name here\n"}),
    ]
    _, digest = push.image("team/app", "v1", layers=layers)
    scanned = ScanService(backend()).scan("team/app", digest)
    assert scanned.status == "done"
    problems = json.loads(scanned.problems)
    assert report(client).json_body["complete"] is False
    assert any("climbs out of the root" in p for p in problems)
    assert any("var/lib/dpkg/status: 104857600 bytes, more than the" in p for p in problems)
    assert any("expands past" in p for p in problems)
    assert any("not a readable tar layer" in p for p in problems)
    assert any("zstd" in p for p in problems)
    assert any("no Name or Version" in p for p in problems)
    assert [p["purl"] for p in report(client).json_body["packages"]] == ["pkg:npm/ok@1.0.0"]
    assert client.get("/v2/").status_code == 200


def test_whiteouts_remove_what_lower_layers_installed():
    lower = made.tar_layer({"app/node_modules/a/package.json": made.package_json("a", "1.0.0"),
                            "app/node_modules/b/package.json": made.package_json("b", "1.0.0"),
                            "srv/node_modules/c/package.json": made.package_json("c", "1.0.0"),
                            "lib/apk/db/installed": made.apk_installed([("busybox", "1.36.1-r5", "busybox")]),
                            "etc/os-release": made.os_release("alpine", "3.19.1")})
    upper = made.tar_layer({"app/node_modules/.wh.a": b"", "srv/.wh..wh..opq": b"",
                            "srv/node_modules/d/package.json": made.package_json("d", "2.0.0"),
                            "var/lib/rpm/rpmdb.sqlite": made.rpm_database([("openssl-libs", "3.0.7", "25.el9", 1)])})
    found = inventory.read_image([(str(n), len(layer), lambda layer=layer: [layer]) for n, layer in enumerate((lower, upper))])
    assert sorted(p.purl for p in found.packages) == [
        "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64&origin=busybox", "pkg:npm/b@1.0.0", "pkg:npm/d@2.0.0",
        "pkg:rpm/alpine/openssl-libs@3.0.7-25.el9?arch=x86_64&epoch=1"]
    assert found.distro.release() == "v3.19" and found.errors == []
    rpm = next(p for p in found.packages if p.purl.startswith("pkg:rpm"))
    assert rpm.version == "1:3.0.7-25.el9"


def test_a_reader_may_see_a_scan_and_others_may_not(client, anonymous, people, sample):
    assert report(anonymous).status_code == 401
    import base64
    auth = "Basic " + base64.b64encode(f"nobody:{people['nobody']}".encode()).decode()
    token = anonymous.get("/token?service=dockless&scope=repository:team/app:pull",
                          headers={"Authorization": auth}).json_body["token"]
    assert report(anonymous, Authorization=f"Bearer {token}").status_code in (401, 403)
    reader = _reader_token(client, anonymous, people)
    assert report(anonymous, Authorization=f"Bearer {reader}").status_code == 200
    refused = anonymous.post("/dockless/admin/v1/advisories", body=json.dumps({"advisories": made.sample_advisories()}),
                             headers={**JSON, "Authorization": f"Bearer {reader}"})
    assert refused.status_code in (401, 403) and Advisory.count() == 0


def test_the_console_and_usage_show_each_tags_vulnerabilities(client, anonymous, people, sample, push):
    from tests.api.test_console import Browser
    import_advisories(client, made.sample_advisories())
    ScanService(backend()).rematch(60)
    _, unscanned = push.image("team/app", "v2", layers=[made.tar_layer({"a": b"b"})])
    client.put("/dockless/admin/v1/accepted-risks/team/CVE-2021-44228",
               body=json.dumps({"until": "2026-06-30", "reason": "no JNDI lookups"}), headers=JSON)
    usage = client.get("/dockless/admin/v1/usage?namespace=team").json_body["tags"]
    assert [(row["tag"], row["status"], row["summary"]) for row in usage] == [
        ("v1", "done", {"CRITICAL": 2, "HIGH": 2, "MEDIUM": 2, "LOW": 0, "UNKNOWN": 2}), ("v2", "pending", None)]
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/repository?name=team/app").body.decode()
    assert page.count('class="vulnerabilities"') == 2
    assert "2 critical, 2 high, 2 medium, 2 unknown" in page and "not scanned yet" in page
    tag = browser.request("GET", "/ui/tag?name=team/app&tag=v1").body.decode()
    assert "1 critical, 2 high, 2 medium, 2 unknown" in tag  # the accepted one left out of the summary
    assert "GHSA-jfh8-c2jp-5v3q" in tag and "until 2026-06-30 by admin: no JNDI lookups" in tag
    assert "<code>2.14.1</code>" in tag and "<code>2.15.0</code>" in tag


class Feed:
    """An advisory feed on loopback that serves, lies, redirects, stalls and floods (`mode`)."""

    def __init__(self):
        import http.server
        import threading
        feed = self
        self.mode, self.body, self.requests = "serve", b"", 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                feed.requests += 1
                if feed.mode == "redirect-internal":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.end_headers()
                elif feed.mode == "stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"P")
                    self.wfile.flush()
                    import time
                    time.sleep(8)
                elif feed.mode == "flood":
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(400):
                            self.wfile.write(b"\0" * 1024 * 1024)
                    except OSError:
                        pass
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(feed.body)))
                    self.end_headers()
                    self.wfile.write(feed.body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/Debian/all.zip"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_feeds_are_imported_daily_and_a_feed_that_lies_stalls_redirects_or_floods_imports_nothing(
        client, sample, registry, monkeypatch):
    from chalicelib.routes import jobs
    from chalicelib.scanning import feeds
    feed = Feed()
    try:
        use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings,
                                                                                 advisory_feeds=(feed.url,))))
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as written:
            for advisory in made.sample_advisories():
                written.writestr(f"{advisory['id']}.json", json.dumps(advisory))
        monkeypatch.setattr(feeds, "FEED_SECONDS", 3)
        monkeypatch.setattr(feeds, "FEED_MAX_BYTES", 64 * 1024 * 1024)
        for mode, body, said in (("redirect-internal", b"", "refused to fetch"), ("stall", b"", "within 3 s"),
                                 ("flood", b"", "more than 67108864 bytes"),
                                 ("serve", b"<html>not advisories</html>", "neither OSV JSON"),
                                 ("serve", _zip({"a.json": b"{not json"}), "not an archive of OSV JSON"),
                                 ("serve", _zip({"bomb.json": b" " * (5 * 1024 * 1024)}), "over 4194304 bytes"),
                                 ("serve", _zip({"bad.json": json.dumps({"id": "bad id!"}).encode()}), "advisory's id")):
            feed.mode, feed.body = mode, body
            record = jobs.import_advisories(backend())
            [result] = record["feeds"]
            assert said in result["error"], (mode, result)
            assert Advisory.count() == 0 and JobState.count(hash_key="advisories") == 0, mode
        feed.mode, feed.body = "serve", archive.getvalue()
        [result] = jobs.import_advisories(backend())["feeds"]
        assert result == {"feed": feed.url, "advisories": len(made.sample_advisories())}
        assert {f["id"] for f in report(client).json_body["vulnerabilities"]} == made.SAMPLE_FINDINGS
        requests_before = feed.requests
        assert jobs.import_advisories(backend())["feeds"] == [{"feed": feed.url, "unchanged": True}]
        assert feed.requests == requests_before + 1
    finally:
        feed.close()


def _zip(files) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as written:
        for name, data in files.items():
            written.writestr(name, data)
    return buffer.getvalue()
