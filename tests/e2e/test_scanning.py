"""SBOMs and vulnerabilities end to end: docker builds an image FROM scratch out of real package
metadata (tests/packages.py: a Debian 12 dpkg status, Python dist-info, npm package.json, a Go
binary's build information, a jar) and pushes it to the served stack; the stack scans it off the
request path; `dockless advisories import` takes OSV JSON and OSV's zip archive; `dockless scan
show --json` lists what affects the image; skopeo reads the SBOM referrer as any client would;
verified mode's severity rule refuses a reader's pull until the risk is accepted."""
import json
import zipfile

from tests import packages as made
from tests.e2e.images import pushed_digest
from tests.e2e.programs import wait_for


def _build_context(directory, layers):
    """A Dockerfile FROM scratch with one COPY per layer's files."""
    steps = ["FROM scratch"]
    for number, files in enumerate(layers):
        for path, data in files.items():
            target = directory / f"layer{number}" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        steps.append(f"COPY layer{number}/ /")
    (directory / "Dockerfile").write_text("\n".join(steps) + "\n")


def _scan(dockless, reference):
    answer = dockless("scan", "show", reference, "--json", check=False)
    return json.loads(answer.stdout) if answer.stdout.strip().startswith("{") else None


def test_a_pushed_image_is_scanned_and_imported_advisories_match_it(stack, docker, dockless, skopeo, tmp_path):
    base = {"etc/os-release": made.os_release("debian", "12"),
            "var/lib/dpkg/status": made.dpkg_status([("libssl3", "3.0.11-1~deb12u1", "openssl"),
                                                     ("zlib1g", "1:1.2.13.dfsg-1", "zlib")])}
    apps = {"usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA": made.dist_info_metadata("requests", "2.25.0"),
            "app/node_modules/lodash/package.json": made.package_json("lodash", "4.17.20"),
            "usr/local/bin/server": made.go_binary("go1.21.3", "example.com/server", [("golang.org/x/net", "v0.17.0")]),
            "opt/app/log4j-core-2.14.1.jar": made.jar("org.apache.logging.log4j", "log4j-core", "2.14.1")}
    _build_context(tmp_path / "ctx", [base, apps])
    image = f"{stack.host}/scanned/app:1"
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    digest = pushed_digest(docker("push", image).stdout)

    wait_for(lambda: (_scan(dockless, image) or {}).get("status") == "done", "the push's scan", seconds=60)
    scanned = _scan(dockless, image)
    assert scanned["digest"] == digest and scanned["vulnerabilities"] == []
    purls = {p["purl"] for p in scanned["packages"]}
    assert {"pkg:pypi/requests@2.25.0", "pkg:npm/lodash@4.17.20", "pkg:golang/golang.org/x/net@v0.17.0",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"} <= purls
    assert any(p.startswith("pkg:deb/debian/libssl3@3.0.11-1~deb12u1") for p in purls)

    # The SBOM is an OCI referrer any client reads: skopeo fetches it by digest.
    sbom_digest = scanned["images"][0]["sbom"]["digest"]
    referrer = json.loads(skopeo("inspect", "--tls-verify=false", "--raw",
                                 f"docker://{stack.host}/scanned/app@{sbom_digest}").stdout)
    assert referrer["artifactType"] == "application/vnd.cyclonedx+json" and referrer["subject"]["digest"] == digest

    # OSV advisories: a JSON list, and OSV's per-ecosystem zip archive.
    advisories = made.sample_advisories()
    (tmp_path / "some.json").write_text(json.dumps(advisories[:6]))
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        for advisory in advisories[6:]:
            archive.writestr(f"{advisory['id']}.json", json.dumps(advisory))
    imported = dockless("advisories", "import", str(tmp_path / "some.json"), str(tmp_path / "all.zip")).stdout
    assert f"imported {len(advisories)} advisories" in imported
    shown = _scan(dockless, image)
    assert {f["id"] for f in shown["vulnerabilities"]} == {
        "DSA-5532-1", "DEBIAN-CVE-2023-45853", "GHSA-j8r2-6x86-q33q", "GHSA-35jh-r3h4-6jhm", "GO-2024-2687",
        "GO-2023-2185", "GHSA-jfh8-c2jp-5v3q"}
    text = dockless("scan", "show", image).stdout
    assert "CRITICAL GHSA-jfh8-c2jp-5v3q" in text and "org.apache.logging.log4j:log4j-core 2.14.1 -> 2.15.0" in text

    # Verified mode's severity rule: a reader's pull is refused, until the critical risk is accepted.
    dockless("repo", "set", "scanned", "--refuse-severity", "critical")
    dockless("user", "create", "scan-reader")
    token = dockless("token", "create", "scan-reader").stdout.strip()
    dockless("grant", "read", "scanned", "user:scan-reader")
    refused = skopeo("inspect", "--tls-verify=false", "--creds", f"scan-reader:{token}", f"docker://{image}", check=False)
    assert refused.returncode != 0 and "GHSA-jfh8-c2jp-5v3q" in refused.stderr
    accepted = dockless("advisories", "accept", "CVE-2021-44228", "--namespace", "scanned", "--until", "2099-12-31",
                        "--reason", "no JNDI lookups: log4j2.formatMsgNoLookups").stdout
    assert "scanned accepts CVE-2021-44228 until 2099-12-31" in accepted
    allowed = skopeo("inspect", "--tls-verify=false", "--creds", f"scan-reader:{token}", f"docker://{image}")
    assert json.loads(allowed.stdout)["Digest"] == digest
    assert "CVE-2021-44228" in dockless("advisories", "accepted", "scanned").stdout
    docker("rmi", image)

