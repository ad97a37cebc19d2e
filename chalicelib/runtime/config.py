"""Settings: the one place that reads the environment.

Each setting names the environment variable it comes from. Deployed, the stack sets them from its
own resources (`infra/stack.py` function_settings); the local stack (`dockless serve`) and the
tests set them for their own moto server.
"""
from __future__ import annotations
import dataclasses
import os
import re
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

from chalicelib.oci import spec
from chalicelib.runtime.function_url import API_GATEWAY_DOOR

# How long the functions' log groups keep their lines (the stack's LogRetentionDays), unless the
# deployment chose another of CloudWatch's retention periods.
LOG_RETENTION_DAYS = 400
LOG_RETENTION_CHOICES = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                         2922, 3288, 3653)


class SingleSignOn(NamedTuple):
    """The company's OpenID Connect provider, for people (chalicelib/access/sso.py)."""
    issuer: str  # DOCKLESS_SSO_ISSUER: its issuer URL (https; http only on loopback, the local stack)
    client_id: str  # DOCKLESS_SSO_CLIENT_ID: the registry's client at the provider
    # DOCKLESS_SSO_CLIENT_SECRET: the client's secret (the local stack; none for a public client);
    # deployed it comes from the Secrets Manager secret DOCKLESS_SSO_CLIENT_SECRET_SECRET.
    client_secret: Optional[str]
    client_secret_secret: Optional[str]
    # DOCKLESS_SSO_TEAMS: "GROUP=TEAM,GROUP=TEAM": the provider's groups that make a person a member
    # of a team (other groups give nothing).
    teams: Dict[str, str]
    username_claim: str  # DOCKLESS_SSO_USERNAME_CLAIM (preferred_username): the principal's name
    groups_claim: str  # DOCKLESS_SSO_GROUPS_CLAIM (groups)
    scopes: str  # DOCKLESS_SSO_SCOPES (openid profile email): what the registry asks the provider for

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Optional["SingleSignOn"]:
        issuer, client_id = environ.get("DOCKLESS_SSO_ISSUER"), environ.get("DOCKLESS_SSO_CLIENT_ID")
        if not issuer or not client_id:
            return None
        pairs = [pair.partition("=") for pair in environ.get("DOCKLESS_SSO_TEAMS", "").split(",") if pair.strip()]
        return cls(issuer, client_id,  # the issuer exactly as its tokens' iss says it
                   environ.get("DOCKLESS_SSO_CLIENT_SECRET") or None,
                   environ.get("DOCKLESS_SSO_CLIENT_SECRET_SECRET") or None,
                   {group.strip(): team.strip() for group, _, team in pairs if group.strip() and team.strip()},
                   environ.get("DOCKLESS_SSO_USERNAME_CLAIM") or "preferred_username",
                   environ.get("DOCKLESS_SSO_GROUPS_CLAIM") or "groups",
                   environ.get("DOCKLESS_SSO_SCOPES") or "openid profile email")


