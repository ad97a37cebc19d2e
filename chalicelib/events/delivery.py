"""The path every event takes, the same on AWS and on the local stack (moto's SQS and EventBridge):

  1. emit       once a change's transaction has committed (models.Transaction.after), its event
                goes to the events FIFO queue (one SendMessageBatch per transaction; the group is
                the repository, so one repository's events stay in order). The request does not
                wait for anything else: no target is called while a push is answered.
  2. dispatch   each event is put on the stack's EventBridge bus (rules are the team's), and for
                each of its namespace's webhooks that wants its kind a Delivery is logged and
                queued on the deliveries FIFO queue (group: webhook and repository).
  3. deliver    a delivery is POSTed, signed (webhooks.py), to its target: at most
                DELIVERY_SECONDS and RESPONSE_MAX_BYTES, never redirected, every connection's
                address checked. A 2xx answer delivers it. Anything else is retried after
                BACKOFF_SECONDS[attempt] (the message stays invisible that long; its group, the
                later events of that repository for that webhook, waits behind it, so order
                holds) with the same webhook-id, for RETRY_FOR_SECONDS; then it is failed, and
                its message goes to the dead-letter queue.

Deployed, Lambda consumes both queues (event source mappings, one message at a time); the local
stack pumps them on a thread (`pump`). The gap: an event whose change committed but whose
function died before step 1 is not sent (the audit trail has the change; the log says EVENT LOST
when sending failed).
"""
from __future__ import annotations
import datetime
import hashlib
import json
import logging
import threading
from typing import Iterable, List

from pynamodb.exceptions import DoesNotExist

from chalicelib.events import cloudevents, webhooks
from chalicelib.metadata.models import AuditEvent, Delivery, Webhook
from chalicelib.runtime import outbound
from chalicelib.runtime.observe import StepRecord

LOG = logging.getLogger("dockless.events")
BACKOFF_SECONDS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)
RETRY_FOR_SECONDS = 24 * 3600
DELIVERY_SECONDS = 10
RESPONSE_MAX_BYTES = 4096
DELIVERY_LOG_DAYS = 30
BATCH = 10  # SQS's most messages per batch
# What a scan is scheduled for: image manifests (an SBOM a team pushes is one, naming its image).
SCANNED_MEDIA_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.v2+json")
# Set when this process emitted an event: the local stack's pump, in the same process, starts at once.
EMITTED = threading.Event()
# Set when this process asked for a scan (queue_scan): the local stack's scans pump starts at once.
SCAN_QUEUED = threading.Event()


class Retry(Exception):
    """The delivery failed and is to be tried again in `seconds`."""

    def __init__(self, seconds: int):
        super().__init__(f"retry in {seconds} s")
        self.seconds = seconds


def _dedup(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --- 1. emit -----------------------------------------------------------------------------------

def emit(backend, events: Iterable[AuditEvent]) -> None:
    """Send the events among these audited changes (already committed) to the events queue."""
    queue = backend.settings.events_queue_url
    documents = [cloudevents.cloud_event(e, backend.public_url()) for e in events if cloudevents.is_event(e)]
    if not queue or not documents:
        return
    for start in range(0, len(documents), BATCH):
        entries = [{"Id": str(n), "MessageBody": json.dumps(d, sort_keys=True),
                    "MessageGroupId": cloudevents.group_of(d)[:128], "MessageDeduplicationId": _dedup(d["id"])}
                   for n, d in enumerate(documents[start:start + BATCH])]
        try:
            answer = backend.client("sqs").send_message_batch(QueueUrl=queue, Entries=entries)
            lost = answer.get("Failed") or []
        except Exception as error:  # noqa: BLE001 - the change is made; its event is what is lost
            lost = [{"Id": e["Id"], "Message": str(error)[:200]} for e in entries]
        for failure in lost:
            LOG.error("EVENT LOST %s", json.dumps({"event": documents[start + int(failure["Id"])]["id"],
                                                   "reason": failure.get("Message")}))
    EMITTED.set()


# --- 2. dispatch -------------------------------------------------------------------------------

def dispatch(backend, body: str) -> int:
    """Put one event on the bus and queue its deliveries; how many deliveries were queued."""
    document = json.loads(body)
    with StepRecord("dispatch", event=document.get("id"), type=document.get("type")) as record:
        record["deliveries"] = _dispatch(backend, document, body)
        return record["deliveries"]


def _dispatch(backend, document: dict, body: str) -> int:
    _schedule_scan(backend, document)
    if backend.settings.event_bus:
        backend.client("events").put_events(Entries=[{
            "Source": "dockless", "DetailType": document["type"], "Detail": body,
            "EventBusName": backend.settings.event_bus, "Resources": []}])
    namespace = cloudevents.namespace_of(document)
    queue = backend.settings.deliveries_queue_url
    if not namespace or not queue:
        return 0
    kind = document["data"]["kind"]
    queued = 0
    for webhook in Webhook.query(namespace):
        if not webhooks.wants(webhook, kind):
            continue
        message_id = "msg_" + _dedup(webhook.webhook_id, document["id"])[:32]
        delivery = _log(backend, webhook, message_id, document, body)
        _queue(backend, delivery, cloudevents.group_of(document), message_id)
        queued += 1
    return queued


def _schedule_scan(backend, document: dict) -> None:
    """A pushed manifest (not an index) is scanned off the request path (chalicelib/scanning)."""
    data = document.get("data", {})
    if not backend.settings.scans_queue_url or not backend.settings.scan_pushes or data.get("action") != "manifest.push" \
            or data.get("detail", {}).get("media_type") not in SCANNED_MEDIA_TYPES:
        return
    queue_scan(backend, {"repository": data["repository"], "digest": data["digest"]})


def queue_scan(backend, message: dict) -> bool:
    """Work for the scans queue (chalicelib/scanning: a scan, a rematch); False where there is
    no queue."""
    url = backend.settings.scans_queue_url
    if not url:
        return False
    backend.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(message, sort_keys=True))
    SCAN_QUEUED.set()
    return True


