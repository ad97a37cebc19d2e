"""The function URL door (chalicelib/runtime/function_url.py): an event of payload format 2.0 gets
the answer the REST API's event for the same request gets (status, headers, bytes), matched to
the route API Gateway would match, and a request no route takes the OCI 404 API Gateway's gateway
response gives."""
import base64
import json
import types

import pytest

from chalicelib.oci import errors
from chalicelib.runtime.function_url import RouteMatcher
from tests.fixtures import admin_token, error_code


def event(method, raw_path, headers=None, body=b"", query="", cookies=None):
    """What a function URL hands the function (AWS's "payload format version 2.0")."""
    found = {"version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": query,
             "headers": {name.lower(): value for name, value in (headers or {}).items()},
             "requestContext": {"requestId": "req-1", "routeKey": "$default", "stage": "$default",
                                "domainName": "abc.lambda-url.eu-west-1.on.aws",
                                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                                         "sourceIp": "130.176.0.1", "userAgent": "docker/27"}},
             "body": base64.b64encode(body).decode() if body else None, "isBase64Encoded": bool(body)}
    if cookies:
        found["cookies"] = cookies
    return found


@pytest.fixture
def door(registry):
    from app import app
    context = types.SimpleNamespace(aws_request_id="req-1", function_name="dockless")

    def answer(*args, **kwargs):
        found = app(event(*args, **kwargs), context)
        assert set(found) <= {"statusCode", "headers", "body", "isBase64Encoded", "cookies"}
        assert all(isinstance(value, str) for value in found["headers"].values())
        body = base64.b64decode(found["body"]) if found["isBase64Encoded"] else found["body"].encode()
        return found["statusCode"], found["headers"], body, found.get("cookies")
    return answer


def token(registry, path):
    return {"Authorization": "Bearer " + admin_token(path, registry.clock().timestamp())}


def test_a_pull_answers_as_through_the_rest_api(door, push, client, registry):
    body, digest = push.image("team/app", "v1")
    rest = client.get("/v2/team/app/manifests/v1")
    status, headers, got, _ = door("GET", "/v2/team/app/manifests/v1", token(registry, "/v2/team/app/manifests/v1"))
    assert (status, got) == (200, body) == (rest.status_code, rest.body)
    rest_headers = {name.lower(): value for name, value in rest.headers.items()}
    for name in ("docker-content-digest", "content-type", "docker-distribution-api-version", "cache-control"):
        assert headers[name] == rest_headers[name]
    assert headers["docker-content-digest"] == digest
    head = door("HEAD", "/v2/team/app/manifests/v1", token(registry, "/v2/team/app/manifests/v1"))
    assert head[0] == 200 and head[1]["content-length"] == str(len(body)) and head[2] == b""


def test_the_challenge_and_a_push_through_the_door(door, registry):
    status, headers, _, _ = door("GET", "/v2/")
    assert status == 401 and headers["www-authenticate"].startswith('Bearer realm="')
    layer = b"through the function url"
    digest = "sha256:" + __import__("hashlib").sha256(layer).hexdigest()
    status, headers, _, _ = door("POST", "/v2/team/app/blobs/uploads/", token(registry, "/v2/team/app/blobs/uploads/"),
                                 body=layer, query=f"digest={digest}")
    assert status == 201 and headers["docker-content-digest"] == digest
    assert door("HEAD", f"/v2/team/app/blobs/{digest}", token(registry, f"/v2/team/app/blobs/{digest}"))[0] == 200


def test_a_path_is_decoded_before_it_is_routed_and_a_query_keeps_every_value(door, push, registry):
    push.image("team/app", "v1")
    push.image("team/app", "v2")
    status, _, body, _ = door("GET", "/v2/team%2Fapp/tags/list", token(registry, "/v2/team/app/tags/list"), query="n=1")
    assert status == 200 and json.loads(body) == {"name": "team/app", "tags": ["v1"]}


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("DELETE", "/v2/"), ("GET", "/v2/team/app/nothing")])
def test_a_request_no_route_takes_gets_the_gateway_responses_404(door, method, path):
    status, headers, body, _ = door(method, path)
    assert status == 404 and error_code(types.SimpleNamespace(body=body)) == errors.ROUTE_UNKNOWN.code
    assert headers["docker-distribution-api-version"] == "registry/2.0"
    assert json.loads(body)["errors"][0]["detail"] == {"method": method, "path": path}


def test_cookies_go_out_as_cookies_and_come_back_as_the_cookie_header(door, people):
    from urllib.parse import urlencode

    from tests.api.test_console import csrf_field
    status, headers, page, cookies = door("GET", "/ui/signin")
    assert status == 200 and cookies and "set-cookie" not in headers
    jar = [cookie.split(";", 1)[0] for cookie in cookies]
    form = urlencode({"csrf": csrf_field(page.decode()), "name": "reader", "token": people["reader"]}).encode()
    status, headers, _, cookies = door("POST", "/ui/signin", {"Content-Type": "application/x-www-form-urlencoded"},
                                       body=form, cookies=jar)
    assert status == 303 and all("HttpOnly" in cookie for cookie in cookies), cookies
    session = [cookie.split(";", 1)[0] for cookie in cookies if "Max-Age=0" not in cookie]
    assert door("GET", "/ui/", cookies=session)[0] == 200
    assert door("GET", "/ui/")[0] == 401


def test_the_matcher_prefers_a_literal_segment_as_api_gateway_does():
    matcher = RouteMatcher(["/v2/{name0}/{name1}/blobs/{digest}", "/v2/{name0}/blobs/uploads/{upload_id}",
                            "/v2/{name0}/blobs/{digest}", "/v2/_catalog", "/v2/{name0}/tags/list"])
    assert matcher.match("/v2/team/blobs/uploads/abc") == ("/v2/{name0}/blobs/uploads/{upload_id}",
                                                          {"name0": "team", "upload_id": "abc"})
    assert matcher.match("/v2/team/app/blobs/sha256:aa") == ("/v2/{name0}/{name1}/blobs/{digest}",
                                                            {"name0": "team", "name1": "app", "digest": "sha256:aa"})
    assert matcher.match("/v2/_catalog/") == ("/v2/_catalog", {})
    assert matcher.match("/v2//blobs/x") is None


def test_a_request_around_cloudfront_is_refused_behind_the_url_as_behind_api_gateway(door, registry):
    import dataclasses

    from chalicelib.backend import use_backend
    from chalicelib.oci import spec
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings,
                                                                           origin_secret="only-cloudfront-knows")))
    status, _, body, _ = door("GET", "/v2/")
    assert status == 403 and json.loads(body)["errors"][0]["code"] == "DENIED"
    assert door("GET", "/v2/", {spec.ORIGIN_SECRET_HEADER: "a guess"})[0] == 403
    assert door("GET", "/v2/", {spec.ORIGIN_SECRET_HEADER: "only-cloudfront-knows"})[0] == 401
