"""A namespace's webhooks: where its events go, and how a receiver knows they came from us.

Deliveries follow the Standard Webhooks specification: headers `webhook-id` (the message's id,
the same on every retry), `webhook-timestamp` (epoch seconds of the attempt) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
base64-decoded part of a `whsec_…` secret, one such signature per valid secret, separated by
spaces. Rotating a webhook's secret keeps the old one signing for ROTATION_SECONDS, so a receiver
can move to the new one without losing a delivery.

Targets: https to a host that is not an internal address; in the local stack also
`http://127.0.0.1:PORT` (or localhost), so a receiver on the same machine works. The address is
checked again at every connection (delivery.py: a name that resolves to an internal address is
refused when connecting), and redirects are not followed.
"""
from __future__ import annotations
import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.events.cloudevents import KINDS
from chalicelib.metadata.models import Webhook, failed_conditions, transaction
from chalicelib.oci import errors
from chalicelib.oci.errors import RegistryError
from chalicelib.runtime import outbound

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_SECONDS = 24 * 3600
MAX_WEBHOOKS = 10
MAX_URL = 2000


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64>`: Standard Webhooks' symmetric signature of one message with one secret."""
    key = base64.b64decode(secret[len(SECRET_PREFIX):])
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(webhook: Webhook, message_id: str, timestamp: int, body: bytes, now: float) -> dict:
    """The request's headers: the signature by each secret valid `now` (the registry's clock)."""
    signatures = " ".join(signature(s, message_id, timestamp, body) for s in signing_secrets(webhook, now))
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures,
            "Content-Type": "application/json", "User-Agent": "dockless-webhooks/1"}


def signing_secrets(webhook: Webhook, now: float) -> List[str]:
    return [held["secret"] for held in json.loads(webhook.secrets) if held.get("until") is None or now < held["until"]]


def target_allowed(url: str, in_lambda: bool) -> bool:
    """https to a host that is no internal address; off Lambda (the local stack) also http or
    https to this machine's loopback."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raise on a port that is not a number
    except ValueError:
        return False
    if not parts.hostname or parts.username or parts.password or parts.scheme not in ("http", "https") \
            or len(url) > MAX_URL or parts.fragment:
        return False
    if parts.hostname in outbound.LOOPBACK_HOSTS:
        return not in_lambda
    return parts.scheme == "https" and not outbound.internal(parts.hostname)


def describe(webhook: Webhook, now: float) -> dict:
    held = json.loads(webhook.secrets)
    return {"id": webhook.webhook_id, "namespace": webhook.namespace, "url": webhook.url,
            "events": sorted(webhook.events) if webhook.events else list(KINDS),
            "created_at": webhook.created_at.isoformat(), "created_by": webhook.created_by,
            "secrets": len([s for s in held if s.get("until") is None or now < s["until"]])}


class WebhookService:
    def __init__(self, backend):
        self._backend = backend

    def _now(self) -> float:
        return self._backend.clock().timestamp()

    def list(self, namespace: str) -> List[Webhook]:
        return list(Webhook.query(namespace))

    def get(self, namespace: str, webhook_id: str) -> Webhook:
        try:
            return Webhook.get(namespace, webhook_id)
        except DoesNotExist:
            raise RegistryError(errors.ADMIN_UNKNOWN, f"{namespace} has no webhook {webhook_id[:40]!r}") from None

    def add(self, namespace: str, url, events, actor: Optional[str]) -> Tuple[Webhook, str]:
        """A new webhook, and its secret (shown once: only the registry keeps it)."""
        if not isinstance(url, str) or not target_allowed(url, self._backend.settings.in_lambda):
            raise RegistryError(errors.ADMIN_INVALID, "url must be https:// to a public host (the local stack also "
                                                      "takes http://127.0.0.1:PORT)")
        if events is not None and (not isinstance(events, list) or not events
                                   or not all(isinstance(e, str) and e in KINDS for e in events)):
            raise RegistryError(errors.ADMIN_INVALID, f"events is a list of {', '.join(KINDS)}")
        if len(self.list(namespace)) >= MAX_WEBHOOKS:
            raise RegistryError(errors.ADMIN_INVALID, f"a namespace has at most {MAX_WEBHOOKS} webhooks")
        secret = new_secret()
        webhook = Webhook(namespace, "wh_" + secrets.token_hex(8), url=url, events=set(events) if events else None,
                          secrets=json.dumps([{"secret": secret, "until": None}]), created_at=self._backend.clock(),
                          created_by=actor)
        with transaction() as txn:
            txn.save(webhook, condition=Webhook.webhook_id.does_not_exist())
            self._backend.audit.record_in(txn, "webhook.add", None, namespace=namespace, webhook=webhook.webhook_id,
                                          url=url, events=sorted(webhook.events or KINDS))
        return webhook, secret

    def remove(self, namespace: str, webhook_id: str) -> None:
        webhook = self.get(namespace, webhook_id)
        with transaction() as txn:
            txn.delete(webhook)
            self._backend.audit.record_in(txn, "webhook.remove", None, namespace=namespace, webhook=webhook_id)

    def rotate(self, namespace: str, webhook_id: str) -> str:
        """A new secret; the ones before it sign for ROTATION_SECONDS more."""
        webhook = self.get(namespace, webhook_id)
        now = self._now()
        held = [dict(s, until=s["until"] if s.get("until") is not None else int(now) + ROTATION_SECONDS)
                for s in json.loads(webhook.secrets) if s.get("until") is None or now < s["until"]]
        secret = new_secret()
        text = json.dumps([{"secret": secret, "until": None}] + held)
        try:
            with transaction() as txn:
                txn.update(webhook, actions=[Webhook.secrets.set(text)], condition=Webhook.secrets == webhook.secrets)
                self._backend.audit.record_in(txn, "webhook.rotate", None, namespace=namespace, webhook=webhook_id)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise RegistryError(errors.ADMIN_CONFLICT, "the webhook changed meanwhile; try again") from None
        return secret


def wants(webhook: Webhook, kind: str) -> bool:
    return not webhook.events or kind in webhook.events


def timestamp_now() -> int:
    return int(time.time())
