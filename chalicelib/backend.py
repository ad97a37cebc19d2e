"""The backend a request runs on: settings, the S3 object store, the clock, AWS clients built
lazily once per container, the audit trail, and what a container keeps between requests (signing
keys, the public URL, rate limits).

Entry points (the request dispatch, the scheduled jobs) take `backend()`, built from the
environment once per process, and hand it to everything they call; tests and the local stack
install their own with `use_backend(...)` (their moto endpoint, tables, bucket or clock).
"""
from __future__ import annotations
import dataclasses
import datetime
import threading
from typing import Callable, Optional

from chalicelib.metadata.audit import AuditTrail
from chalicelib.metadata.models import bind_models
from chalicelib.runtime import retries
from chalicelib.runtime.config import Settings
from chalicelib.runtime.observe import watch_client
from chalicelib.runtime.ratelimit import WindowLimiter
from chalicelib.storage.objects import ObjectStore

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


_CLIENTS_LOCK = threading.Lock()


@dataclasses.dataclass
class Backend:
    settings: Settings
    objects: ObjectStore
    clock: Clock = utc_now
    _signing_keys: Optional[list] = None
    _public_url: Optional[str] = None
    _clients: dict = dataclasses.field(default_factory=dict)
    # The boto3 session the clients come from: one per Backend, so credentials are read when the
    # backend is built (boto3's default session caches the first ones it ever saw).
    session: object = None
    # Denials of callers who proved no identity, per source address (audit.record): bounded, so an
    # anonymous caller cannot make the registry write without limit.
    unproven_denials: WindowLimiter = dataclasses.field(
        default_factory=lambda: WindowLimiter(per_window=10, window_seconds=60), init=False)
    _audit: Optional[AuditTrail] = dataclasses.field(default=None, init=False)

    @property
    def audit(self) -> AuditTrail:
        """The audit trail, recording with this backend's clock and settings."""
        if self._audit is None:
            self._audit = AuditTrail(self)
        return self._audit

    def client(self, service: str):
        """A boto3 client for a service, made once per backend, watched. Made under a lock: a boto3
        session is not safe to make clients from in two threads at once (the local stack's
        requests and its event pump share one backend)."""
        if service not in self._clients:
            with _CLIENTS_LOCK:
                if service not in self._clients:
                    from botocore.config import Config
                    client = (self.session or new_session()).client(
                        service, region_name=self.settings.region, endpoint_url=self.settings.aws_endpoint_url,
                        config=Config(retries=retries.CLIENT_RETRIES))
                    watch_client(client)
                    self._clients[service] = client
        return self._clients[service]

    def secret(self, secret_id: str) -> str:
        return self.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]

    def public_url(self) -> str:
        """The registry as clients reach it: DOCKLESS_PUBLIC_URL, or (deployed) the SSM parameter
        the stack writes once CloudFront's domain is known, read once per container."""
        if self._public_url is None:
            name = self.settings.public_url_parameter
            self._public_url = (self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"].rstrip("/")
                                if name else self.settings.public_url)
        return self._public_url

    def signing_keys(self) -> list:
        """Keys that sign (the first) and verify access tokens: from the environment, or read once
        per container from Secrets Manager. Without one, no token is issued or accepted."""
        if self._signing_keys is None:
            key = self.settings.token_signing_key
            if key is None and self.settings.token_signing_key_secret:
                key = self.secret(self.settings.token_signing_key_secret)
            if not key:
                raise RuntimeError("no token signing key: set DOCKLESS_TOKEN_SIGNING_KEY(_SECRET)")
            self._signing_keys = [key.encode()]
        return self._signing_keys


def new_session():
    import boto3  # imported here so a cold start that never touches AWS through boto3 does not pay for it
    return boto3.session.Session()


def s3_client(settings: Settings, endpoint_url: Optional[str], session=None):
    """A SigV4 S3 client, watched by observe. With no endpoint given it names the bucket's regional
    virtual-hosted endpoint, https://<bucket>.s3.<region>.amazonaws.com: the global endpoint answers
    for a new bucket outside us-east-1 with redirects and signature errors until DNS settles, and
    never works in opt-in regions."""
    from botocore.config import Config

    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "virtual"},
                    request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    retries=retries.CLIENT_RETRIES)
    client = (session or new_session()).client("s3", region_name=settings.region, config=config,
                                               endpoint_url=endpoint_url or f"https://s3.{settings.region}.amazonaws.com")
    watch_client(client)
    return client


def build_backend(settings: Settings, clock: Clock = utc_now) -> Backend:
    session = new_session()
    calls = s3_client(settings, settings.aws_endpoint_url, session)
    presign_endpoint = settings.s3_presign_endpoint_url or settings.aws_endpoint_url
    presigner = calls if presign_endpoint == settings.aws_endpoint_url else s3_client(settings, presign_endpoint,
                                                                                       session)
    bind_models(settings)
    return Backend(settings=settings, objects=ObjectStore(calls, settings.bucket, presigner), clock=clock,
                    session=session)


_current: Optional[Backend] = None
_lock = threading.Lock()


def backend() -> Backend:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = build_backend(Settings.from_environ())
    return _current


def use_backend(replacement: Optional[Backend]) -> None:
    """Install the backend every request will use (None: rebuild from the environment)."""
    global _current
    _current = replacement
