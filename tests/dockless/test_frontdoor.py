"""The local front door behaves like the deployed one (DESIGN.md §1a), over real HTTP."""
import hashlib
import http.client
import json
import threading
import time

import pytest
from chalice import Response

from chalicelib.oci import spec
from chalicelib.runtime.application import create_app
from dockless.local.frontdoor import FrontDoor, make_server
from tests.fixtures import raw_exchange


def probe_app():
    app = create_app()

    @app.route("/echo", methods=["POST", "PUT", "PATCH"], content_types=["*/*"])
    def echo():
        request = app.current_request
        body = request.raw_body or b""
        return {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body),
                "host": request.headers.get("host"), "forwarded_host": request.headers.get("x-forwarded-host")}

    @app.route("/slow/{tag}", methods=["POST"], content_types=["*/*"])
    def slow(tag):
        time.sleep(float(app.current_request.query_params.get("sleep", "0.3")))
        # Read the request after sleeping: another thread's request must not have replaced it.
        return {"tag": tag, "body": app.current_request.raw_body.decode()}

    @app.route("/sized", methods=["GET", "HEAD"])
    def sized():
        return Response(body="0123456789", headers={"Content-Length": "10", "Content-Type": "text/plain"})

    @app.route("/challenge", methods=["GET"])
    def challenge():
        return Response(body="{}", status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="https://r.example/token"'})

    return app


@pytest.fixture(scope="module")
def door():
    front_door = FrontDoor(probe_app(), timeout_seconds=2)
    server = make_server(front_door, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield front_door, server.server_address[1]
    server.shutdown()
    server.server_close()


def call(port, method, path, body=None, headers=None, chunked=False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if chunked:
        connection.putrequest(method, path)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for start in range(0, len(body), 65536):
            piece = body[start:start + 65536]
            connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.send(b"0\r\n\r\n")
    else:
        connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response, payload


def test_chunked_body_reaches_the_app_whole_and_exact(door):
    _, port = door
    data = bytes(range(256)) * 1000
    response, payload = call(port, "PATCH", "/echo", data, chunked=True)
    assert response.status == 200
    assert json.loads(payload) == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data),
                                   "host": "origin.execute-api.local", "forwarded_host": f"127.0.0.1:{port}"}


def test_binary_body_without_content_type_arrives_byte_exact(door):
    _, port = door
    data = b"\xff\xfe\x00not utf-8\x80"
    response, payload = call(port, "POST", "/echo", data)
    assert json.loads(payload)["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("chunked", [False, True])
def test_body_above_10_mib_is_refused_before_the_function(door, chunked):
    _, port = door
    response, payload = call(port, "PUT", "/echo", b"x" * (spec.FRONT_DOOR_MAX_BODY_BYTES + 1), chunked=chunked)
    assert response.status == 413
    error = json.loads(payload)["errors"][0]
    assert error["code"] == "SIZE_INVALID"
    assert "dockless gateway" in error["detail"]["advice"]


def test_event_above_lambda_payload_never_reaches_the_function(door):
    _, port = door
    # 5 MiB base64-encodes to 6.7 MiB: under API Gateway's 10 MiB, over Lambda's 6 MiB.
    response, payload = call(port, "PUT", "/echo", b"x" * (5 * spec.MiB))
    assert response.status == 502
    assert "6 MB" in json.loads(payload)["errors"][0]["detail"]["reason"]


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("DELETE", "/echo")])
def test_unknown_route_is_answered_by_the_gateway_as_oci_json(door, method, path):
    _, port = door
    response, payload = call(port, method, path)
    assert response.status == 404
    assert json.loads(payload)["errors"][0]["code"] == "NOT_FOUND"
    assert response.headers["X-Registry-Supports-Signatures"] == "1"


def test_function_slower_than_the_timeout_gets_504(door):
    _, port = door
    response, payload = call(port, "POST", "/slow/a?sleep=3", b"a")
    assert response.status == 504
    assert json.loads(payload)["errors"][0]["code"] == "UNAVAILABLE"


def test_the_timeout_counts_from_the_functions_start_not_from_a_wait_for_a_worker():
    """Lambda runs every request at once; this door has a pool of workers. Requests that waited for
    one (all sixteen busy) are not timed out for the wait: only a function that runs too long is."""
    front_door = FrontDoor(probe_app(), timeout_seconds=1.5)
    server = make_server(front_door, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answers = []

        def one(number):
            answers.append(call(server.server_address[1], "POST", f"/slow/{number}?sleep=0.8", b"x")[0].status)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(40)]  # 40 of 0.8 s on 16 workers: 2.4 s
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join()
        assert answers == [200] * 40
    finally:
        server.shutdown()
        server.server_close()


def test_a_heads_content_length_is_the_functions_as_the_edge_restores_it(door):
    _, port = door
    response, _ = call(port, "HEAD", "/sized")
    assert response.headers["Content-Length"] == "10"
    assert "x-amzn-Remapped-Content-Length" not in response.headers
    response, payload = call(port, "GET", "/sized")
    assert response.headers["Content-Length"] == "10" and payload == b"0123456789"


def test_www_authenticate_is_restored_for_the_client(door):
    _, port = door
    response, _ = call(port, "GET", "/challenge")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="https://r.example/token"'


def test_concurrent_requests_each_see_their_own_request(door):
    _, port = door
    results = {}

    def one(tag):
        _, payload = call(port, "POST", f"/slow/{tag}?sleep=0.5", tag.encode())
        results[tag] = json.loads(payload)

    threads = [threading.Thread(target=one, args=(tag,)) for tag in ("first", "second", "third")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {tag: {"tag": tag, "body": tag} for tag in ("first", "second", "third")}


@pytest.mark.parametrize("path, status, code", [
    # API Gateway decodes the path before routing: %2F separates components like /.
    ("/v2/" + "%2F".join("abcdefghi") + "/blobs/uploads/", 404, "NOT_FOUND"),
    ("/v2/team%2Fapp/blobs/uploads/", 202, None),
    # Encoded twice, the slash stays inside one component: refused, never a deeper name.
    ("/v2/team%252Fapp/blobs/uploads/", 400, "NAME_INVALID"),
    ("/v2/team/app%3Fx/blobs/uploads/", 400, "NAME_INVALID"),
])
def test_encoded_slashes_route_as_api_gateway_routes_them(stack, http, path, status, code):
    response = http.post(stack.api_url + path)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["errors"][0]["code"] == code
    else:
        assert response.headers["Location"].startswith(f"{stack.public_url or ''}") and \
            "/v2/team/app/blobs/uploads/" in response.headers["Location"]


MALFORMED_BODIES = {
    "negative chunk size": b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n",
    "0x chunk size": b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "underscore chunk size": b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "signed chunk size": b"Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
    "space before size": b"Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n",
    "bare LF": b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "no CRLF after data": b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
    "both framings": b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "other coding": b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "length not a number": b"Content-Length: 3x\r\n\r\nabc",
    "signed length": b"Content-Length: +3\r\n\r\nabc",
    "two lengths": b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_BODIES))
def test_malformed_body_framing_is_400_and_the_connection_closes(door, kind):
    _, port = door
    answer = raw_exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\n" + MALFORMED_BODIES[kind]
                          + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request", answer[:200]
    assert b'"code": "BAD_REQUEST"' in rest
    assert answer.count(b"HTTP/1.1 ") == 1  # the smuggled second request was never answered


def test_chunk_extensions_and_trailers_are_allowed(door):
    _, port = door
    answer = raw_exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert hashlib.sha256(b"abc").hexdigest().encode() in answer
