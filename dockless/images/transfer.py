"""`dockless push` and `dockless pull`: whole images between a local source and the registry,
blobs in parallel and straight to or from the bucket."""
import concurrent.futures
import dataclasses
import json
from pathlib import Path
from typing import List

from dockless.client.registry import RegistryClient
from chalicelib.oci.reference import Reference
from dockless.images.sources import REF_NAME, Image, layout_blob
from dockless.ui import UI

# Blobs moved at once; each multipart blob adds its own parallel parts.
PARALLEL_BLOBS = 3


@dataclasses.dataclass
class PushResult:
    digest: str
    uploaded: List[str]
    skipped: List[str]
    uploaded_bytes: int


def push(image: Image, destination: Reference, client: RegistryClient, ui: UI) -> PushResult:
    name = destination.name
    client.will_push(name)
    missing = [blob for blob in image.blobs if not client.has_blob(name, blob.digest)]
    skipped = [blob.digest for blob in image.blobs if blob not in missing]
    with ui.progress() as progress, concurrent.futures.ThreadPoolExecutor(PARALLEL_BLOBS) as pool:
        def upload(blob):
            task = progress.add_task(blob.digest[7:19], total=blob.size)
            with open(blob.path, "rb") as source:
                client.upload_blob(name, blob.digest, source.fileno(), blob.offset, blob.size,
                                   lambda n: progress.advance(task, n))
        for future in [pool.submit(upload, blob) for blob in missing]:
            future.result()
    for manifest in image.manifests[:-1]:
        client.put_manifest(name, manifest.digest, manifest.body, manifest.media_type)
    top = image.top
    digest = client.put_manifest(name, destination.digest or destination.tag, top.body, top.media_type)
    return PushResult(digest, [b.digest for b in missing], skipped, sum(b.size for b in missing))


def pull(source: Reference, directory: Path, client: RegistryClient, ui: UI) -> str:
    """Write the image (and, for an index, every child) as an OCI layout; returns its digest.
    Every manifest is checked before its digests name a file (sources.layout_blob)."""
    (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    top = client.get_manifest(source.name, source.reference)
    wanted, pending, fetched = {}, [top], {top.digest}
    while pending:  # each manifest once, however often indexes list it
        manifest = pending.pop()
        layout_blob(directory, manifest.digest).write_bytes(manifest.body)
        children = [child for child in dict.fromkeys(manifest.children) if child not in fetched]
        fetched.update(children)
        pending.extend(client.get_manifest(source.name, child) for child in children)
        wanted.update({blob: manifest.descriptors[blob][1] for blob in manifest.blobs})
    fetch = {d: size for d, size in wanted.items() if not layout_blob(directory, d).exists()}
    with ui.progress() as progress, concurrent.futures.ThreadPoolExecutor(PARALLEL_BLOBS) as pool:
        def download(blob_digest, size):
            task = progress.add_task(blob_digest[7:19], total=size)
            client.fetch_blob(source.name, blob_digest, size, layout_blob(directory, blob_digest),
                              lambda n: progress.advance(task, n))
        for future in [pool.submit(download, d, s) for d, s in fetch.items()]:
            future.result()
    index_path = directory / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    name = source.digest or source.tag
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != name]
    index["manifests"].append({"mediaType": top.media_type, "digest": top.digest, "size": len(top.body),
                               "annotations": {REF_NAME: name}})
    index_path.write_text(json.dumps(index))
    return top.digest


