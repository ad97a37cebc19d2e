"""Fuzz tier, over HTTP: raw requests to the local front door and to the gateway (the local stack
runs in this process), with any method, percent-encoded targets, headers, bodies and broken
framing (bad chunk sizes, lengths that lie, both framings at once). Whatever comes in: the answer
is a well-formed status line below 500 or a closed connection, never a traceback; a refused
request changes no stored state and no spool; and the server answers the next request."""
import base64
import re

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.routes.table import ROUTES
from chalicelib.backend import backend
from tests.fixtures import raw_exchange, stored_items
from tests.strategies import bodies, content_ranges, content_types, names, path_of, queries, segments

pytestmark = pytest.mark.fuzz
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
BAD_CHUNK_SIZES = [b"-5", b"0x3", b"1_0", b"zz", b"f" * 20, b"", b" 3", b"3 ;x"]


def chunked(body: bytes) -> bytes:
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@st.composite
def raw_requests(draw, token):
    route = draw(st.sampled_from(ROUTES))
    values = {key: draw(segments) for key in ("digest", "reference", "upload_id", "principal", "credential_id",
                                              "team", "namespace", "fingerprint", "file")}
    target = path_of(route, draw(names), values)
    query = draw(queries)
    if query:
        target += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    method = draw(st.one_of(st.just(route.method), st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                                                    "OPTIONS", "BREW", "get"])))
    headers = [("Host", "fuzz.test")]
    credential = draw(st.sampled_from(["none", "admin", "garbage"]))
    if credential == "admin":
        headers.append(("Authorization", f"Bearer {token}"))
    elif credential == "garbage":
        headers.append(("Authorization", draw(st.text(alphabet=st.characters(max_codepoint=255), max_size=50))))
    for name, strategy in (("Content-Type", content_types), ("Content-Range", content_ranges)):
        value = draw(strategy)
        if value:
            headers.append((name, value))
    body = draw(bodies)
    framing = draw(st.sampled_from(["length", "none", "chunked", "bad chunk", "length lies", "both", "length garbage"]))
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = chunked(body)
    elif framing == "bad chunk":
        headers.append(("Transfer-Encoding", "chunked"))
        body = draw(st.sampled_from(BAD_CHUNK_SIZES)) + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif framing == "length lies":
        headers.append(("Content-Length", str(len(body) + draw(st.integers(1, 100)))))
    elif framing == "both":
        headers += [("Transfer-Encoding", "chunked"), ("Content-Length", str(len(body)))]
        body = chunked(body)
    elif framing == "length garbage":
        headers.append(("Content-Length", draw(st.sampled_from(["abc", "-1", "+5", "1e3", "5, 6", " "]))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1", "replace") + body


def stored(stack) -> tuple:
    return stored_items(), backend().objects.keys_under(""), stack.gateway.spooled_bytes


@pytest.fixture(scope="module")
def admin_token(stack):
    scope = ["repository:team/app:pull,push,delete", "registry:admin:*", "registry:catalog:*"]
    answer = requests.get(f"{stack.url}/token", params=[("service", "dockless")] + [("scope", s) for s in scope],
                          headers={"Authorization": "Basic " + base64.b64encode(f"admin:{stack.admin_token}".encode())
                                   .decode()})
    return answer.json()["token"]


@pytest.fixture(scope="module")
def known(stack):
    return {"state": stored(stack)}


@pytest.mark.parametrize("door", ["front door", "gateway"])
@given(data=st.data())
def test_no_request_gets_a_5xx_a_traceback_or_a_change_when_refused(stack, admin_token, known, door, data):
    port = stack.api_port if door == "front door" else stack.port
    request = data.draw(raw_requests(admin_token), label="request")
    answer = raw_exchange(port, request)
    assert b"Traceback" not in answer
    match = STATUS_LINE.match(answer)
    assert answer == b"" or match, answer[:200]
    status = int(match.group(1)) if match else None
    assert status is None or status < 500, answer[:300]
    after = stored(stack)
    if status is None or status >= 400:
        assert after == known["state"], answer[:300]
    known["state"] = after
    assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=30).status_code == 401
