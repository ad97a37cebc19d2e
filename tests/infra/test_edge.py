"""The Lambda@Edge origin-response function on CloudFront's event shape."""
import json

import pytest

from chalicelib.oci import errors, spec
from infra.edge import restore_headers
from infra.edge.restore_headers import handler


def cloudfront_event(headers, status="401"):
    return {"Records": [{"cf": {"config": {"eventType": "origin-response"},
                                "response": {"status": status, "headers": headers}}}]}


FUNCTION_URLS_OWN = {"content-type": [{"key": "Content-Type", "value": "application/json"}],
                     "x-amzn-errortype": [{"key": "x-amzn-ErrorType", "value": "RequestEntityTooLargeException"}],
                     "content-length": [{"key": "Content-Length", "value": "84"}]}


@pytest.mark.parametrize("status, error, retry", [("413", errors.FRONT_DOOR_TOO_LARGE, False),
                                                  ("429", errors.TOOMANYREQUESTS, True),
                                                  ("502", errors.FRONT_DOOR_FAILED, False),
                                                  ("504", errors.FRONT_DOOR_FAILED, True)])
def test_the_function_urls_own_refusals_get_the_oci_body_the_gateway_responses_give(status, error, retry):
    response = handler(cloudfront_event(json.loads(json.dumps(FUNCTION_URLS_OWN)), status), None)
    assert response["status"] == status
    assert json.loads(response["body"]) == json.loads(errors.error_body(error)) and response["bodyEncoding"] == "text"
    headers = {name: entries[0]["value"] for name, entries in response["headers"].items()}
    assert headers["content-type"] == spec.JSON
    assert headers[spec.API_VERSION_HEADER.lower()] == spec.API_VERSION
    assert headers["cache-control"] == spec.CACHE_CONTROL and headers[spec.SIGNATURES_HEADER.lower()] == "1"
    assert "content-length" not in headers and "x-amzn-errortype" not in headers
    assert ("retry-after" in headers) == retry
    if retry:
        assert headers["retry-after"] == restore_headers.RETRY_AFTER_SECONDS


def test_the_apps_own_errors_are_left_as_they_are():
    ours = {"content-type": [{"key": "Content-Type", "value": "application/json"}],
            "docker-distribution-api-version": [{"key": "Docker-Distribution-Api-Version", "value": "registry/2.0"}],
            "retry-after": [{"key": "Retry-After", "value": "1"}]}
    response = handler(cloudfront_event(json.loads(json.dumps(ours)), "503"), None)
    assert "body" not in response and response["headers"] == ours


def test_restores_www_authenticate_that_api_gateway_renamed():
    challenge = 'Bearer realm="https://registry.example/token",service="registry.example"'
    response = handler(cloudfront_event({
        "x-amzn-remapped-www-authenticate": [{"key": "x-amzn-Remapped-WWW-Authenticate", "value": challenge}],
        "content-type": [{"key": "Content-Type", "value": "application/json"}],
    }), None)
    assert response["headers"]["www-authenticate"] == [{"key": "WWW-Authenticate", "value": challenge}]
    assert "x-amzn-remapped-www-authenticate" not in response["headers"]
    assert response["headers"]["content-type"][0]["value"] == "application/json"


def test_leaves_responses_without_remapped_headers_alone():
    headers = {"location": [{"key": "Location", "value": "https://s3.example/x"}]}
    assert handler(cloudfront_event(dict(headers)), None)["headers"] == headers


def test_restores_the_functions_content_length_over_api_gateways():
    response = handler(cloudfront_event({
        "x-amzn-remapped-content-length": [{"key": "x-amzn-Remapped-Content-Length", "value": "1234"}],
        "content-length": [{"key": "Content-Length", "value": "0"}],
    }), None)
    assert response["headers"]["content-length"] == [{"key": "Content-Length", "value": "1234"}]
    assert "x-amzn-remapped-content-length" not in response["headers"]
