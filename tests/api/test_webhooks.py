"""Events and signed webhooks (chalicelib/events), in process, on moto's SQS and EventBridge with a
receiver on loopback (tests/webhooks.py) that verifies every delivery as the Standard Webhooks
specification says: what a push sends, in order per repository; retries with backoff and the
same webhook-id; giving up after a day; secret rotation; redelivery; targets that are refused when
added or when connected to, redirect, stall or flood; and a registry whose queue is gone still
answering the push."""
import base64
import dataclasses
import json
import time
import uuid

import boto3
import pytest

from chalicelib.backend import backend, use_backend
from chalicelib.events import delivery, webhooks
from chalicelib.metadata.models import AuditEvent, Delivery, Webhook
from tests.webhooks import Receiver, verified

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def events_on(registry):
    """Queues and a bus of this test's own, as the stack makes them; a rule copies the bus's
    events to a queue the test reads."""
    sqs, bus = boto3.client("sqs", region_name="us-east-1"), boto3.client("events", region_name="us-east-1")
    name = "t" + uuid.uuid4().hex[:12]
    fifo = {"FifoQueue": "true", "VisibilityTimeout": "60"}
    queues = {suffix: sqs.create_queue(QueueName=f"{name}-{suffix}", Attributes=attributes)["QueueUrl"]
              for suffix, attributes in (("events.fifo", fifo), ("deliveries.fifo", fifo), ("dead-letters", {}),
                                         ("bus-copy", {}))}
    bus.create_event_bus(Name=name)
    copy_arn = sqs.get_queue_attributes(QueueUrl=queues["bus-copy"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.put_rule(Name="copy", EventBusName=name, EventPattern=json.dumps({"source": ["dockless"]}))
    bus.put_targets(Rule="copy", EventBusName=name, Targets=[{"Id": "copy", "Arn": copy_arn}])
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(
        registry.settings, events_queue_url=queues["events.fifo"], deliveries_queue_url=queues["deliveries.fifo"],
        dead_letter_queue_url=queues["dead-letters"], event_bus=name)))
    yield queues


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def pump_all() -> int:
    handled = 0
    while True:
        done = delivery.pump(backend())
        if not done:
            return handled
        handled += done


def add_webhook(client, receiver, namespace="team", events=None) -> dict:
    body = {"url": receiver.url, **({"events": events} if events else {})}
    answer = client.post(f"/dockless/admin/v1/webhooks/{namespace}", body=json.dumps(body), headers=JSON)
    assert answer.status_code == 201, answer.body
    receiver.secrets.append(answer.json_body["secret"])
    return answer.json_body


def test_a_push_is_delivered_signed_as_a_cloudevent_and_put_on_the_bus(client, push, events_on, receiver):
    added = add_webhook(client, receiver)
    secret = added["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == webhooks.SECRET_BYTES
    assert added["webhook"]["url"] == receiver.url and added["webhook"]["events"] == list(delivery.cloudevents.KINDS)
    listed = client.get("/dockless/admin/v1/webhooks/team").json_body["webhooks"]
    assert [w["id"] for w in listed] == [added["webhook"]["id"]] and "whsec_" not in json.dumps(listed)

    _, digest = push.image("team/app", "v1")
    assert receiver.received == []  # nothing is sent while the push is answered
    pump_all()
    pushes = receiver.events("push")
    assert len(pushes) == 1 and receiver.refused == []
    headers, event = [r for r in receiver.received if r[1]["data"]["kind"] == "push"][0]
    assert headers["webhook-id"].startswith("msg_") and headers["content-type"] == "application/json"
    assert event["specversion"] == "1.0" and event["type"] == "dev.dockless.manifest.push"
    assert event["subject"] == f"team/app@{digest}" and event["source"] == backend().public_url()
    assert event["data"]["repository"] == "team/app" and event["data"]["digest"] == digest
    assert event["data"]["tag"] == "v1" and event["data"]["actor"] == "admin"
    pushed = next(e for e in AuditEvent.scan() if e.action == "manifest.push")
    assert event["id"] == pushed.at  # the event is the audit trail's record of the change

    copies = boto3.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=events_on["bus-copy"], MaxNumberOfMessages=10)["Messages"]
    on_bus = [json.loads(m["Body"]) for m in copies]
    assert any(e["detail-type"] == "dev.dockless.manifest.push" and e["detail"]["subject"] == f"team/app@{digest}"
               for e in on_bus)
    log = client.get(f"/dockless/admin/v1/webhooks/team/{added['webhook']['id']}/deliveries").json_body["deliveries"]
    assert {(d["type"], d["status"], d["last_status"], d["attempts"]) for d in log} >= {
        ("dev.dockless.manifest.push", "delivered", 204, 1)}


