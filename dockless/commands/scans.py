"""What is inside an image and which advisories affect it: `dockless scan show`, and the
advisories a registry matches (`dockless advisories import|accept|accepted|withdraw`). The API is
chalicelib/routes/scans.py; the scanning, chalicelib/scanning."""
import datetime
import io
import json
import zipfile
from pathlib import Path

import click

from dockless.client.registry import RegistryClient
from dockless.commands.images import credentials
from dockless.commands.options import client_of, registry_option
from dockless.ui import UI

# What one import request carries at most: well under the API's 4 MiB body.
BATCH_BYTES = 2 * 1024 * 1024
BATCH_ADVISORIES = 500


def register(main: click.Group) -> None:
    main.add_command(scan)
    main.add_command(advisories)


def _target(reference: str, registry, username, password):
    """(client, repository, tag or digest) of host/name[:tag|@digest], or of name[:tag|@digest] on
    the registry logged in to (or --registry)."""
    from chalicelib.oci.reference import Reference
    try:
        parsed = Reference.parse(reference)
    except ValueError:
        parsed = None
    if parsed is not None and registry is None and ("." in reference.split("/")[0] or ":" in reference.split("/")[0]
                                                    or reference.startswith("localhost/")):
        return RegistryClient.of(parsed.base_url, username, password), parsed.name, parsed.reference
    name, at, digest = reference.partition("@")
    if at:
        tag = digest
    else:
        name, colon, tag = reference.rpartition(":")
        if not colon or "/" in tag:
            name, tag = reference, "latest"
    client = RegistryClient(client_of(registry).base_url, username=username, password=password) \
        if username or password else client_of(registry)
    return client, name, tag


@click.group(help="The packages and vulnerabilities of an image (its SBOM is a referrer of it).\n\n"
                  "\b\nExample:\n  dockless scan show registry.example.com/team/app:1\n"
                  "  dockless scan show team/app:1 --json")
def scan():
    pass