def _log(backend, webhook: Webhook, message_id: str, document: dict, body: str) -> Delivery:
    now = backend.clock()
    delivery = Delivery(webhook.webhook_id, f"{int(now.timestamp() * 1000):013d}.{message_id}", message_id=message_id,
                        namespace=webhook.namespace, event_type=document["type"], subject=document.get("subject"),
                        body=body, status="queued", attempts=0,
                        expires_at=int((now + datetime.timedelta(days=DELIVERY_LOG_DAYS)).timestamp()))
    delivery.save()
    return delivery


def _queue(backend, delivery: Delivery, group: str, dedup: str) -> None:
    backend.client("sqs").send_message(
        QueueUrl=backend.settings.deliveries_queue_url,
        MessageBody=json.dumps({"webhook": delivery.webhook_id, "namespace": delivery.namespace,
                                "delivery": delivery.delivery_key}),
        MessageGroupId=f"{delivery.webhook_id}#{group}"[:128], MessageDeduplicationId=_dedup(dedup))


def redeliver(backend, namespace: str, webhook_id: str, delivery_key: str) -> Delivery:
    """Queue a logged delivery again (the same webhook-id and body), whatever became of it."""
    delivery = Delivery.get(webhook_id, delivery_key)
    if delivery.namespace != namespace:
        raise DoesNotExist()
    delivery.update(actions=[Delivery.status.set("queued")])
    group = cloudevents.group_of(json.loads(delivery.body))
    _queue(backend, delivery, group, f"{delivery.message_id}#redeliver#{backend.clock().isoformat()}")
    return delivery


# --- 3. deliver --------------------------------------------------------------------------------

def _peer_allowed(backend):
    in_lambda = backend.settings.in_lambda

    def allowed(address: str) -> bool:
        if address in ("127.0.0.1", "::1"):
            return not in_lambda  # the local stack's receivers on this machine
        return not outbound.internal(address)
    return allowed


def deliver(backend, body: str) -> str:
    """Try one queued delivery: its new status ("delivered", "failed", or Retry raised)."""
    message = json.loads(body)
    with StepRecord("deliver", webhook=message.get("webhook"), delivery=message.get("delivery")) as record:
        try:
            record["outcome"] = _deliver(backend, body, message)
        except Retry as retry:
            record.update(outcome="retrying", retry_seconds=retry.seconds)
            raise
        return record["outcome"]


