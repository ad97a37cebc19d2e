"""`dockless mirror SRC DEST`: copy images between two registries (ours, the reference registry, any
OCI registry), every platform of an index, optionally with their signatures (the containers/image
extension) and referrers.

Each blob the destination lacks is downloaded once into a spool directory, verified against its
digest, then uploaded: to our registry straight into its bucket (the direct-upload extension),
to any other with the standard upload. Manifests follow their blobs and children, the tag last,
so a destination never names what it does not hold. Killed half-way, the next run resumes: blobs
the destination has are skipped, blobs downloaded before are not fetched again, and a download cut
short continues from where it stopped (an HTTP Range request). `--dry-run` lists what a run would
copy and copies nothing.
"""
import concurrent.futures
import dataclasses
import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

from chalicelib.oci import spec
from chalicelib.oci.formats import ParsedManifest
from chalicelib.oci.imagediff import index_platforms
from chalicelib.oci.sizes import human
from dockless.client.registry import ClientError, RegistryClient, limited
from chalicelib.oci.reference import Reference
from dockless.ui import UI

PARALLEL_BLOBS = 3
SIGNATURES = "/extensions/v2/{name}/signatures/{digest}"


@dataclasses.dataclass
class Report:
    """What one run did (or, dry, would do), image by image."""
    lines: List[str] = dataclasses.field(default_factory=list)
    copied_blobs: int = 0
    copied_bytes: int = 0
    skipped_blobs: int = 0
    resumed_bytes: int = 0
    manifests: int = 0
    signatures: int = 0


