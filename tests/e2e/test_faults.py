"""The faults tier: docker and skopeo against a local stack whose AWS answers as a busy account
would (dockless serve --faults: DynamoDB transaction conflicts and throttling, S3 SlowDown, and
writes that overlap conflicting as DynamoDB's do). Pushes and pulls still succeed byte-exact, the
registry never answers a 5xx other than the 503 with Retry-After once its own retries are spent
(runtime/retries.py), and fifty pushes at once into one repository all succeed."""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dockless.client.auth import RegistryAuth
from tests.e2e import programs
from tests.e2e.conftest import docker_login, run
from tests.e2e.images import dockerfile_context, pushed_digest
from tests.e2e.programs import DOCKER

# A busy hour of a real account, several times over: a fifth of writes conflicting, one call in
# twenty throttled, S3 slowing one in twenty down.
FAULTS = "dynamodb.TransactionConflict=0.2,dynamodb.Throttling=0.05,dynamodb.ProvisionedThroughputExceeded=0.02," \
         "s3.SlowDown=0.05,dynamodb.Contention"
CONCURRENT_PUSHES = 50
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def busy_stack(tmp_path_factory):
    work = Path(tmp_path_factory.mktemp("busy-stack"))
    with programs.dockless_serve(work, args=("--faults", FAULTS)) as running:
        running.log = work / "serve.log"
        yield running


def injected(stack) -> dict:
    counts = {}
    for line in stack.log.read_text().splitlines():
        if "fault injected: " in line:
            kind = line.split("fault injected: ")[1].strip()
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_docker_and_skopeo_push_and_pull_byte_exact_while_aws_is_busy(busy_stack, dockerd, skopeo, registry_auth,
                                                                      tmp_path):
    docker_login(dockerd, busy_stack.host, busy_stack.admin_token)
    registry_auth(busy_stack.host, busy_stack.admin_token)
    images = []
    for number in range(3):  # three repositories of one namespace, sharing their first layer
        image = f"{busy_stack.host}/busy/app{number}:1"
        dockerfile_context(tmp_path / f"ctx{number}", [200_000, 100_000 + number, 30_000])
        run(DOCKER, "build", "-q", "-t", image, str(tmp_path / f"ctx{number}"), env=dockerd)
        image_id = run(DOCKER, "image", "inspect", image, "--format", "{{.Id}}", env=dockerd).stdout.strip()
        digest = pushed_digest(run(DOCKER, "push", image, env=dockerd).stdout)
        images.append((image, image_id, digest))
    for image, image_id, digest in images:
        run(DOCKER, "rmi", image, env=dockerd)
        assert f"Digest: {digest}" in run(DOCKER, "pull", image, env=dockerd).stdout
        assert run(DOCKER, "image", "inspect", image, "--format", "{{.Id}}", env=dockerd).stdout.strip() == image_id
        run(DOCKER, "rmi", image, env=dockerd)
    source, copy = f"docker://{images[0][0]}", f"docker://{busy_stack.host}/busy/copy:1"
    skopeo("copy", "--dest-tls-verify=false", "--src-tls-verify=false", source, f"dir:{tmp_path / 'copied'}")
    skopeo("copy", "--dest-tls-verify=false", "--src-tls-verify=false", f"dir:{tmp_path / 'copied'}", copy)
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", copy).stdout)
    assert inspected["Digest"] == images[0][2]

    statuses = [record["status"] for record in busy_stack.requests()]
    assert 500 not in statuses and not [s for s in statuses if s >= 500 and s != 503]
    # Hundreds of DynamoDB calls: conflicts and throttling were met (the registry's few S3 calls may
    # draw no SlowDown in a run; tests/dockless/test_faults.py shows that one's wire format).
    counts = injected(busy_stack)
    throttled = counts.get("dynamodb.Throttling", 0) + counts.get("dynamodb.ProvisionedThroughputExceeded", 0)
    assert counts.get("dynamodb.TransactionConflict", 0) > 0 and throttled > 0, counts


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push(url: str, auth, number: int, shared: bytes) -> tuple:
    """One push as a client makes it, and as docker does not retry: each blob unless the repository
    has it (HEAD), the manifest under its own tag, then under `latest`. Every answer must be the
    success a client expects; the manifest's digest and its blobs."""
    http = requests.Session()
    http.auth = auth
    config = json.dumps({"architecture": "amd64", "os": "linux", "push": number}).encode()
    own = os.urandom(2000 + number)
    for data in (config, shared, own):
        if http.head(f"{url}/v2/crowd/app/blobs/{_digest(data)}").status_code == 200:
            continue
        answer = http.post(f"{url}/v2/crowd/app/blobs/uploads/", params={"digest": _digest(data)}, data=data)
        assert answer.status_code == 201, (number, answer.status_code, answer.text)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": _digest(config), "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(d),
                                   "size": len(d)} for d in (shared, own)]}).encode()
    for tag in (f"p{number}", "latest"):
        answer = http.put(f"{url}/v2/crowd/app/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
        assert answer.status_code == 201, (number, tag, answer.status_code, answer.text)
    return _digest(body), {_digest(d): d for d in (config, shared, own)}


def test_fifty_pushes_at_once_into_one_repository_all_succeed_while_aws_is_busy(busy_stack):
    """Fifty clients push into one namespace and one repository at once: one layer all of them
    share (its link and the namespace's entry for it), each its own config and layer (the
    namespace's count), each its own tag and all of them `latest` (one tag item), the repository's
    catalog entry. DynamoDB's conflicts between overlapping writes are on, with the rest of a busy
    hour's faults. Every push succeeds at its first try, every image pulls byte-exact, and the
    namespace counts each distinct blob once."""
    auth = RegistryAuth("admin", busy_stack.admin_token)
    shared = os.urandom(5000)
    mark = busy_stack.mark()
    with ThreadPoolExecutor(max_workers=CONCURRENT_PUSHES) as pool:
        pushed = list(pool.map(lambda n: _push(busy_stack.url, auth, n, shared), range(CONCURRENT_PUSHES)))
    http = requests.Session()
    http.auth = auth
    blobs = {}
    for number, (digest, layers) in enumerate(pushed):
        answer = http.get(f"{busy_stack.url}/v2/crowd/app/manifests/p{number}", headers={"Accept": OCI_MANIFEST})
        assert answer.status_code == 200 and answer.headers["Docker-Content-Digest"] == digest
        blobs.update(layers)
    for blob_digest, data in blobs.items():
        assert http.get(f"{busy_stack.url}/v2/crowd/app/blobs/{blob_digest}").content == data
    latest = http.head(f"{busy_stack.url}/v2/crowd/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert latest.headers["Docker-Content-Digest"] in {digest for digest, _ in pushed}
    assert "crowd/app" in http.get(f"{busy_stack.url}/v2/_catalog").json()["repositories"]
    quota = http.get(f"{busy_stack.url}/dockless/admin/v1/quotas/crowd").json()
    assert quota["stored_bytes"] == sum(len(data) for data in blobs.values())  # 101 distinct blobs, each once
    statuses = [record["status"] for record in busy_stack.requests_since(mark)]
    assert not [status for status in statuses if status >= 500]
    assert injected(busy_stack).get("dynamodb.Contention", 0) > 0  # the pushes did overlap
