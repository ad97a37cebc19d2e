"""The in-process tier's moto mock. Package-scoped and defined here, so it ends with this package:
moto patches botocore and `requests` while it is active, which must not reach the tiers that
start a real moto server in this process."""
import dataclasses
import json

import pytest
from moto import mock_aws

from chalicelib.backend import build_backend, use_backend
from chalicelib.metadata.models import create_tables
from chalicelib.runtime.config import Settings
from tests.fixtures import PUBLIC_URL, SIGNING_KEY

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="package")
def aws():
    """One moto mock, bucket and set of tables for this package; emptied before each test."""
    with mock_aws():
        settings = Settings.from_environ({
            "DOCKLESS_BUCKET": "test-bucket", "DOCKLESS_TABLE_PREFIX": "test",
            "DOCKLESS_PUBLIC_URL": PUBLIC_URL, "AWS_DEFAULT_REGION": "us-east-1",
            "DOCKLESS_TOKEN_SIGNING_KEY": SIGNING_KEY})
        backend = build_backend(settings)
        backend.objects.create_bucket(settings.region)
        create_tables()
        yield backend


@pytest.fixture
def people(client):
    """A reader of team/app and a user with no grants, each with an access token (the console's
    tests and the function URL door's)."""
    tokens = {}
    for name in ("reader", "nobody"):
        assert client.post("/dockless/admin/v1/principals", body=json.dumps({"name": name}), headers=JSON).status_code == 201
        tokens[name] = client.post(f"/dockless/admin/v1/principals/{name}/tokens", body="{}",
                                   headers=JSON).json_body["token"]
    client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": "team/app", "subject": "user:reader",
                                                             "role": "read"}), headers=JSON)
    return tokens


@pytest.fixture
def boss(client):
    """An admin, with an access token."""
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "boss", "admin": True}), headers=JSON)
    return client.post("/dockless/admin/v1/principals/boss/tokens", body="{}", headers=JSON).json_body["token"]


@pytest.fixture
def registry_key(registry):
    """`use(armored, secret)`: the registry signs automatically with this key, from the environment
    (as the local stack passes it) or from its Secrets Manager secret (as deployed); the process
    forgets the key it read before and after the test."""
    import chalicelib.signing.service as service_module

    def use(armored=None, secret=None):
        service_module._registry_fingerprint = service_module._registry_cosign = None
        use_backend(dataclasses.replace(registry, settings=dataclasses.replace(
            registry.settings, registry_signing_key=armored, registry_signing_key_secret=secret)))
    yield use
    service_module._registry_fingerprint = service_module._registry_cosign = None
