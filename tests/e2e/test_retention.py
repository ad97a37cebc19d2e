"""Retention and garbage collection as a platform team runs them: rules set with the CLI, a
preview, `dockless gc` expiring what docker pushed (history and audit say `retention`), docker no
longer pulling it, and the bucket's objects and bytes going down once the window has passed."""
import json

from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import build, pushed_digest


def test_retention_expires_what_docker_pushed_and_gc_frees_the_bytes(stack, docker, dockerd, dockless, tmp_path):
    digests = {}
    for number, tag in enumerate(("v1", "old", "new")):
        image = f"{stack.host}/keep/app:{tag}"
        build(docker, tmp_path / "ctx", image, {"keep.txt": f"{tag} {number}", "big.bin": tag * 4000}, f"N={number}", tag)
        digests[tag] = pushed_digest(docker("push", image).stdout)
    said = dockless("retention", "set", "keep/app", "--keep-last", "1", "--exempt", "v*").stdout
    assert said.strip() == "retention of keep/app: keep-last=1,exempt=v*"
    assert "retention" in dockless("repo", "show", "keep/app").stdout
    preview = dockless("retention", "preview", "keep").stdout.splitlines()
    assert preview[0] == "keep/app:old  (keep rules)"
    assert preview[-1].startswith("1 to expire, ") and preview[-1].endswith(" of blobs only they need")

    report = json.loads(dockless("gc", "--json").stdout)
    assert [(e["repository"], e["tag"]) for e in report["expired"]] == [("keep/app", "old")]
    docker("rmi", f"{stack.host}/keep/app:old")
    refused = run(DOCKER, "pull", f"{stack.host}/keep/app:old", env=dockerd, check=False)
    assert refused.returncode != 0 and "manifest unknown" in refused.stderr
    docker("pull", f"{stack.host}/keep/app:v1")
    [event] = [json.loads(line) for line in dockless("history", "keep/app:old", "--json", "-n", "1").stdout.splitlines()]
    assert (event["action"], event["actor"], event["from"]) == ("expire", "retention", digests["old"])
    assert '"tag.expire"' in dockless("audit", "--repo", "keep/app", "--json").stdout
