"""Fuzz tier, in process: every route of the route table with generated path segments (percent-
encodings, slashes, unicode, long ones), query parameters, headers, credentials and bodies (bytes,
JSON, manifests), through the local front door's routing (dockless/local/frontdoor.py, as API Gateway
routes) without its HTTP server. Whatever comes in: no 5xx, no traceback in the answer, and a
refused request changes no stored state. Bounded by count: tests/conftest.py's hypothesis profiles."""
import base64
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.access.service import AuthService
from chalicelib.routes.table import ROUTES
from tests.fixtures import admin_token
from tests.strategies import (bodies, content_ranges, content_types, credentials, names, path_of, queries,
                              segments)

pytestmark = pytest.mark.fuzz

@pytest.fixture(scope="module")
def front_door():
    from app import app
    from dockless.local.frontdoor import FrontDoor
    return FrontDoor(app)


class Known:
    """The stored state as last seen: a refused request must leave it as it is, so it is read
    again after each request (compared when refused, replaced when allowed)."""

    def __init__(self, snapshot):
        self.snapshot, self.state = snapshot, snapshot()


@pytest.fixture
def fuzz_state(registry, state):
    secret = AuthService(registry).bootstrap_admin()
    return secret, Known(state)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
@given(data=st.data())
def test_no_input_gets_a_5xx_or_changes_state_when_refused(front_door, fuzz_state, clock, route, data):
    secret, known = fuzz_state
    values = {key: data.draw(segments, label=key) for key in
              ("digest", "reference", "upload_id", "principal", "credential_id", "team", "namespace", "fingerprint",
               "file")}
    path = path_of(route, data.draw(names, label="name"), values)
    query = data.draw(queries, label="query")
    target = path + ("?" + "&".join(f"{k}={quote(v, safe=':/*,')}" for k, v in query.items()) if query else "")
    headers = {}
    credential = data.draw(credentials, label="credential")
    if credential == "admin":
        headers["Authorization"] = "Bearer " + admin_token(path, clock().timestamp(), query)
    elif credential == "garbage":
        headers["Authorization"] = "Bearer " + data.draw(st.text(max_size=60), label="token")
    elif credential == "basic-garbage":
        headers["Authorization"] = "Basic " + data.draw(st.text(max_size=60), label="basic")
    elif credential == "basic-admin":
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{secret}".encode()).decode()
    elif credential == "bearer-empty":
        headers["Authorization"] = "Bearer "
    content_type = data.draw(content_types, label="content type")
    if content_type:
        headers["Content-Type"] = content_type
    content_range = data.draw(content_ranges, label="content range")
    if content_range:
        headers["Content-Range"] = content_range
    body = data.draw(bodies, label="body")
    status, _, answer = front_door.handle(route.method, target, headers, body)
    assert status < 500, (route.method, target, answer[:300])
    assert b"Traceback" not in answer
    after = known.snapshot()
    if status >= 400:
        assert after == known.state, (route.method, target, status, answer[:300])
    known.state = after
