"""A storage quota as a platform team meets it: set with the CLI, a docker push past it refused with
a message docker prints, nothing of that push left behind, the 80 % warning in the audit trail,
and `dockless usage` showing the namespace against its quota."""
import json
import os
import re

from chalicelib.oci.sizes import human
from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import build, pushed_digest


def namespace_usage(dockless, namespace):
    (row,) = json.loads(dockless("usage", "--namespace", namespace, "--json").stdout)["namespaces"]
    return row


def test_a_docker_push_past_the_quota_is_refused_and_leaves_nothing(stack, docker, dockerd, dockless, tmp_path):
    first = f"{stack.host}/capped/app:1"
    build(docker, tmp_path / "ctx", first, {"keep.txt": "one", "big.bin": os.urandom(20_000).hex()}, "N=1", "one")
    docker("push", first)
    stored = namespace_usage(dockless, "capped")["stored_bytes"]
    assert stored > 20_000

    # Room for a few KiB more: the next image's new layer (about 60 KiB gzipped) does not fit.
    limit = stored + 5_000
    said = dockless("quota", "set", "capped", str(limit)).stdout.strip()
    assert said == f"capped: {human(stored)} stored of {human(limit)} ({stored * 100 / limit:.0f} %)"
    second = f"{stack.host}/capped/app:2"
    build(docker, tmp_path / "ctx", second, {"keep.txt": "two", "big.bin": os.urandom(60_000).hex()}, "N=2", "two")
    refused = run(DOCKER, "push", second, env=dockerd, check=False)
    assert refused.returncode != 0
    message = re.search(r"denied: quota exceeded for capped: (\S+ \S+) of (\S+ \S+); delete images or ask an admin",
                        refused.stderr)
    assert message, refused.stderr
    assert message.group(2) == human(limit)
    # Nothing of the refused push: the namespace stores what it did, the tag does not exist.
    assert namespace_usage(dockless, "capped")["stored_bytes"] == stored
    docker("rmi", second)
    missing = run(DOCKER, "pull", second, env=dockerd, check=False)
    assert missing.returncode != 0 and "manifest unknown" in missing.stderr
    trail = [json.loads(line) for line in dockless("audit", "--repo", "capped/app", "--json").stdout.splitlines()]
    assert [e["reference"] for e in trail if e["action"] == "manifest.push"] == ["1"]

    # An admin raises the quota to a little over what the push (rebuilt) needs: it goes through, and the
    # namespace at 80 % or more of its quota is a warning in the audit trail.
    build(docker, tmp_path / "ctx2", second, {"keep.txt": "two", "big.bin": os.urandom(60_000).hex()}, "N=2", "two")
    dockless("quota", "set", "capped", str(stored + 75_000))
    digest = pushed_digest(docker("push", second).stdout)
    after = namespace_usage(dockless, "capped")
    assert after["stored_bytes"] > stored + 60_000 and after["quota_bytes"] == stored + 75_000
    assert after["used_percent"] == round(after["stored_bytes"] * 100 / after["quota_bytes"], 1)
    audit = [json.loads(line) for line in dockless("audit", "--namespace", "capped", "--json").stdout.splitlines()]
    warnings = [e for e in audit if e["action"] == "quota.warning"]
    assert warnings and warnings[-1]["detail"]["quota"] == stored + 75_000
    table = dockless("usage", "--namespace", "capped").stdout
    assert re.search(rf"^capped\s+{re.escape(human(after['stored_bytes']))}\s+{re.escape(human(stored + 75_000))}\s+"
                     rf"{after['used_percent']:.0f} %", table, re.MULTILINE), table
    docker("rmi", first, second)
    docker("pull", f"{stack.host}/capped/app@{digest}")
