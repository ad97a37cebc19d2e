"""Advisories fetched on a schedule from the feeds a team configured (DOCKLESS_ADVISORY_FEEDS,
the stack's AdvisoryFeeds: https URLs of OSV's per-ecosystem zip archives or OSV JSON), once a
day by the `import_advisories` job.

Each feed is fetched by the registry's one outbound rule (chalicelib/runtime/outbound.py): https
to a host that is not an internal address, every redirect held to the same rule (loopback only
on the local stack), at most FEED_MAX_BYTES, within FEED_SECONDS. What it sends is checked as an
import is (every advisory parsed before any is written); a feed whose bytes are the same as at
its last import (their SHA-256, kept in the job's cursor) is not imported again. A feed that
fails is named in the job's record, and the others go on.
"""
from __future__ import annotations
import hashlib
import io
import json
import zipfile
from typing import Iterator, List
from urllib.parse import urlsplit

from chalicelib.oci.errors import RegistryError
from chalicelib.runtime import outbound

FEED_MAX_BYTES = 256 * 1024 * 1024
FEED_SECONDS = 300
ENTRY_MAX_BYTES = 4 * 1024 * 1024  # one advisory in an archive
ENTRIES_MAX = 500_000


class FeedUnreadable(Exception):
    """A feed that is neither OSV JSON nor a zip archive of it."""


def documents(data: bytes) -> Iterator[dict]:
    """The OSV documents of a feed's bytes: a zip archive of JSON files, a JSON list or one advisory."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = [e for e in archive.infolist() if e.filename.endswith(".json") and not e.is_dir()]
                if len(entries) > ENTRIES_MAX:
                    raise FeedUnreadable(f"more than {ENTRIES_MAX} advisories in one archive")
                for entry in entries:
                    if entry.file_size > ENTRY_MAX_BYTES:
                        raise FeedUnreadable(f"{entry.filename[:100]} is over {ENTRY_MAX_BYTES} bytes")
                    with archive.open(entry) as opened:
                        content = opened.read(ENTRY_MAX_BYTES + 1)  # the size in the header may lie
                    if len(content) > ENTRY_MAX_BYTES:
                        raise FeedUnreadable(f"{entry.filename[:100]} expands over {ENTRY_MAX_BYTES} bytes")
                    yield json.loads(content)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError) as error:
            raise FeedUnreadable(f"not an archive of OSV JSON ({str(error)[:100]})") from None
        return
    try:
        document = json.loads(data)
    except ValueError:
        raise FeedUnreadable("neither OSV JSON nor a zip archive of it") from None
    yield from document if isinstance(document, list) else [document]


def _allowed(in_lambda: bool):
    def allowed(url: str) -> bool:
        if urlsplit(url).hostname in outbound.LOOPBACK_HOSTS and in_lambda:
            return False
        return outbound.may_fetch(url, url)
    return allowed


def import_feeds(service, backend, cursor: dict, batch: int) -> dict:
    """Fetch each feed and import what changed (`service`: a ScanService). The record of the run:
    per feed, what was imported or why not; `cursor["digests"]` is updated."""
    digests = dict(cursor.get("digests") or {})
    report: List[dict] = []
    imported = False
    for url in backend.settings.advisory_feeds:
        budget = outbound.Budget(FEED_SECONDS, "the advisory feed")
        try:
            data = outbound.fetch(url, _allowed(backend.settings.in_lambda), budget, FEED_MAX_BYTES,
                                  {"Accept": "application/zip, application/json"})
        except outbound.Unreachable as error:
            report.append({"feed": url, "error": str(error)[:300]})
            continue
        finally:
            budget.end()
        digest = hashlib.sha256(data).hexdigest()
        if digests.get(url) == digest:
            report.append({"feed": url, "unchanged": True})
            continue
        counted = {"feed": url, "advisories": 0}
        try:
            pending: List[dict] = []
            for document in documents(data):
                pending.append(document)
                if len(pending) == batch:
                    counted["advisories"] += service.import_advisories(pending, rematch=False)["advisories"]
                    pending = []
            if pending:
                counted["advisories"] += service.import_advisories(pending, rematch=False)["advisories"]
        except (FeedUnreadable, RegistryError) as error:
            counted["error"] = str(error)[:300]
            report.append(counted)
            continue
        digests[url] = digest
        imported = imported or counted["advisories"] > 0
        report.append(counted)
    cursor["digests"] = digests
    if imported:
        service.queue({"rematch": True})
    return {"feeds": report}