@dataclasses.dataclass(frozen=True)
class Settings:
    # DOCKLESS_BUCKET: the one private bucket that holds blobs, manifests and staged uploads.
    bucket: str
    # DOCKLESS_TABLE_PREFIX: every DynamoDB table is named "<prefix>-<concern>", so tests, the local
    # stack and each deployed stage keep their own tables.
    table_prefix: str
    # DOCKLESS_PUBLIC_URL: the registry as clients reach it (front door or local stack), without a
    # trailing slash. Used for absolute URLs the registry hands out.
    public_url: str
    # DOCKLESS_PUBLIC_URL_PARAMETER: deployed, the SSM parameter holding the public URL instead.
    # The stack writes it once CloudFront's domain exists; the functions read it once per
    # container (Backend.public_url), which keeps the functions independent of the distribution
    # that depends on their API (no dependency cycle).
    public_url_parameter: Optional[str]
    # AWS_REGION (set by Lambda) or AWS_DEFAULT_REGION.
    region: str
    # DOCKLESS_AWS_ENDPOINT_URL: where S3 and DynamoDB answer; unset in AWS, the moto server locally.
    aws_endpoint_url: Optional[str]
    # DOCKLESS_S3_PRESIGN_ENDPOINT_URL: where clients reach S3, when that is not where the API does
    # (the local stack's public S3 door, dockless/local/aws.py). Unset in AWS: presigned URLs name
    # the bucket's regional endpoint.
    s3_presign_endpoint_url: Optional[str]
    # DOCKLESS_UPLOAD_TTL_SECONDS: how long an upload session may stay open without completing.
    upload_ttl_seconds: int
    # DOCKLESS_GC_GRACE_SECONDS: how long garbage collection waits between finding a link, manifest or
    # object unneeded and deleting it (chalicelib/lifecycle/gc.py); far longer than any request.
    gc_grace_seconds: int
    # DOCKLESS_MULTIPART_THRESHOLD_BYTES: direct uploads above this size use S3 multipart; S3's
    # single-PUT limit by default, lowered by tests to exercise multipart with small data.
    multipart_threshold_bytes: int
    # DOCKLESS_PART_BYTES: preferred multipart part size (raised when a blob would need more than
    # S3's 10,000 parts).
    part_bytes: int
    # DOCKLESS_TOKEN_SERVICE: the `service` of Docker's token auth (the JWT audience).
    token_service: str
    # DOCKLESS_TOKEN_SIGNING_KEY: the secret that signs access tokens (HS256). Deployed it comes
    # from Secrets Manager instead: DOCKLESS_TOKEN_SIGNING_KEY_SECRET names the secret, read once
    # per container (backend.py). The local stack generates one per run.
    token_signing_key: Optional[str]
    token_signing_key_secret: Optional[str]
    # DOCKLESS_REGISTRY_SIGNING_KEY: the registry's own armoured secret key, for automatic signing;
    # deployed it comes from the Secrets Manager secret DOCKLESS_REGISTRY_SIGNING_KEY_SECRET.
    registry_signing_key: Optional[str]
    registry_signing_key_secret: Optional[str]
    # DOCKLESS_AUDIT_RETENTION_DAYS: how long audit events stay in DynamoDB (TTL); the scheduled
    # export keeps them in S3 beyond that.
    audit_retention_days: int
    # DOCKLESS_TRUSTED_PROXY_HOPS: how many proxies in front of the app append to X-Forwarded-For
    # (CloudFront, then API Gateway: 2). The client's address is the entry that many from the end;
    # 0 trusts no header and uses the connection's address (the local stack).
    trusted_proxy_hops: int
    # DOCKLESS_ORIGIN_SECRET: deployed, the value CloudFront sends in ORIGIN_SECRET_HEADER; a request
    # without it came around the front door (straight to API Gateway) and is refused.
    origin_secret: Optional[str]
    # DOCKLESS_EDGE_SECRET: the key of the edge's claim in pull tokens (chalicelib/access/edge.py),
    # which the edge's blob gate holds too; without it no token carries the claim and every blob
    # GET reaches the function.
    edge_secret: Optional[bytes]
    # DOCKLESS_DOOR: the door CloudFront sends requests through ("api-gateway" or "function-url",
    # infra/stack.py's Door parameter), for what the estimates price; the local stack's own door.
    door: str
    # DOCKLESS_LOG_RETENTION_DAYS: how long the log groups keep the records (the LogRetentionDays
    # parameter), for what the estimates price.
    log_retention_days: int
    # AWS_LAMBDA_FUNCTION_NAME (set by Lambda): running in Lambda, where the request and job
    # records go to stdout as CloudWatch embedded-metric-format lines.
    in_lambda: bool
    # Single sign-on for people, when DOCKLESS_SSO_ISSUER and DOCKLESS_SSO_CLIENT_ID are set.
    sso: Optional[SingleSignOn] = None
    # Events (chalicelib/events): DOCKLESS_EVENTS_QUEUE_URL, the FIFO queue every change's event
    # goes to once committed (none: no events); DOCKLESS_DELIVERIES_QUEUE_URL, the FIFO queue of
    # webhook deliveries; DOCKLESS_DEAD_LETTER_QUEUE_URL, where a delivery given up on goes;
    # DOCKLESS_EVENT_BUS, the EventBridge bus every event is put on (none: no bus).
    events_queue_url: Optional[str] = None
    deliveries_queue_url: Optional[str] = None
    dead_letter_queue_url: Optional[str] = None
    event_bus: Optional[str] = None
    # DOCKLESS_SCANS_QUEUE_URL: the queue of scans and rematches (chalicelib/scanning; none: no scans).
    scans_queue_url: Optional[str] = None
    # DOCKLESS_ADVISORY_FEEDS: https URLs (comma-separated) of OSV advisories imported daily
    # (chalicelib/scanning/feeds.py): OSV's per-ecosystem zip archives or OSV JSON.
    advisory_feeds: Tuple[str, ...] = ()
    # DOCKLESS_SCAN_PUSHES (default 1): every image push is scanned; 0: an image is scanned when
    # its report is first asked for (`dockless scan show`), as the end-to-end tests' shared stack does.
    scan_pushes: bool = True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        return cls(
            bucket=environ.get("DOCKLESS_BUCKET", "dockless-local"),
            table_prefix=environ.get("DOCKLESS_TABLE_PREFIX", "dockless-local"),
            public_url=environ.get("DOCKLESS_PUBLIC_URL", "http://localhost:5000").rstrip("/"),
            public_url_parameter=environ.get("DOCKLESS_PUBLIC_URL_PARAMETER") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_endpoint_url=environ.get("DOCKLESS_AWS_ENDPOINT_URL") or None,
            s3_presign_endpoint_url=environ.get("DOCKLESS_S3_PRESIGN_ENDPOINT_URL") or None,
            upload_ttl_seconds=int(environ.get("DOCKLESS_UPLOAD_TTL_SECONDS", str(24 * 3600))),
            gc_grace_seconds=int(environ.get("DOCKLESS_GC_GRACE_SECONDS", "3600")),
            multipart_threshold_bytes=int(environ.get("DOCKLESS_MULTIPART_THRESHOLD_BYTES",
                                                      str(spec.S3_MAX_SINGLE_PUT_BYTES))),
            part_bytes=max(spec.S3_MIN_PART_BYTES,
                           int(environ.get("DOCKLESS_PART_BYTES", str(spec.DIRECT_PART_BYTES)))),
            token_service=environ.get("DOCKLESS_TOKEN_SERVICE", "dockless"),
            token_signing_key=environ.get("DOCKLESS_TOKEN_SIGNING_KEY") or None,
            token_signing_key_secret=environ.get("DOCKLESS_TOKEN_SIGNING_KEY_SECRET") or None,
            registry_signing_key=environ.get("DOCKLESS_REGISTRY_SIGNING_KEY") or None,
            registry_signing_key_secret=environ.get("DOCKLESS_REGISTRY_SIGNING_KEY_SECRET") or None,
            audit_retention_days=int(environ.get("DOCKLESS_AUDIT_RETENTION_DAYS", "400")),
            trusted_proxy_hops=int(environ.get("DOCKLESS_TRUSTED_PROXY_HOPS", "0")),
            origin_secret=environ.get("DOCKLESS_ORIGIN_SECRET") or None,
            edge_secret=(environ.get("DOCKLESS_EDGE_SECRET") or "").encode() or None,
            door=environ.get("DOCKLESS_DOOR", API_GATEWAY_DOOR),
            log_retention_days=int(environ.get("DOCKLESS_LOG_RETENTION_DAYS") or LOG_RETENTION_DAYS),
            in_lambda=bool(environ.get("AWS_LAMBDA_FUNCTION_NAME")),
            sso=SingleSignOn.from_environ(environ),
            events_queue_url=environ.get("DOCKLESS_EVENTS_QUEUE_URL") or None,
            deliveries_queue_url=environ.get("DOCKLESS_DELIVERIES_QUEUE_URL") or None,
            dead_letter_queue_url=environ.get("DOCKLESS_DEAD_LETTER_QUEUE_URL") or None,
            event_bus=environ.get("DOCKLESS_EVENT_BUS") or None,
            scans_queue_url=environ.get("DOCKLESS_SCANS_QUEUE_URL") or None,
            scan_pushes=environ.get("DOCKLESS_SCAN_PUSHES", "1") != "0",
            advisory_feeds=tuple(url for url in re.split(r"[,\s]+", environ.get("DOCKLESS_ADVISORY_FEEDS", "")) if url),
        )

    def table_name(self, concern: str) -> str:
        return f"{self.table_prefix}-{concern}"


def aws_call_log() -> Optional[str]:
    """DOCKLESS_AWS_CALL_LOG (tests only): a file every process appends the app's AWS calls to,
    read at each call so a test run can set it after import."""
    return os.environ.get("DOCKLESS_AWS_CALL_LOG") or None

