"""What is inside each image, and which advisories affect it.

    push ──(its event, chalicelib/events)──► the scans queue ──► scan_images (its own function)
        scan:   the image's SBOM, the one a team pushed as a referrer if any, else one made by
                streaming its layers from the bucket (inventory.py) and stored as a referrer
                (sbom.py); its findings (advisories.match); an ImageScan item; audit `scan.complete`
    import (`dockless advisories import`) ──► Advisory items, the advisories' epoch counted up,
        and a `rematch` message: every done scan of an older epoch gets its findings again from
        its SBOM, never from its layers (`rematch`, a leased job that goes on where it stopped)

`report` (what `dockless scan show` prints) works the findings out again when they are of an
older epoch than the advisories, so what it shows is never stale; an image not scanned yet is
queued and shown `pending`. Verified mode's severity rule reads the stored findings
(chalicelib/policy/vulnerabilities.py).
"""
from __future__ import annotations
import hashlib
import json
import logging
from typing import Dict, List, Optional

from pynamodb.exceptions import DoesNotExist

from chalicelib.events import delivery
from chalicelib.metadata import audit, keys
from chalicelib.metadata.leases import Lease, Scan
from chalicelib.metadata.models import Advisory, ImageScan, JobState, Manifest, transaction
from chalicelib.oci import errors, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.policy import vulnerabilities
from chalicelib.policy.settings import SettingsService
from chalicelib.registry.blobs import BlobService
from chalicelib.registry.manifests import ManifestService
from chalicelib.runtime.observe import StepRecord
from chalicelib.scanning import advisories, inventory, sbom
from chalicelib.scanning.packages import Distro, Package

LOG = logging.getLogger("dockless.scanning")
ACTOR = "scanner"
SCANNER_VERSION = "1"  # what the SBOM names as its tool's version: counted up when the readers change
EPOCH_ITEM = "advisories"  # the jobs table's item counting advisory imports
REMATCH_JOB = "match_advisories"
FINDINGS_MAX = 5000
FINDINGS_MAX_BYTES = 256 * 1024  # compressed, in the scan's item (DynamoDB's items are at most 400 KB)
IMPORT_MAX = 1000  # advisories per import request


def _is_layer(media_type: str) -> bool:
    return ".tar" in media_type or media_type.endswith((".layer.v1", "rootfs.diff.tar"))


def epoch() -> int:
    try:
        return int(JobState.get(EPOCH_ITEM, consistent_read=True).epoch or 0)
    except DoesNotExist:
        return 0


def records_of(package_keys: List[str]) -> Dict[str, List[advisories.Record]]:
    """What the stored advisories say of these packages: one query per package."""
    found = {}
    for key in package_keys:
        found[key] = [advisories.Record(item.package, item.advisory_id, json.loads(item.entries), item.severity,
                                        float(item.score) if item.score is not None else None, item.summary or "",
                                        sorted(item.aliases or ()), item.modified or "", bool(item.withdrawn))
                      for item in Advisory.query(key)]
    return found


def _distro_text(distro: Optional[Distro]) -> Optional[str]:
    return f"{distro.id} {distro.version_id}".strip() if distro else None


def _distro_of(text: Optional[str]) -> Optional[Distro]:
    if not text:
        return None
    name, _, version = text.partition(" ")
    return Distro(name, version)


