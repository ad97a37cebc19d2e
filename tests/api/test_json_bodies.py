"""Every JSON body goes through one parser (chalicelib/oci/jsondoc.py): too deep, duplicate keys,
not UTF-8, NaN, or not an object, each route answers its own 400 code and writes nothing."""
import json

import pytest

from tests.fixtures import digest_of, error_code

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 40 + b"1" + b"}" * 40
BAD = {"deep": DEEP, "deep object": DEEP_OBJECT, "duplicate keys": b'{"schemaVersion": 2, "schemaVersion": 2}',
       "not utf-8": b'{"a": "\xff"}', "nan": b'{"a": NaN}', "not an object": b"[1, 2]"}


def routes(digest, upload):
    return [("PUT", "/v2/team/app/manifests/v1", "MANIFEST_INVALID"),
            ("PUT", f"/extensions/v2/team/app/signatures/{digest}", "SIGNATURE_INVALID"),
            ("POST", "/dockless/admin/v1/principals", "INVALID"),
            ("PUT", "/dockless/admin/v1/grants", "INVALID"),
            ("PUT", "/dockless/admin/v1/settings", "INVALID"),
            ("POST", f"/dockless/v1/team/app/uploads/{upload}/direct", "BLOB_UPLOAD_INVALID"),
            ("POST", f"/dockless/v1/team/app/uploads/{upload}/parts", "BLOB_UPLOAD_INVALID")]


@pytest.mark.parametrize("kind", sorted(BAD))
def test_malformed_json_is_the_routes_400_and_changes_nothing(client, push, state, kind):
    _, digest = push.image("team/app", "v0")
    upload = client.post("/v2/team/app/blobs/uploads/").headers["Docker-Upload-UUID"]
    before = state()
    for method, path, code in routes(digest, upload):
        response = client.request(method, path, body=BAD[kind], headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.body)
        assert error_code(response) == code, path
        assert "Traceback" not in response.body.decode("utf-8", "replace")
    assert state() == before


def test_a_manifest_within_the_depth_bound_is_accepted(client, push):
    body, _ = push.image("team/app", "v1", annotations={"nested": "values stay strings"})
    document = json.loads(body)
    document["annotations"] = {"org.example": "x"}
    document["subject"] = {"mediaType": document["mediaType"], "digest": digest_of(body), "size": len(body)}
    assert push.manifest("team/app", "v2", json.dumps(document).encode()).status_code == 201
