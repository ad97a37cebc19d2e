"""The services a request uses, built lazily from settings, once per process, and injectable.

Handlers call `services()`; tests and the local stack call `use_services(...)` to point the app
at their own moto endpoint, tables, bucket or clock without patching.
"""
import dataclasses
import datetime
import threading
from typing import Callable, Optional

from chalicelib.config import Settings
from chalicelib.meta.models import bind_models
from chalicelib.observe import watch_client
from chalicelib.ratelimit import WindowLimiter
from chalicelib.storage.objects import ObjectStore

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclasses.dataclass
class Services:
    settings: Settings
    objects: ObjectStore
    clock: Clock = utc_now
    _signing_keys: Optional[list] = None
    _public_url: Optional[str] = None
    _clients: dict = dataclasses.field(default_factory=dict)
    # Denials of callers who proved no identity, per source address (audit.record): bounded, so an
    # anonymous caller cannot make the registry write without limit.
    unproven_denials: WindowLimiter = dataclasses.field(
        default_factory=lambda: WindowLimiter(per_window=10, window_seconds=60), init=False)

    def client(self, service: str):
        """A boto3 client for a service read once per container (Secrets Manager, SSM), watched."""
        if service not in self._clients:
            import boto3
            client = boto3.client(service, region_name=self.settings.region,
                                  endpoint_url=self.settings.aws_endpoint_url)
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


def build_services(settings: Settings, clock: Clock = utc_now) -> Services:
    import boto3  # imported here so a cold start that never touches S3 does not pay for it
    from botocore.config import Config

    s3_config = Config(
        signature_version="s3v4",  # presigned URLs must be SigV4; some defaults produce SigV2
        s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.aws_endpoint_url,
                      config=s3_config)
    watch_client(s3)
    bind_models(settings)
    return Services(settings=settings, objects=ObjectStore(s3, settings.bucket), clock=clock)


_current: Optional[Services] = None
_lock = threading.Lock()


def services() -> Services:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = build_services(Settings.from_environ())
    return _current


def use_services(replacement: Optional[Services]) -> None:
    """Install the services every request will use (None: rebuild from the environment)."""
    global _current
    _current = replacement