class Mirror:
    def __init__(self, source: RegistryClient, destination: RegistryClient, spool: Path, ui: UI,
                 dry_run: bool = False, with_signatures: bool = False, with_referrers: bool = False,
                 platform: Optional[str] = None):
        self._src, self._dst, self._spool, self._ui = source, destination, spool, ui
        # None: an index is copied whole; "os/arch[/variant]": only that image, which the tag then names.
        self._platform = platform
        self._dry, self._signatures, self._referrers = dry_run, with_signatures, with_referrers
        self.report = Report()
        spool.mkdir(parents=True, exist_ok=True)

    def tags(self, source: Reference, pattern: Optional[str]) -> List[str]:
        """What to copy: the source's one reference, or its tags matching a pattern ("*": all)."""
        if not pattern:
            return [source.reference]
        found, last = [], None
        while True:
            query = {"n": spec.PAGE_MAX, **({"last": last} if last else {})}
            page = self._src.request("GET", f"/v2/{source.name}/tags/list", (200,), "listing the tags",
                                     params=query).json().get("tags") or []
            found.extend(page)
            if len(page) < spec.PAGE_MAX:
                break
            last = page[-1]
        return sorted(tag for tag in found if fnmatch.fnmatchcase(tag, pattern))

    def image(self, source_name: str, reference: str, destination_name: str,
              destination_reference: Optional[str] = None) -> str:
        """Copy one image (an index with every child), then its signatures and referrers; returns
        its digest."""
        top = self._src.get_manifest(source_name, reference)
        if self._platform and top.media_type in spec.INDEX_MEDIA_TYPES:
            top = self._src.get_manifest(source_name, self._child_for(top))
        manifests = self._closure(source_name, top)
        blobs: Dict[str, int] = {}
        for manifest in manifests:
            blobs.update({d: manifest.descriptors[d][1] for d in manifest.blobs})
        if not self._dry:
            self._dst.will_push(destination_name)
        missing = {d: size for d, size in blobs.items() if not self._dst.has_blob(destination_name, d)}
        self.report.skipped_blobs += len(blobs) - len(missing)
        target = destination_reference or reference
        self.report.lines.append(
            f"{source_name}:{reference} -> {destination_name}:{target} {top.digest}: "
            f"{len(missing)} of {len(blobs)} blobs to copy ({human(sum(missing.values()))})"
            + (f", {len(manifests)} manifests" if len(manifests) > 1 else ""))
        if self._dry:
            return top.digest
        self._copy_blobs(source_name, destination_name, missing)
        for manifest in manifests[:-1]:  # children first, by digest
            self._dst.put_manifest(destination_name, manifest.digest, manifest.body, manifest.media_type)
        self._dst.put_manifest(destination_name, target, top.body, top.media_type)
        self.report.manifests += len(manifests)
        if self._signatures:
            self._copy_signatures(source_name, destination_name, top.digest)
        if self._referrers:
            for referrer in self._referrers_of(source_name, top.digest):
                self.image(source_name, referrer, destination_name, referrer)
        return top.digest

    # --- plumbing --------------------------------------------------------------------------------

    def _child_for(self, index: ParsedManifest) -> str:
        platforms = index_platforms(json.loads(index.body))
        if self._platform not in platforms:
            raise ClientError(f"{index.digest} has no {self._platform} image (it has {', '.join(sorted(platforms))})")
        return platforms[self._platform]

    def _closure(self, name: str, top: ParsedManifest, seen: Optional[set] = None) -> List[ParsedManifest]:
        """The manifest and, for an index, every child (children first, the top last), each
        fetched once however often indexes list it."""
        seen = {top.digest} if seen is None else seen
        found = []
        for child in dict.fromkeys(top.children):
            if child not in seen:
                seen.add(child)
                found.extend(self._closure(name, self._src.get_manifest(name, child), seen))
        return found + [top]

    def _copy_blobs(self, source_name: str, destination_name: str, missing: Dict[str, int]) -> None:
        with self._ui.progress() as progress, concurrent.futures.ThreadPoolExecutor(PARALLEL_BLOBS) as pool:
            def copy(digest: str, size: int) -> None:
                down = progress.add_task(f"↓ {digest[7:19]}", total=size)
                path = self._download(source_name, digest, size, lambda n: progress.advance(down, n))
                up = progress.add_task(f"↑ {digest[7:19]}", total=size)
                with open(path, "rb") as data:
                    self._dst.upload_blob(destination_name, digest, data.fileno(), 0, size,
                                          lambda n: progress.advance(up, n))
                path.unlink()
                self.report.copied_blobs += 1
                self.report.copied_bytes += size
            for future in [pool.submit(copy, d, s) for d, s in missing.items()]:
                future.result()

    def _download(self, name: str, digest: str, size: int, progress: Callable[[int], None]) -> Path:
        """The blob's verified bytes in the spool: kept from an earlier run, continued from a
        partial download, or fetched whole."""
        path = self._spool / digest.replace(":", "-")
        if path.exists():
            progress(size)
            return path
        partial = path.with_name(path.name + ".partial")
        have = partial.stat().st_size if partial.exists() else 0
        if have and have == size:
            self.report.resumed_bytes += have  # cut off after the last byte: only the check is left
            progress(have)
        else:
            self._fetch(name, digest, size, partial, have if 0 < have < size else 0, progress)
        hasher = hashlib.sha256()
        with open(partial, "rb") as written:
            for piece in iter(lambda: written.read(spec.MiB), b""):
                hasher.update(piece)
        if "sha256:" + hasher.hexdigest() != digest:
            partial.unlink()
            raise ClientError(f"{digest} arrived from the source with another digest; run again to fetch it anew")
        partial.rename(path)
        return path

    def _fetch(self, name: str, digest: str, size: int, partial: Path, have: int,
               progress: Callable[[int], None]) -> None:
        """Write the blob to `partial`, after the `have` bytes already there if the source serves
        ranges (206), else from the start; never more than its `size`."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._src.request("GET", f"/v2/{name}/blobs/{digest}", (200, 206), f"fetching {digest}",
                               stream=True, timeout=300, headers=headers) as response:
            resumed = response.status_code == 206
            if resumed:
                self.report.resumed_bytes += have
                progress(have)
            with open(partial, "ab" if resumed else "wb") as out:
                for piece in limited(response, size - have if resumed else size, digest):
                    out.write(piece)
                    progress(len(piece))

    def _copy_signatures(self, source_name: str, destination_name: str, digest: str) -> None:
        answer = self._src.request("GET", SIGNATURES.format(name=source_name, digest=digest), (200, 404),
                                   f"reading the signatures of {digest}")
        signatures = answer.json().get("signatures", []) if answer.status_code == 200 else []
        for signature in signatures:
            # 409: the destination has a signature of this name already (an earlier run).
            response = self._dst.request("PUT", SIGNATURES.format(name=destination_name, digest=digest), (201, 409),
                                         f"copying a signature of {digest}", json=signature)
            self.report.signatures += response.status_code == 201

    def _referrers_of(self, name: str, digest: str) -> List[str]:
        answer = self._src.request("GET", f"/v2/{name}/referrers/{digest}", (200, 404),
                                   f"listing the referrers of {digest}")
        if answer.status_code != 200:
            return []
        return [entry["digest"] for entry in answer.json().get("manifests", [])]

