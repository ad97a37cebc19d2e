"""Settings: the one place that reads the environment.

Each setting names the environment variable it comes from. `.chalice/config.json` sets them per
stage; the local stack (`dockless serve`) and the tests set them for their own moto server.
"""
import dataclasses
import os
from typing import Mapping, Optional


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
    # AWS_REGION (set by Lambda) or AWS_DEFAULT_REGION.
    region: str
    # DOCKLESS_AWS_ENDPOINT_URL: where S3 and DynamoDB answer; unset in AWS, the moto server locally.
    aws_endpoint_url: Optional[str]
    # DOCKLESS_UPLOAD_TTL_SECONDS: how long an upload session may stay open without completing.
    upload_ttl_seconds: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        return cls(
            bucket=environ.get("DOCKLESS_BUCKET", "dockless-local"),
            table_prefix=environ.get("DOCKLESS_TABLE_PREFIX", "dockless-local"),
            public_url=environ.get("DOCKLESS_PUBLIC_URL", "http://localhost:5000").rstrip("/"),
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_endpoint_url=environ.get("DOCKLESS_AWS_ENDPOINT_URL") or None,
            upload_ttl_seconds=int(environ.get("DOCKLESS_UPLOAD_TTL_SECONDS", str(24 * 3600))),
        )

    def table_name(self, concern: str) -> str:
        return f"{self.table_prefix}-{concern}"
