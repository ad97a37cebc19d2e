"""The Lambda@Edge origin-response function on CloudFront's event shape."""
from infra.edge.restore_headers import handler


def cloudfront_event(headers):
    return {"Records": [{"cf": {"config": {"eventType": "origin-response"},
                                "response": {"status": "401", "headers": headers}}}]}


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