def test_a_webhook_gets_only_its_kinds_and_its_namespace(client, push, events_on, receiver):
    add_webhook(client, receiver, events=["delete"])
    push.image("team/app", "v1")
    push.image("other/app", "v1")
    _, digest = push.image("team/app", "v2")
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    pump_all()
    assert [e["type"] for e in receiver.events()] == ["dev.dockless.manifest.delete"]
    assert receiver.events()[0]["subject"] == f"team/app@{digest}"


def test_one_repositorys_events_arrive_in_order(client, push, events_on, receiver):
    add_webhook(client, receiver, events=["push"])
    for tag in ("v1", "v2", "v3", "v4"):
        push.image("team/app", tag, layers=(tag.encode(),))
    pump_all()
    assert [e["data"]["tag"] for e in receiver.events("push")] == ["v1", "v2", "v3", "v4"]


def test_a_failing_target_is_retried_with_the_same_id_and_later_events_wait(client, push, events_on, receiver,
                                                                         monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_SECONDS", (1, 1, 1))
    hook = add_webhook(client, receiver, events=["push"])["webhook"]["id"]
    receiver.mode = "500"
    push.image("team/app", "v1", layers=(b"1",))
    push.image("team/app", "v2", layers=(b"2",))
    pump_all()
    assert receiver.received == [] and receiver.attempts == 1  # v2 waits behind v1
    log = client.get(f"/dockless/admin/v1/webhooks/team/{hook}/deliveries").json_body["deliveries"]
    failed = [d for d in log if d["status"] == "retrying"]
    assert len(failed) == 1 and failed[0]["last_status"] == 500 and failed[0]["last_error"] == "answered 500"
    receiver.mode = None  # back up
    time.sleep(1.2)
    pump_all()
    assert [e["data"]["tag"] for e in receiver.events("push")] == ["v1", "v2"]
    first = receiver.received[0][0]["webhook-id"]
    assert first == failed[0]["message_id"]  # the retry is the same message
    log = client.get(f"/dockless/admin/v1/webhooks/team/{hook}/deliveries").json_body["deliveries"]
    assert sorted((d["status"], d["attempts"]) for d in log) == [("delivered", 1), ("delivered", 2)]


def test_after_a_day_a_delivery_is_given_up_and_dead_lettered(client, push, events_on, receiver, clock, monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_SECONDS", (1,))
    add_webhook(client, receiver, events=["push"])
    receiver.mode = "500"
    push.image("team/app", "v1")
    pump_all()
    clock.advance(seconds=delivery.RETRY_FOR_SECONDS)
    time.sleep(1.2)
    pump_all()
    [given_up] = [d for d in Delivery.scan()]
    assert given_up.status == "failed" and given_up.attempts == 2
    dead = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=events_on["dead-letters"])["Messages"]
    assert json.loads(dead[0]["Body"])["delivery"] == given_up.delivery_key
    time.sleep(1.2)
    assert pump_all() == 0 and receiver.attempts == 2  # no more attempts


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(client, push, events_on, receiver, clock):
    hook = add_webhook(client, receiver, events=["push"])["webhook"]["id"]
    old = receiver.secrets[0]
    rotated = client.post(f"/dockless/admin/v1/webhooks/team/{hook}/rotate")
    new = rotated.json_body["secret"]
    assert rotated.status_code == 200 and new.startswith("whsec_") and new != old
    push.image("team/app", "v1", layers=(b"1",))
    pump_all()
    headers = receiver.received[-1][0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    stored = next(d for d in Delivery.scan())  # the body exactly as signed and sent
    assert verified([old], headers, stored.body.encode()) and verified([new], headers, stored.body.encode())
    clock.advance(seconds=webhooks.ROTATION_SECONDS + 1)
    receiver.secrets = [old]  # a receiver that never moved on: no longer accepted
    push.image("team/app", "v2", layers=(b"2",))
    pump_all()
    assert len(receiver.refused) == 1 and len(receiver.refused[0]["webhook-signature"].split(" ")) == 1


def test_a_delivery_is_redelivered_on_request(client, push, events_on, receiver):
    hook = add_webhook(client, receiver, events=["push"])["webhook"]["id"]
    push.image("team/app", "v1")
    pump_all()
    [logged] = client.get(f"/dockless/admin/v1/webhooks/team/{hook}/deliveries").json_body["deliveries"]
    again = client.post(f"/dockless/admin/v1/webhooks/team/{hook}/deliveries/{logged['id']}/redeliver")
    assert again.status_code == 202
    pump_all()
    assert [h["webhook-id"] for h, _ in receiver.received] == [logged["message_id"]] * 2
    missing = client.post(f"/dockless/admin/v1/webhooks/team/{hook}/deliveries/0000000000000.msg_{'0' * 32}/redeliver")
    assert missing.status_code == 404


@pytest.mark.parametrize("url", [
    "http://example.com/hook", "https://10.0.0.8/hook", "https://169.254.169.254/latest/meta-data/",
    "https://192.168.1.1/", "https://[fd00::1]/", "https://127.1/", "https://0x7f000001/", "https://user:pw@example.com/", "ftp://example.com/",
    "https://example.com/" + "a" * 2100, "not a url",
])
def test_a_target_that_is_not_public_https_is_refused_and_nothing_kept(client, events_on, url):
    answer = client.post("/dockless/admin/v1/webhooks/team", body=json.dumps({"url": url}), headers=JSON)
    assert answer.status_code == 400 and "https://" in answer.json_body["errors"][0]["message"]
    assert list(Webhook.scan()) == []


def test_unknown_event_kinds_are_refused(client, events_on, receiver):
    answer = client.post("/dockless/admin/v1/webhooks/team", body=json.dumps({"url": receiver.url, "events": ["pull"]}),
                         headers=JSON)
    assert answer.status_code == 400 and list(Webhook.scan()) == []


def test_deployed_loopback_targets_are_refused_when_added_and_when_connected(client, push, events_on, receiver,
                                                                          monkeypatch, registry):
    current = backend()
    use_backend(dataclasses.replace(current, settings=dataclasses.replace(current.settings, in_lambda=True)))
    answer = client.post("/dockless/admin/v1/webhooks/team", body=json.dumps({"url": receiver.url}), headers=JSON)
    assert answer.status_code == 400
    use_backend(current)
    add_webhook(client, receiver, events=["push"])
    use_backend(dataclasses.replace(current, settings=dataclasses.replace(current.settings, in_lambda=True)))
    # A name that passed when added and resolves to this machine when connected (DNS rebinding):
    monkeypatch.setattr(webhooks, "target_allowed", lambda url, in_lambda: True)
    push.image("team/app", "v1")
    pump_all()
    assert receiver.attempts == 0
    [logged] = list(Delivery.scan())
    assert logged.status == "retrying" and "internal address" in logged.last_error


@pytest.mark.parametrize("mode, error", [("redirect", "answered 302 (redirects are not followed)"),
                                         ("stall", "the webhook's target did not finish within 1 s")])
def test_a_target_that_redirects_or_stalls_fails_the_attempt(client, push, events_on, receiver, monkeypatch, mode,
                                                            error):
    monkeypatch.setattr(delivery, "DELIVERY_SECONDS", 1)
    add_webhook(client, receiver, events=["push"])
    receiver.mode = mode
    push.image("team/app", "v1")
    pump_all()
    [logged] = list(Delivery.scan())
    assert logged.status == "retrying" and logged.last_error == error


def test_a_target_that_floods_its_answer_is_read_no_further(client, push, events_on, receiver):
    add_webhook(client, receiver, events=["push"])
    receiver.mode = "flood"
    push.image("team/app", "v1")
    pump_all()
    [logged] = list(Delivery.scan())
    assert logged.status == "delivered" and logged.last_status == 200


def test_a_removed_webhook_gets_nothing_more(client, push, events_on, receiver):
    hook = add_webhook(client, receiver, events=["push"])["webhook"]["id"]
    push.image("team/app", "v1")
    assert client.delete(f"/dockless/admin/v1/webhooks/team/{hook}").status_code == 204
    pump_all()
    assert receiver.attempts == 0 and [d.status for d in Delivery.scan()] == []
    assert client.get("/dockless/admin/v1/webhooks/team").json_body["webhooks"] == []
    actions = sorted(e.action for e in AuditEvent.scan() if e.action.startswith("webhook."))
    assert actions == ["webhook.add", "webhook.remove"]


def test_a_push_is_answered_when_its_event_cannot_be_sent(client, push, events_on, registry, caplog):
    current = backend()
    use_backend(dataclasses.replace(current, settings=dataclasses.replace(
        current.settings, events_queue_url=events_on["events.fifo"].replace("-events.fifo", "-missing-events.fifo"))))
    push.image("team/app", "v1")  # answered 201 (Pusher asserts it)
    assert "EVENT LOST" in caplog.text


class Record:
    """A message as Lambda's SQS event source hands it to a function (chalice's SQSRecord)."""

    def __init__(self, message):
        self.body, self.receipt_handle = message["Body"], message["ReceiptHandle"]


def test_lambdas_consumers_dispatch_deliver_and_keep_a_failed_delivery_for_its_backoff(client, push, events_on,
                                                                                     receiver, monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_SECONDS", (2,))
    add_webhook(client, receiver, events=["push"])
    push.image("team/app", "v1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events = sqs.receive_message(QueueUrl=events_on["events.fifo"], MaxNumberOfMessages=10)["Messages"]
    delivery.on_event_records(backend(), [Record(m) for m in events if json.loads(m["Body"])["data"]["kind"] == "push"])
    (queued,) = sqs.receive_message(QueueUrl=events_on["deliveries.fifo"], MaxNumberOfMessages=10)["Messages"]
    receiver.mode = "500"
    with pytest.raises(delivery.Retry):  # the invocation fails: Lambda keeps the message
        delivery.on_delivery_records(backend(), [Record(queued)])
    assert sqs.receive_message(QueueUrl=events_on["deliveries.fifo"]).get("Messages") is None  # for its backoff
    time.sleep(2.2)
    receiver.mode = None
    (again,) = sqs.receive_message(QueueUrl=events_on["deliveries.fifo"])["Messages"]
    delivery.on_delivery_records(backend(), [Record(again)])
    assert [e["data"]["tag"] for e in receiver.events("push")] == ["v1"]


def test_the_console_shows_admins_each_webhooks_deliveries_and_no_one_else(anonymous, client, push, events_on,
                                                                        receiver, boss, people):
    from tests.api.test_console import Browser
    hook = add_webhook(client, receiver, events=["push"])["webhook"]["id"]
    receiver.mode = "500"
    push.image("team/app", "v1")
    pump_all()
    admin = Browser(anonymous)
    admin.sign_in("boss", boss)
    page = admin.request("GET", "/ui/webhooks?namespace=team")
    text = page.body.decode()
    assert page.status_code == 200 and receiver.url in text and hook in text
    assert "dev.dockless.manifest.push" in text and "retrying" in text and "500 (answered 500)" in text
    assert "whsec_" not in text  # secrets are never shown again
    assert 'href="/ui/webhooks"' in admin.request("GET", "/ui/").body.decode()
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    refused = reader.request("GET", "/ui/webhooks?namespace=team")
    assert refused.status_code == 403 and receiver.url not in refused.body.decode()
