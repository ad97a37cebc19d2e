"""In-process API tests: the Chalice app through chalice.test.Client, AWS mocked by moto in the
same process. Fast; the e2e tier repeats the important paths with real clients and a moto server."""
import datetime
import json

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.config import Settings
from chalicelib.meta.models import create_tables
from chalicelib.services import build_services, use_services

PUBLIC_URL = "https://registry.example.test"


class FakeClock:
    def __init__(self):
        self.now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += datetime.timedelta(**kwargs)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def registry(aws, clock):
    settings = Settings.from_environ({"DOCKLESS_BUCKET": "test-bucket", "DOCKLESS_TABLE_PREFIX": "test",
                                      "DOCKLESS_PUBLIC_URL": PUBLIC_URL, "AWS_DEFAULT_REGION": "us-east-1"})
    services = build_services(settings, clock=clock)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="test-bucket")
    create_tables()
    use_services(services)
    yield services
    use_services(None)


@pytest.fixture
def client(registry):
    from app import app
    with Client(app) as test_client:
        yield test_client.http