@scan.command(name="show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@click.option("--packages", "with_packages", is_flag=True, help="List the packages too.")
@registry_option
@credentials
@click.pass_obj
def show(ui: UI, reference, as_json, with_packages, registry, username, password):
    """The packages and vulnerabilities of REFERENCE (host/name:tag, name:tag or name@digest):
    each vulnerability's id, severity, package, installed and fixed versions. An image not
    scanned yet is queued and shown pending; exit 1 while it is."""
    client, name, tag = _target(reference, registry, username, password)
    report = client.request("GET", f"/dockless/v1/{name}/scans/{tag}", (200,), f"reading the scan of {reference}").json()
    if as_json:
        ui.result(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print(ui, report, with_packages)
    if report["status"] == "pending":
        raise SystemExit(1)


def _print(ui: UI, report: dict, with_packages: bool) -> None:
    counts = ", ".join(f"{count} {severity.lower()}" for severity, count in report["summary"].items() if count)
    ui.result(f"{report['repository']}@{report['digest']}: {report['status']}; "
              f"{len(report['packages'])} packages, {len(report['vulnerabilities'])} vulnerabilities"
              + (f" ({counts})" if counts else ""))
    for image in report["images"]:
        if image["sbom"]:
            ui.result(f"  SBOM {image['sbom']['digest']} ({image['sbom']['source']}), {image['distro'] or 'no distribution'}")
        for problem in image["problems"]:
            ui.result(f"  not read: {problem}")
    for finding in report["vulnerabilities"]:
        accepted = finding.get("accepted")
        ui.result(f"{finding['severity']:<8} {finding['id']:<22} {finding['package']} {finding['installed']}"
                  f" -> {finding['fixed'] or 'no fix'}"
                  + (f"  (accepted until {accepted['until']}: {accepted['reason']})" if accepted else ""))
    if with_packages:
        for package in report["packages"]:
            ui.result(f"  {package['purl']}")


@click.group(help="The OSV advisories the registry matches images against, and the risks a namespace accepts.\n\n"
                  "\b\nExample:\n  dockless advisories import Debian.zip PyPI.zip\n"
                  "  dockless advisories accept CVE-2024-1234 --namespace team --until 2027-03-31 "
                  "--reason 'not reachable: no TLS'")
def advisories():
    pass


def _documents(path: Path):
    """The OSV documents of a file: one advisory, a list of them, or a zip archive of them (as
    OSV publishes each ecosystem's: osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip)."""
    data = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for entry in archive.infolist():
                if entry.filename.endswith(".json") and not entry.is_dir():
                    yield json.loads(archive.read(entry))
        return
    document = json.loads(data)
    yield from document if isinstance(document, list) else [document]


@advisories.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@registry_option
@click.pass_obj
def import_(ui: UI, files, registry):
    """Import OSV advisories from FILES (JSON, or OSV's zip archives); the stored SBOMs are
    matched again, without reading any layer."""
    client = client_of(registry)
    batch, size, totals = [], 0, {"advisories": 0, "packages": 0}

    def send(last: bool):
        nonlocal batch, size
        if batch:
            answer = client.admin("POST", "/advisories", {"advisories": batch, "rematch": last})
            totals["advisories"] += answer["advisories"]
            totals["packages"] += answer["packages"]
        batch, size = [], 0
    try:
        for path in files:
            for document in _documents(path):
                encoded = len(json.dumps(document))
                if batch and (size + encoded > BATCH_BYTES or len(batch) >= BATCH_ADVISORIES):
                    send(last=False)
                batch.append(document)
                size += encoded
    except (ValueError, zipfile.BadZipFile) as error:
        raise click.ClickException(f"{path}: not OSV JSON ({error})") from None
    send(last=True)
    ui.result(f"imported {totals['advisories']} advisories naming {totals['packages']} packages; "
              "stored SBOMs are being matched again")


@advisories.command(name="accept")
@click.argument("advisory_id")
@click.option("--namespace", required=True, help="The namespace whose images may carry it.")
@click.option("--until", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="The last day (YYYY-MM-DD).")
@click.option("--reason", required=True, help="Why the risk is accepted (recorded in the audit trail).")
@registry_option
@click.pass_obj
def accept(ui: UI, advisory_id, namespace, until, reason, registry):
    """Accept ADVISORY_ID (or an alias of it) in NAMESPACE's images until a date: verified mode's
    severity rule leaves it out; audited with the reason."""
    answer = client_of(registry).admin("PUT", f"/accepted-risks/{namespace}/{advisory_id}",
                                       {"until": until.date().isoformat(), "reason": reason})
    ui.result(f"{namespace} accepts {advisory_id} until {answer['until']} (by {answer['by']}): {answer['reason']}")


@advisories.command(name="accepted")
@click.argument("namespace")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@registry_option
@click.pass_obj
def accepted(ui: UI, namespace, as_json, registry):
    """The advisories NAMESPACE accepts, with until when, by whom and why."""
    found = client_of(registry).admin("GET", f"/accepted-risks/{namespace}")["accepted"]
    if as_json:
        ui.result(json.dumps(found, indent=2, sort_keys=True))
        return
    today = datetime.date.today().isoformat()
    for advisory, risk in sorted(found.items()):
        ended = " (ended)" if risk["until"] < today else ""
        ui.result(f"{advisory}  until {risk['until']}{ended}  by {risk['by']}: {risk['reason']}")


@advisories.command(name="withdraw")
@click.argument("advisory_id")
@click.option("--namespace", required=True)
@registry_option
@click.pass_obj
def withdraw(ui: UI, advisory_id, namespace, registry):
    """No longer accept ADVISORY_ID in NAMESPACE (audited)."""
    client_of(registry).admin("DELETE", f"/accepted-risks/{namespace}/{advisory_id}")
    ui.result(f"{namespace} no longer accepts {advisory_id}")


