"""The local stack: a moto server (real S3 and DynamoDB wire protocol) behind its two doors
(dockless/local/aws.py), the bucket and tables, the Chalice app behind the local front door on an
internal port, `dockless gateway` in front of it on the public port, and the app's scheduled jobs
on a timer: production's topology, where layer bytes go only through the bucket and the API
refuses big bodies.

The app code is the code that runs in Lambda; only its settings (endpoints, bucket, tables,
public URL) point at this process's moto server. Its AWS credentials are dummies: a fixed access
key id and a secret generated per run, held in this process's environment and never written, so
only this process can sign requests the doors accept.
"""
import dataclasses
import logging
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Callable, Dict, Optional
from urllib.parse import urlsplit

from chalicelib.access.service import AuthService
from chalicelib.backend import build_backend, use_backend
from chalicelib.events import delivery
from chalicelib.metadata.models import create_tables
from chalicelib.routes import jobs
from chalicelib.runtime.config import Settings
from chalicelib.scanning import service as scanning
from chalicelib.signing import cosign, gpg
from chalicelib.signing.service import registry_cosign_key, registry_key
from dockless.local import frontdoor
from dockless.gateway import server as gateway
from dockless.local import tls
from dockless.local.aws import ACCESS_KEY_ID, LocalAws

LOG = logging.getLogger("dockless.local")