def _deliver(backend, body: str, message: dict) -> str:
    try:
        delivery = Delivery.get(message["webhook"], message["delivery"])
    except DoesNotExist:
        return "failed"  # its log expired or was never written: nothing to send
    try:
        webhook = Webhook.get(message["namespace"], message["webhook"])
    except DoesNotExist:
        delivery.update(actions=[Delivery.status.set("failed"), Delivery.last_error.set("the webhook was removed")])
        return "failed"
    now = backend.clock()
    timestamp = webhooks.timestamp_now()
    payload = delivery.body.encode()
    status, error = None, None
    budget = outbound.Budget(DELIVERY_SECONDS, "the webhook's target")
    try:
        if not webhooks.target_allowed(webhook.url, backend.settings.in_lambda):
            raise outbound.Unreachable("the target is not an address the registry sends to")
        signed = webhooks.headers(webhook, delivery.message_id, timestamp, payload, now.timestamp())
        status = outbound.post_checked(webhook.url, payload, signed, budget, RESPONSE_MAX_BYTES, _peer_allowed(backend))
        if not 200 <= status < 300:
            error = f"answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    except outbound.Unreachable as unreachable:
        error = str(unreachable)[:300]
    finally:
        budget.end()
    attempts = (delivery.attempts or 0) + 1
    queued_at = queued_time(delivery)
    if error is None:
        outcome = "delivered"
    elif (now - queued_at).total_seconds() >= RETRY_FOR_SECONDS:
        outcome = "failed"
    else:
        outcome = "retrying"
    actions = [Delivery.status.set(outcome), Delivery.attempts.set(attempts), Delivery.last_attempt_at.set(now)]
    actions.append(Delivery.last_status.set(status) if status is not None else Delivery.last_status.remove())
    actions.append(Delivery.last_error.set(error) if error else Delivery.last_error.remove())
    delivery.update(actions=actions)
    if outcome == "failed" and backend.settings.dead_letter_queue_url:
        backend.client("sqs").send_message(QueueUrl=backend.settings.dead_letter_queue_url, MessageBody=body)
    if outcome == "retrying":
        raise Retry(BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])
    return outcome


def queued_time(delivery: Delivery) -> datetime.datetime:
    """When a delivery was queued: its key's epoch milliseconds."""
    return datetime.datetime.fromtimestamp(int(delivery.delivery_key.split(".", 1)[0]) / 1000, datetime.timezone.utc)


def deliveries(webhook_id: str, limit: int = 50) -> List[Delivery]:
    """A webhook's delivery log, newest first."""
    return list(Delivery.query(webhook_id, scan_index_forward=False, limit=limit))


# --- the consumers -----------------------------------------------------------------------------

def on_event_records(backend, records) -> None:
    """Lambda's event source mapping of the events queue."""
    for record in records:
        dispatch(backend, record.body)


def on_delivery_records(backend, records) -> None:
    """Lambda's event source mapping of the deliveries queue (one at a time): a retry leaves the
    message invisible for its backoff and fails the invocation, so Lambda keeps it."""
    for record in records:
        try:
            deliver(backend, record.body)
        except Retry as retry:
            backend.client("sqs").change_message_visibility(
                QueueUrl=backend.settings.deliveries_queue_url, ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=retry.seconds)
            raise


def pump(backend) -> int:
    """The local stack's consumer of both queues: what is there now, dispatched and delivered
    (a group whose delivery failed waits for its backoff; the rest go on). How many messages."""
    with StepRecord("pump", emitted=False):
        return _pump(backend)


def _pump(backend) -> int:
    sqs = backend.client("sqs")
    handled = 0
    settings = backend.settings
    if settings.events_queue_url:
        for message in sqs.receive_message(QueueUrl=settings.events_queue_url, MaxNumberOfMessages=BATCH,
                                           WaitTimeSeconds=0).get("Messages", []):
            dispatch(backend, message["Body"])
            sqs.delete_message(QueueUrl=settings.events_queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
    if settings.deliveries_queue_url:
        waiting = set()
        for message in sqs.receive_message(QueueUrl=settings.deliveries_queue_url, MaxNumberOfMessages=BATCH,
                                           WaitTimeSeconds=0, AttributeNames=["MessageGroupId"]).get("Messages", []):
            group = message.get("Attributes", {}).get("MessageGroupId")
            handle = message["ReceiptHandle"]
            if group in waiting:  # behind a delivery that failed: after it, in order
                sqs.change_message_visibility(QueueUrl=settings.deliveries_queue_url, ReceiptHandle=handle,
                                              VisibilityTimeout=0)
                continue
            handled += 1
            try:
                deliver(backend, message["Body"])
            except Retry as retry:
                waiting.add(group)
                sqs.change_message_visibility(QueueUrl=settings.deliveries_queue_url, ReceiptHandle=handle,
                                              VisibilityTimeout=retry.seconds)
                continue
            sqs.delete_message(QueueUrl=settings.deliveries_queue_url, ReceiptHandle=handle)
    return handled
