"""The faults tier: docker and skopeo against a local stack whose AWS answers as a busy account
would (dockless serve --faults: DynamoDB transaction conflicts and throttling, S3 SlowDown).
Pushes and pulls still succeed byte-exact, and the registry never answers a 5xx other than the
503 with Retry-After once its own retries are spent (runtime/retries.py)."""
import json
from pathlib import Path

import pytest

from tests.e2e import programs
from tests.e2e.conftest import docker_login, run
from tests.e2e.images import dockerfile_context, pushed_digest
from tests.e2e.programs import DOCKER

# A busy hour of a real account, several times over: a fifth of writes conflicting, one call in
# twenty throttled, S3 slowing one in twenty down.
FAULTS = "dynamodb.TransactionConflict=0.2,dynamodb.Throttling=0.05,dynamodb.ProvisionedThroughputExceeded=0.02," \
         "s3.SlowDown=0.05"


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
