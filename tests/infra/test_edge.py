"""The Lambda@Edge origin-response function on CloudFront's event shape; the blob gate's
CloudFront Function run by node beside the registry's own decision."""
import base64
import hashlib
import json
import random
import shutil
import subprocess
import time

import pytest

from chalicelib.access import edge, jwt
from chalicelib.oci import errors, spec
from infra import stack
from infra.edge import restore_headers
from infra.edge.restore_headers import handler
from tests.api.test_edge import edge_cases


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


# --- the blob gate (infra/edge/blob_gate.js), against chalicelib/access/edge.py ------------------

GATE_HARNESS = r"""
const fs = require('fs');
const selected = [];
const cf = {selectRequestOriginById: (id) => selected.push(id)};
const source = fs.readFileSync(process.argv[2], 'utf8').replace("import cf from 'cloudfront';", '');
const handler = new Function('cf', 'require', source + '\nreturn handler;')(cf, require);
const out = [];
for (const [authorization, method, target] of JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))) {
  const uri = target.split('?')[0];  // CloudFront hands the function the query apart
  selected.length = 0;
  const headers = {host: {value: 'registry.example.com'}, 'x-amz-meta-evil': {value: '1'}, range: {value: 'bytes=0-'}};
  if (authorization) headers.authorization = {value: authorization};
  const request = handler({request: {method, uri, headers, querystring: {a: {value: '1'}}}});
  out.push({selected: selected.slice(), uri: request.uri, headers: request.headers, querystring: request.querystring});
}
console.log(JSON.stringify(out));
"""