class ScanService:
    def __init__(self, backend):
        self._backend = backend
        self._manifests = ManifestService(backend)
        self._blobs = BlobService(backend)

    # --- scanning ----------------------------------------------------------------------------

    def scan(self, repo: str, digest: str) -> Optional[ImageScan]:
        """Scan one manifest of a repository (a team's SBOM referrer: then its subject too); the
        scan, or None for what is not scanned (an index, a manifest gone meanwhile)."""
        with StepRecord("scan", repository=repo, digest=digest) as record, audit.acting_as(ACTOR):
            try:
                manifest = self._manifests.get(repo, digest)
            except RegistryError:
                record["outcome"] = "gone"
                return None
            if manifest.media_type in spec.INDEX_MEDIA_TYPES:
                record["outcome"] = "index"
                return None
            item = self._scan_safely(repo, manifest)
            record.update(outcome=item.status, packages=int(item.package_count or 0))
            annotations = json.loads(manifest.annotations) if manifest.annotations else {}
            if item.status == "skipped" and manifest.artifact_type in sbom.ARTIFACT_TYPES and manifest.subject_key \
                    and sbom.GENERATOR_ANNOTATION not in annotations:
                # A team's SBOM (what its config and layers say, not only its artifactType): its
                # subject is scanned again, from it.
                try:
                    subject = self._manifests.get(repo, manifest.subject_key.rsplit("@", 1)[1])
                except RegistryError:
                    record["subject"] = "not pushed"
                    return item
                if subject.media_type not in spec.INDEX_MEDIA_TYPES:
                    item = self._scan_safely(repo, subject)
                    record["subject"] = item.status
            return item

    def _scan_safely(self, repo: str, manifest: Manifest) -> ImageScan:
        try:
            return self._scan(repo, manifest)
        except Exception as error:  # noqa: BLE001 - an image the scanner cannot read is named, not retried forever
            LOG.exception("scanning %s@%s failed", repo, manifest.digest)
            item = ImageScan(repo, manifest.digest, status="failed", error=str(error)[:300],
                             scanned_at=self._backend.clock())
            item.save()
            return item

    def _scan(self, repo: str, manifest: Manifest) -> ImageScan:
        now = self._backend.clock()
        item = ImageScan(repo, manifest.digest, status="pending", scanned_at=now)
        document = json.loads(self._manifests.body(manifest))
        layers = document.get("layers") or []
        config = document.get("config") if isinstance(document.get("config"), dict) else {}
        if config.get("mediaType") not in vulnerabilities.IMAGE_CONFIGS \
                or not all(_is_layer(layer.get("mediaType", "")) for layer in layers):
            item.status = "skipped"
            return self._finish(item, [], None, [])
        pushed = self._pushed_sbom(repo, manifest.digest)
        problems: List[str] = []
        if pushed is not None:
            sbom_digest, packages, distro = pushed
            item.sbom_source = "pushed"
        else:
            found = inventory.read_image(
                (layer["digest"], int(layer.get("size") or 0), self._opener(repo, layer["digest"]))
                for layer in layers if not layer.get("urls"))
            packages, distro, problems = found.packages, found.distro, found.errors
            sbom_digest = self._store_sbom(repo, manifest, document, packages, distro, problems)
            item.sbom_source = "generated" if sbom_digest else None
        item.sbom_digest = sbom_digest
        item.status = "done"
        return self._finish(item, packages, distro, problems)

    def _opener(self, repo: str, digest: str):
        def pieces():
            link = self._blobs.link_for(repo, digest)
            return self._backend.objects.pieces(link.location)
        return pieces

    def _finish(self, item: ImageScan, packages: List[Package], distro: Optional[Distro],
                problems: List[str]) -> ImageScan:
        item.package_count = len(packages)
        item.distro = _distro_text(distro)
        item.problems = json.dumps(problems[:inventory.ERRORS_KEPT]) if problems else None
        findings = self._match(item, packages, distro) if item.status == "done" else []
        if item.status == "skipped":
            item.save()
            return item
        with transaction() as txn:
            txn.save(item)
            self._backend.audit.record_in(txn, "scan.complete", item.repo, item.digest, digest=item.digest,
                                          status=item.status, packages=len(packages), sbom=item.sbom_digest,
                                          summary=advisories.summary(findings))
        return item

    def _match(self, item: ImageScan, packages: List[Package], distro: Optional[Distro]) -> List[advisories.Finding]:
        current = epoch()
        findings = advisories.match(packages, distro.release() if distro else "", records_of)
        item.findings = vulnerabilities.encode([f.as_dict() for f in findings[:FINDINGS_MAX]], FINDINGS_MAX_BYTES)
        item.summary = json.dumps(advisories.summary(findings))
        item.advisories_epoch = current
        item.matched_at = self._backend.clock()
        return findings

    def _pushed_sbom(self, repo: str, digest: str):
        """(its digest, packages, distribution) of the newest SBOM a team pushed as a referrer of
        the image, or None."""
        mine = [m for m in Manifest.by_subject.query(keys.image(repo, digest))
                if m.artifact_type in sbom.ARTIFACT_TYPES and m.deleted_at is None
                and sbom.GENERATOR_ANNOTATION not in (json.loads(m.annotations) if m.annotations else {})]
        for candidate in sorted(mine, key=lambda m: m.created_at, reverse=True):
            read = self._read_sbom(repo, candidate)
            if read is not None:
                return (candidate.digest, *read)
        return None

    def _read_sbom(self, repo: str, manifest: Manifest):
        try:
            document = json.loads(self._manifests.body(manifest))
            layer = next(layer for layer in document.get("layers") or []
                         if str(layer.get("mediaType", "")).split(";")[0] in sbom.ARTIFACT_TYPES)
            return sbom.read(self._blobs.small_blob(repo, layer["digest"], sbom.SBOM_MAX_BYTES))
        except (StopIteration, ValueError, KeyError, TypeError, RegistryError):
            return None

    def _store_sbom(self, repo: str, manifest: Manifest, document: dict, packages, distro, problems) -> Optional[str]:
        """The SBOM as a referrer of the image (its manifest's digest), or None where the
        repository takes none (a cache namespace, a quota reached: named in `problems`)."""
        body = sbom.cyclonedx(repo, manifest.digest, packages, distro, self._backend.clock().isoformat(), SCANNER_VERSION)
        body_digest = "sha256:" + hashlib.sha256(body).hexdigest()
        subject = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": int(manifest.size)}
        referrer = sbom.referrer(subject, body, body_digest, sbom.CYCLONEDX, generated=True)
        referrer_digest = "sha256:" + hashlib.sha256(referrer).hexdigest()
        try:
            self._blobs.fill(repo, body_digest, len(body), [body])  # any size: not through the API's body limit
            self._blobs.push_monolithic(repo, sbom.EMPTY_CONFIG["digest"], b"{}")
            self._manifests.put(repo, referrer_digest, referrer, spec.OCI_MANIFEST)
        except RegistryError as refused:
            problems.append(f"the SBOM was not stored as a referrer: {refused.message or refused}")
            return None
        return referrer_digest

    # --- advisories -------------------------------------------------------------------------

    def import_advisories(self, documents, rematch: bool = True) -> dict:
        """Store OSV advisories (all checked before any is written), count the epoch up, and ask
        for the stored scans' findings to be worked out again."""
        if not isinstance(documents, list) or not 1 <= len(documents) <= IMPORT_MAX:
            raise RegistryError(errors.ADMIN_INVALID, f"advisories is a list of 1 to {IMPORT_MAX} OSV documents")
        records = [record for document in documents for record in advisories.parse(document)]
        now = self._backend.clock()
        with Advisory.batch_write() as batch:
            for record in records:
                batch.save(Advisory(record.package, record.advisory_id, entries=json.dumps(record.entries),
                                    severity=record.severity, score=record.score, summary=record.summary or None,
                                    aliases=set(record.aliases) or None, modified=record.modified or None,
                                    withdrawn=record.withdrawn, imported_at=now))
        state = JobState(EPOCH_ITEM)
        state.update(actions=[JobState.epoch.add(1)])
        ids = sorted({record.advisory_id for record in records} | {d["id"] for d in documents})
        self._backend.audit.record("advisories.import", None, None, advisories=len(ids), packages=len(records),
                                   epoch=int(state.epoch), first=ids[:5])
        if rematch:
            self.queue({"rematch": True})
        return {"advisories": len(ids), "packages": len(records), "epoch": int(state.epoch)}

    def import_feeds(self, lease: Lease) -> dict:
        """The daily import of the configured feeds (feeds.py), going on from the lease's cursor."""
        from chalicelib.scanning import feeds
        with audit.acting_as(ACTOR):
            cursor = dict(lease.cursor or {})
            record = feeds.import_feeds(self, self._backend, cursor, IMPORT_MAX)
            lease.keep(cursor)
        return record

    def rematch(self, seconds: float) -> int:
        """Work out again the findings of the done scans older than the advisories, for about
        `seconds`, going on where the last run stopped; queued again while some are left."""
        with StepRecord("rematch") as record:
            lease = Lease.take(REMATCH_JOB, seconds, self._backend.clock)
            if lease is None:
                record["skipped"] = True
                return 0
            matched = 0
            try:
                current = epoch()
                pages = Scan(ImageScan, lease.cursor, seconds,
                             (ImageScan.status == "done") & (ImageScan.advisories_epoch < current))
                for item in pages:
                    self._rematch(item)
                    matched += 1
                lease.keep(None if pages.finished else pages.cursor)
            finally:
                lease.give_back()
            if not pages.finished:
                self.queue({"rematch": True})
            record["matched"] = matched
            return matched

    def _rematch(self, item: ImageScan) -> None:
        read = self._stored_sbom(item)
        if read is None:  # its SBOM is gone: the layers once more
            self.scan(item.repo, item.digest)
        else:
            self._match_again(item, *read)

    def _stored_sbom(self, item: ImageScan):
        """(packages, distribution) of the SBOM a scan names, or None where it names none or it is gone."""
        if not item.sbom_digest:
            return None
        try:
            return self._read_sbom(item.repo, self._manifests.get(item.repo, item.sbom_digest))
        except RegistryError:
            return None

    def _match_again(self, item: ImageScan, packages: List[Package], distro: Optional[Distro]) -> List[advisories.Finding]:
        """A stored scan's findings worked out again at the advisories' epoch, and saved."""
        findings = self._match(item, packages, distro)
        item.update(actions=[ImageScan.findings.set(item.findings), ImageScan.summary.set(item.summary),
                             ImageScan.advisories_epoch.set(item.advisories_epoch),
                             ImageScan.matched_at.set(item.matched_at)])
        return findings

    # --- what a team sees -------------------------------------------------------------------

    def queue(self, message: dict) -> bool:
        """Ask the scans queue for work (a scan, a rematch); False where there is no queue."""
        return delivery.queue_scan(self._backend, message)

    def report(self, repo: str, reference: str) -> dict:
        """What `dockless scan show` prints of a tag or digest: per image (an index: each of its
        images), its status, SBOM, packages and findings (with what the namespace accepts)."""
        if validate.is_digest(reference):
            digest = reference
        else:
            digest = self._manifests.tag_digest(repo, reference)
            if digest is None:
                raise RegistryError(errors.MANIFEST_UNKNOWN, {"tag": reference})
        manifest = self._manifests.get(repo, digest)
        accepted = SettingsService(self._backend).accepted_risks(keys.namespace_of(repo))
        today = self._backend.clock().date()
        if manifest.media_type in spec.INDEX_MEDIA_TYPES:
            images = [self._image_report(repo, child, accepted, today) for child in sorted(manifest.children or ())]
        else:
            images = [self._image_report(repo, digest, accepted, today)]
        statuses = {image["status"] for image in images}
        status = "done" if statuses <= {"done", "skipped"} and "done" in statuses else \
            next((s for s in ("failed", "pending") if s in statuses), "skipped")
        findings = [finding for image in images for finding in image["vulnerabilities"]]
        return {"repository": repo, "reference": reference, "digest": digest, "media_type": manifest.media_type,
                "status": status, "complete": all(i["complete"] or i["status"] == "skipped" for i in images),
                "images": images,
                "packages": [package for image in images for package in image["packages"]],
                "vulnerabilities": findings, "summary": advisories.summary(
                    advisories.Finding.from_dict(f) for f in findings if not f.get("accepted"))}

    def _image_report(self, repo: str, digest: str, accepted: dict, today) -> dict:
        try:
            item = ImageScan.get(repo, digest, consistent_read=True)
        except DoesNotExist:
            item = None
        report = {"digest": digest, "status": "pending", "complete": False, "sbom": None, "distro": None, "packages": [],
                  "vulnerabilities": [], "problems": [], "scanned_at": None}
        if item is None:
            self.queue({"repository": repo, "digest": digest})
            return report
        findings = vulnerabilities.decode(item.findings)
        packages: List[Package] = []
        read = self._stored_sbom(item) if item.status == "done" else None
        if read is not None:
            packages = read[0]
            if int(item.advisories_epoch or 0) < epoch():
                findings = [f.as_dict() for f in self._match_again(item, *read)]
        for finding in findings:
            if vulnerabilities.is_accepted(((a, r["until"]) for a, r in accepted.items()), finding, today):
                risk = next(accepted[name] for name in (finding["id"], *finding.get("aliases", ())) if name in accepted)
                finding["accepted"] = {"until": risk["until"], "reason": risk["reason"], "by": risk.get("by")}
        report.update(status=item.status, distro=item.distro, problems=json.loads(item.problems or "[]"),
                      complete=not item.problems,
                      sbom={"digest": item.sbom_digest, "source": item.sbom_source,
                            "artifactType": sbom.CYCLONEDX} if item.sbom_digest else None,
                      packages=[p.as_dict() for p in packages], vulnerabilities=findings,
                      scanned_at=item.scanned_at.isoformat() if item.scanned_at else None)
        return report


# --- the consumers -----------------------------------------------------------------------------

def handle(backend, body: str, seconds: float) -> None:
    """One message of the scans queue: {"repository", "digest"} or {"rematch": true}."""
    message = json.loads(body)
    service = ScanService(backend)
    if message.get("rematch"):
        service.rematch(seconds)
    elif isinstance(message.get("repository"), str) and isinstance(message.get("digest"), str):
        service.scan(message["repository"], message["digest"])


def on_scan_records(backend, records, seconds: float) -> None:
    """Lambda's event source mapping of the scans queue."""
    for record in records:
        handle(backend, record.body, seconds)


def pump(backend, seconds: float) -> int:
    """The local stack's consumer of the scans queue: what is there now, handled. How many."""
    with StepRecord("scan_pump", emitted=False):
        return _pump(backend, seconds)


def _pump(backend, seconds: float) -> int:
    url = backend.settings.scans_queue_url
    if not url:
        return 0
    sqs = backend.client("sqs")
    handled = 0
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        try:
            handle(backend, message["Body"], seconds)
        except Exception:  # noqa: BLE001 - a failed scan is logged; the message goes back (as Lambda's would)
            LOG.exception("scan failed: %s", message["Body"][:200])
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        handled += 1
    return handled
