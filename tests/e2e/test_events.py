"""Events and signed webhooks end to end: `dockless webhook add` on the served stack prints the
signing secret; docker pushes; a receiver on loopback (tests/webhooks.py) gets the push as a
CloudEvent whose Standard Webhooks signature it verifies with that secret, naming the repository
and the manifest digest; a target that is down for a while gets its deliveries once it is back,
in order; `dockless webhook deliveries` shows what happened."""
import re

from tests.e2e.images import dockerfile_context, pushed_digest
from tests.e2e.programs import wait_for
from tests.webhooks import Receiver


def test_a_push_reaches_a_webhook_signed_and_a_target_that_was_down_gets_it_later(stack, docker, dockless, tmp_path):
    receiver = Receiver()
    try:
        added = dockless("webhook", "add", "hooked", receiver.url, "--events", "push,tag").stdout
        secret = re.search(r"signing secret \(shown once\): (whsec_\S+)", added).group(1)
        webhook_id = re.search(r"webhook (wh_[0-9a-f]{16}) sends push,tag events of hooked", added).group(1)
        receiver.secrets.append(secret)
        assert webhook_id in dockless("webhook", "list", "hooked").stdout

        image = f"{stack.host}/hooked/app:1"
        dockerfile_context(tmp_path / "ctx", [5_000])
        docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
        digest = pushed_digest(docker("push", image).stdout)
        wait_for(lambda: receiver.events("push"), "the push's delivery", seconds=30)
        (event,) = receiver.events("push")
        assert event["type"] == "dev.dockless.manifest.push" and event["subject"] == f"hooked/app@{digest}"
        assert event["data"]["repository"] == "hooked/app" and event["data"]["digest"] == digest
        assert receiver.refused == []

        receiver.mode = "500"  # the pipeline is down
        for tag in ("2", "3"):
            docker("tag", image, f"{stack.host}/hooked/app:{tag}")
            docker("push", f"{stack.host}/hooked/app:{tag}")
        wait_for(lambda: re.search(r"retrying\s+500 .*\(answered 500\)",
                                   dockless("webhook", "deliveries", "hooked", webhook_id).stdout),
                 "a failed attempt in the delivery log", seconds=30)
        receiver.mode = None  # back (the first retry comes 5 s after the failure)
        wait_for(lambda: len(receiver.events("push")) == 3, "the deliveries that waited", seconds=60)
        assert [e["data"]["tag"] for e in receiver.events("push")] == ["1", "2", "3"]
        ids = [h["webhook-id"] for h, e in receiver.received if e["data"]["kind"] == "push"]
        assert len(set(ids)) == 3
        log = dockless("webhook", "deliveries", "hooked", webhook_id).stdout
        assert len(re.findall(r"delivered\s+204", log)) == 3 and "retrying" not in log
    finally:
        receiver.close()