def _gate(tmp_path, secret: str, cases):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = stack.blob_gate_code()["Fn::Join"][1]
    (tmp_path / "gate.js").write_text(code[0] + secret + code[2])
    (tmp_path / "harness.js").write_text(GATE_HARNESS)
    (tmp_path / "cases.json").write_text(json.dumps([case[:3] for case in cases]))
    run = subprocess.run([node, str(tmp_path / "harness.js"), str(tmp_path / "gate.js"), str(tmp_path / "cases.json")],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_the_blob_gate_decides_as_the_registry_does(tmp_path):
    """The deployed gate's JavaScript and edge.admits on the same hostile cases (tests/api/test_edge.py
    edge_cases): each admits exactly what the other does; what it admits goes to the bucket at the
    blob's content-addressed key, with nothing of the viewer's but a Range, and what it does not
    goes on to the API untouched but for the viewer's Host."""
    secret = "edge-secret-for-the-gate"
    now = int(time.time())
    layer = "sha256:" + hashlib.sha256(b"a layer").hexdigest()
    claims = jwt.new_claims("https://registry.example.com", "rea", "dockless", None,
                            [{"type": "repository", "name": "team/app", "actions": ["pull"]}], now, 300)
    direct = "sha256:" + hashlib.sha256(b"a layer uploaded directly").hexdigest()
    claims["edge"] = edge.claim(secret.encode(), "team/app", claims["exp"],
                                [edge.entry(layer, f"blobs/sha256/{layer[7:]}"), edge.entry(direct, f"blobs/direct/{'d' * 32}")])
    issued = jwt.encode(claims, b"the token key, which the edge never holds")
    cases = edge_cases(issued, layer, now)
    expired = dict(claims, edge=edge.claim(secret.encode(), "team/app", now - 1, [layer[7:]]))
    cases.append((f"Bearer {jwt.encode(expired, b'k')}", "GET", f"/v2/team/app/blobs/{layer}", False))
    cases.append((f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{direct}", True))
    assert any(expected for *_, expected in cases) and not all(expected for *_, expected in cases)
    for (authorization, method, path, expected), out in zip(cases, _gate(tmp_path, secret, cases)):
        key = edge.admits(secret.encode(), authorization, method, path, time.time())
        assert (key is not None) is expected, (authorization[:50], path)
        if expected:
            assert key in (f"blobs/sha256/{layer[7:]}", f"blobs/direct/{'d' * 32}")
            assert out["selected"] == ["blobs"] and out["uri"] == f"/{key}", out
            assert out["headers"] == {"range": {"value": "bytes=0-"}} and out["querystring"] == {}
        else:
            assert out["selected"] == [] and out["uri"] == path, (authorization[:50], method, path, out)
            assert out["headers"][spec.VIEWER_HOST_HEADER.lower()] == {"value": "registry.example.com"}
            assert out["headers"].get("authorization", {}).get("value", "") == authorization


def _mutations(issued: str, layer: str, count: int, seed: int = 32):
    """Hostile variants of a valid request: the token's text cut, spliced and flipped, its claim's
    fields swapped for other types and values, the path bent. Seeded: the same cases each run."""
    rng = random.Random(seed)
    header, body, signature = issued.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    values = [None, True, 0, -1, 1.0, 1e300, 2 ** 64, "", "x" * 300, [], {}, ["a"], {"repo": "team/app"},
              claims["edge"]["exp"], str(claims["edge"]["exp"]), claims["edge"]["blobs"], "team/app", "\u00e9\u0000"]
    paths = [f"/v2/team/app/blobs/{layer}", f"/v2/team/app/blobs/{layer.upper()}", f"/v2/team/app//blobs/{layer}",
             f"/v2/team/app/blobs/{layer}/", f"/v2/team/app/blobs/{layer[:-1]}", f"/v2/team/app/blobs/sha512:{layer[7:]}",
             f"/v2/Team/app/blobs/{layer}", f"/v2/team/app/blobs/{layer}?x=1"]

    def encode(document) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    for _ in range(count):
        kind = rng.randrange(5)
        token = issued
        if kind == 0:  # a field of the claim replaced
            edge_claim = dict(claims["edge"], **{rng.choice(["repo", "exp", "blobs", "mac", "other"]): rng.choice(values)})
            token = f"{header}.{encode(dict(claims, edge=edge_claim))}.{signature}"
        elif kind == 1:  # the claim itself replaced
            token = f"{header}.{encode(dict(claims, edge=rng.choice(values)))}.{signature}"
        elif kind == 2:  # the token's text damaged
            at = rng.randrange(len(issued))
            token = issued[:at] + rng.choice(["", ".", "=", "%", " ", "\u00e9", "A", "-"]) + issued[at + rng.randrange(2):]
        elif kind == 3:  # the payload not JSON, or not an object
            token = f"{header}.{rng.choice([encode([1]), encode('s'), 'not-base64!', encode(None), ''])}.{signature}"
        scheme = rng.choice(["Bearer ", "bearer ", "Bearer  ", "Basic ", "Bearer\t", ""])
        yield scheme + token, rng.choice(["GET", "GET", "GET", "HEAD", "PUT"]), rng.choice(paths)


def test_the_blob_gate_and_the_registry_agree_on_hostile_requests(tmp_path):
    """A bounded fuzz round (200 seeded cases): never an exception in either, never a difference."""
    secret = "edge-secret-for-the-gate"
    now = int(time.time())
    layer = "sha256:" + hashlib.sha256(b"a layer").hexdigest()
    claims = jwt.new_claims("https://registry.example.com", "rea", "dockless", None, [], now, 300)
    claims["edge"] = edge.claim(secret.encode(), "team/app", claims["exp"], [layer[7:]])
    issued = jwt.encode(claims, b"the token key")
    cases = [(*case, None) for case in _mutations(issued, layer, 200)]
    outs = _gate(tmp_path, secret, cases)
    admitted = 0
    for (authorization, method, path, _), out in zip(cases, outs):
        key = edge.admits(secret.encode(), authorization, method, path.partition("?")[0], time.time())
        assert (key is not None) == (out["selected"] == ["blobs"]), (authorization[:80], method, path, out)
        if key is not None:
            admitted += 1
            assert out["uri"] == f"/{key}" and key == f"blobs/sha256/{layer[7:]}"
    assert 0 < admitted < len(cases)