EVENTS_IDLE_SECONDS = 1  # how often the local stack looks for deliveries due again, with no new event
SCANS_IDLE_SECONDS = 5  # how often the local stack looks at the scans queue, with no scan asked for


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalStack:
    def __init__(self, host: str = "127.0.0.1", port: int = 5000, public_url: Optional[str] = None,
                 api_port: int = 0, provision: Optional[Callable[[str], Dict[str, str]]] = None,
                 tls_dir: Optional[Path] = None, faults=None, chunked_bodies: str = frontdoor.WHOLE,
                 door: str = frontdoor.API_GATEWAY_DOOR):
        """`provision(moto_url)`, when given, creates the bucket and tables some other way (the
        smoke test deploys infra/stack.py's template to the moto server's CloudFormation) and
        returns the settings that name them; by default the stack creates them itself. With
        `tls_dir`, the registry port and the public S3 door speak HTTPS with a certificate from
        the CA kept there (dockless/local/tls.py; `ca_path` names the certificate to trust). With
        `faults` (dockless/local/faults.py), its AWS answers the registry as a busy account would.
        `chunked_bodies` is what its front door does with a chunked request body, `door` which
        door the front door is (dockless/local/frontdoor.py)."""
        self.host, self.port, self.api_port, self.faults = host, port, api_port, faults
        self.front_door = None
        self.chunked_bodies, self.door = chunked_bodies, door
        self.tls_dir, self.ca_path = tls_dir, None
        self._provision = provision
        self.public_url = public_url
        self._aws: Optional[LocalAws] = None
        self._servers = []
        self._stopping = threading.Event()

    @property
    def moto_url(self) -> str:
        """The internal door: AWS as the app sees it (loopback only, signed requests only)."""
        return self._aws.internal_url

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_dir else 'http'}://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def start(self) -> None:
        from app import app

        secret = secrets.token_urlsafe(32)
        os.environ.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": secret})
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        context = None
        if self.tls_dir:
            context, self.ca_path = tls.server_context(self.tls_dir)
        self._aws = LocalAws(self.host, secret, ssl_context=context, faults=self.faults)
        self._aws.start()
        self.front_door = frontdoor.FrontDoor(app, chunked_bodies=self.chunked_bodies, door=self.door)
        api = frontdoor.make_server(self.front_door, self.host, self.api_port)
        self.api_port = api.server_address[1]
        self.gateway = gateway.Gateway(self.api_url)
        if self.ca_path:
            self.gateway.bucket.verify = str(self.ca_path)  # the public S3 door's certificate
        public = gateway.make_server(self.gateway, self.host, self.port, self.public_url, ssl_context=context)
        self.port = public.server_address[1]
        provisioned = self._provision(self.moto_url) if self._provision else {}
        settings = Settings.from_environ({
            # Generated per run: the stack's data lives as long as the process, and so do tokens
            # and the registry's own signing key (published at /keys/_registry/KEYS).
            "DOCKLESS_TOKEN_SIGNING_KEY": secrets.token_hex(32),
            "DOCKLESS_EDGE_SECRET": secrets.token_hex(32),  # the front door's blob gate holds it too
            "DOCKLESS_REGISTRY_SIGNING_KEY": os.environ.get("DOCKLESS_REGISTRY_SIGNING_KEY")
            or gpg.generate_signing_key("dockless local registry") + "\n" + cosign.generate_private_key(),
            **os.environ,
            "DOCKLESS_AWS_ENDPOINT_URL": self.moto_url,
            # Clients fetch layers from the public S3 door, by the host name they use for the registry.
            "DOCKLESS_S3_PRESIGN_ENDPOINT_URL": self._aws.public_url(urlsplit(self.gateway.public_url).hostname),
            "DOCKLESS_PUBLIC_URL": self.gateway.public_url,
            "DOCKLESS_DOOR": self.door,
            **provisioned,
        })
        self.backend = build_backend(settings)
        use_backend(self.backend)
        if not self._provision:
            self.backend.objects.create_bucket(settings.region)
            create_tables()
        if settings.events_queue_url is None:
            self.backend = build_backend(dataclasses.replace(settings, **self._event_queues(self.backend)))
            use_backend(self.backend)
        self.front_door.edge_secret, self.front_door.presign_get = settings.edge_secret, self.backend.objects.presign_get
        for service in ("sqs", "events"):  # made here, before the requests' and the event pump's threads
            self.backend.client(service)
        self.admin_token = self._bootstrap_admin(self.backend)
        registry_key(self.backend)
        registry_cosign_key(self.backend)
        if self.faults is not None:
            self.faults.arm()  # the stack's own setup is not the registry's to absorb
        for server, name in ((api, "api"), (public, "gateway")):
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        self._start_jobs()
        LOG.info("moto server behind %s (internal) and %s (presigned S3 only); bucket %s, tables %s-*, "
                 "public URL %s", self.moto_url, settings.s3_presign_endpoint_url, settings.bucket,
                 settings.table_prefix, settings.public_url)

    def _bootstrap_admin(self, on) -> Optional[str]:
        """User `admin` with the token in DOCKLESS_BOOTSTRAP_TOKEN, or a new one, returned so it
        can be shown once. Only its hash is stored."""
        given = os.environ.get("DOCKLESS_BOOTSTRAP_TOKEN")
        token = AuthService(on).bootstrap_admin(given)
        return None if given else token

    @staticmethod
    def _event_queues(backend) -> dict:
        """The queues and bus events take (chalicelib/events/delivery.py), in moto, as the stack
        makes them deployed."""
        sqs = backend.client("sqs")
        fifo = {"FifoQueue": "true", "VisibilityTimeout": "60"}
        made = {name: sqs.create_queue(QueueName=f"{backend.settings.table_prefix}-{name}", Attributes=attributes)["QueueUrl"]
                for name, attributes in (("events.fifo", fifo), ("deliveries.fifo", fifo), ("dead-letters", {}),
                                         ("scans", {"VisibilityTimeout": str(jobs.LONG_RUN_SECONDS)}))}
        bus = backend.settings.table_prefix
        backend.client("events").create_event_bus(Name=bus)
        return {"events_queue_url": made["events.fifo"], "deliveries_queue_url": made["deliveries.fifo"],
                "dead_letter_queue_url": made["dead-letters"], "event_bus": bus, "scans_queue_url": made["scans"]}

    def _start_jobs(self) -> None:
        for name, (job, minutes, _) in jobs.JOBS.items():
            threading.Thread(target=self._every, args=(name, job, minutes * 60), daemon=True).start()
        threading.Thread(target=self._pump_events, name="events", daemon=True).start()
        threading.Thread(target=self._pump_scans, name="scans", daemon=True).start()

    def _pump_events(self) -> None:
        """The events' and deliveries' queues, consumed as Lambda does deployed (delivery.pump)."""
        while not self._stopping.is_set():
            delivery.EMITTED.wait(EVENTS_IDLE_SECONDS)
            delivery.EMITTED.clear()
            if self._stopping.is_set():
                break  # its AWS is going away
            try:
                while delivery.pump(self.backend) and not self._stopping.is_set():
                    pass
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                LOG.exception("delivering events failed")

    def _pump_scans(self) -> None:
        """The scans queue, consumed as the scan_images function does deployed (scanning.pump),
        on its own thread: a scan of a big image does not hold up webhook deliveries."""
        while not self._stopping.is_set():
            delivery.SCAN_QUEUED.wait(SCANS_IDLE_SECONDS)
            delivery.SCAN_QUEUED.clear()
            if self._stopping.is_set():
                break
            try:
                while scanning.pump(self.backend, jobs.LONG_RUN_SECONDS * jobs.WORK_SHARE) and not self._stopping.is_set():
                    pass
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                LOG.exception("scanning failed")

    def _every(self, name: str, job, seconds: float) -> None:
        while not self._stopping.wait(seconds):
            try:
                job(self.backend)
            except Exception:  # noqa: BLE001 - a failed run is logged; the next run tries again
                LOG.exception("scheduled job %s failed", name)

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self._aws:
            self._aws.stop()
        use_backend(None)
