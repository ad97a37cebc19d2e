"""Settings as a deployed stack passes them (infra/stack.py function_settings): the token key from
Secrets Manager, the public URL from the SSM parameter the stack writes, and the origin secret that
only CloudFront sends. Each is read by the code the way Lambda reads it."""
import base64
import dataclasses
import json

import boto3
import pytest

from chalicelib.backend import use_backend
from chalicelib.oci import spec
from tests.fixtures import error_code

DEPLOYED_URL = "https://d111111abcdef8.cloudfront.net"
ORIGIN_SECRET = "origin-secret-from-cloudfront"


@pytest.fixture
def deployed(registry):
    """The registry's backend with the deployed settings; the admin's token comes from /token."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    token_secret = secrets.create_secret(Name="dockless-test-token-signing-key", SecretString="k" * 64)["ARN"]
    ssm.put_parameter(Name="/dockless/test/public-url", Value=DEPLOYED_URL, Type="String", Overwrite=True)
    settings = dataclasses.replace(registry.settings, token_signing_key=None, token_signing_key_secret=token_secret,
                                   public_url_parameter="/dockless/test/public-url", origin_secret=ORIGIN_SECRET)
    deployed = dataclasses.replace(registry, settings=settings, _signing_keys=None, _public_url=None, _clients={})
    use_backend(deployed)
    from chalicelib.access.service import AuthService
    yield AuthService(deployed).bootstrap_admin()
    secrets.delete_secret(SecretId=token_secret, ForceDeleteWithoutRecovery=True)


def through_cloudfront(headers=None):
    return {spec.ORIGIN_SECRET_HEADER: ORIGIN_SECRET, **(headers or {})}


def test_challenge_names_the_public_url_from_the_parameter(anonymous, deployed):
    response = anonymous.get("/v2/", headers=through_cloudfront())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(f'Bearer realm="{DEPLOYED_URL}/token"')


def test_tokens_are_signed_with_the_key_from_secrets_manager(anonymous, deployed):
    basic = base64.b64encode(f"admin:{deployed}".encode()).decode()
    issued = anonymous.get("/token?service=dockless&scope=repository:team/app:pull",
                           headers=through_cloudfront({"Authorization": f"Basic {basic}"}))
    assert issued.status_code == 200
    token = json.loads(issued.body)["token"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["iss"] == DEPLOYED_URL
    answer = anonymous.get("/v2/", headers=through_cloudfront({"Authorization": f"Bearer {token}"}))
    assert answer.status_code == 200


@pytest.mark.parametrize("header", [None, "a-guess"])
def test_requests_around_the_front_door_are_refused_and_change_nothing(anonymous, deployed, state, header):
    before = state()
    basic = base64.b64encode(f"admin:{deployed}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    if header:
        headers[spec.ORIGIN_SECRET_HEADER] = header
    for method, path in (("GET", "/token?service=dockless"), ("POST", "/v2/team/app/blobs/uploads/"),
                         ("GET", "/v2/")):
        response = anonymous.request(method, path, headers=headers)
        assert response.status_code == 403
        assert error_code(response) == "DENIED"
        assert json.loads(response.body)["errors"][0]["message"] == "requests must come through the registry's front door"
    assert state() == before


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "af-south-1"])
def test_presigned_urls_name_the_buckets_regional_endpoint(region):
    """Without an endpoint override (deployed), every URL the registry signs names
    <bucket>.s3.<region>.amazonaws.com, never the global endpoint: a new bucket outside us-east-1
    answers global URLs with redirects and signature errors until DNS settles, and opt-in regions
    never answer them."""
    from urllib.parse import urlsplit

    from chalicelib.runtime.config import Settings
    from chalicelib.backend import s3_client
    from chalicelib.storage.objects import ObjectStore
    settings = Settings.from_environ({"AWS_DEFAULT_REGION": region, "DOCKLESS_BUCKET": "the-bucket"})
    objects = ObjectStore(s3_client(settings, None), "the-bucket")
    urls = [objects.presign_get("blobs/sha256/" + "a" * 64),
            objects.presign_put("blobs/direct/x", 10, "a" * 64)[0],
            objects.presign_part("blobs/direct/x", "upload-id", 1, 10, "A" * 43 + "=")[0]]
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc == f"the-bucket.s3.{region}.amazonaws.com", url
        assert f"%2F{region}%2Fs3%2Faws4_request" in parts.query  # SigV4, scoped to the region
