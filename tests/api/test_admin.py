"""The administration API: users, robots, teams, tokens and grants, and their effect on access."""
import base64
import json

import pytest

from tests.fixtures import error_code

JSON = {"Content-Type": "application/json"}


def post(client, path, document):
    return client.post(path, body=json.dumps(document), headers=JSON)


def token_for(anonymous, user, secret, scope):
    auth = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    response = anonymous.get(f"/token?service=dockless&scope={scope}", headers={"Authorization": auth})
    return response


def granted(response):
    token = response.json_body["token"]
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["access"][0]["actions"]


def test_user_token_lifecycle(client, anonymous):
    assert post(client, "/dockless/admin/v1/principals", {"name": "alice", "kind": "user"}).status_code == 201
    created = post(client, "/dockless/admin/v1/principals/alice/tokens", {"description": "laptop", "expires_in_days": 30})
    assert created.status_code == 201
    secret, credential_id = created.json_body["token"], created.json_body["id"]
    assert secret.startswith("dkl_") and len(secret) >= 4 + 16 + 1 + 43

    listed = client.get("/dockless/admin/v1/principals/alice/tokens").json_body["tokens"]
    assert [t["id"] for t in listed] == [credential_id]
    assert listed[0]["description"] == "laptop" and not listed[0]["revoked"]
    assert secret not in json.dumps(listed)

    assert token_for(anonymous, "alice", secret, "repository:team/app:pull").status_code == 200
    assert client.delete(f"/dockless/admin/v1/tokens/{credential_id}").status_code == 204
    assert token_for(anonymous, "alice", secret, "repository:team/app:pull").status_code == 401


def test_team_grant_reaches_its_members_and_only_them(client, anonymous):
    for name, kind in [("bob", "user"), ("ci", "robot"), ("devs", "team")]:
        assert post(client, "/dockless/admin/v1/principals", {"name": name, "kind": kind}).status_code == 201
    secrets = {n: post(client, f"/dockless/admin/v1/principals/{n}/tokens", {}).json_body["token"] for n in ("bob", "ci")}
    assert client.put("/dockless/admin/v1/teams/devs/members/ci").status_code == 204
    assert client.put("/dockless/admin/v1/grants", body=json.dumps(
        {"resource": "team", "subject": "team:devs", "role": "write"}), headers=JSON).status_code == 204

    assert granted(token_for(anonymous, "ci", secrets["ci"], "repository:team/app:pull,push")) == ["pull", "push"]
    assert granted(token_for(anonymous, "bob", secrets["bob"], "repository:team/app:pull,push")) == []
    assert client.delete("/dockless/admin/v1/teams/devs/members/ci").status_code == 204
    assert granted(token_for(anonymous, "ci", secrets["ci"], "repository:team/app:pull,push")) == []


def test_repository_made_public_and_private_again(client, anonymous, push):
    push.image("team/site", "v1")
    grant = {"resource": "team/site", "subject": "*", "role": "read"}
    assert client.put("/dockless/admin/v1/grants", body=json.dumps(grant), headers=JSON).status_code == 204
    assert client.get("/dockless/admin/v1/grants?resource=team/site").json_body["grants"] == [grant]
    assert granted(anonymous.get("/token?service=dockless&scope=repository:team/site:pull")) == ["pull"]
    assert client.delete("/dockless/admin/v1/grants?resource=team/site&subject=*").status_code == 204
    assert granted(anonymous.get("/token?service=dockless&scope=repository:team/site:pull")) == []


def test_deleting_a_principal_revokes_its_credentials(client, anonymous):
    post(client, "/dockless/admin/v1/principals", {"name": "carol"})
    secret = post(client, "/dockless/admin/v1/principals/carol/tokens", {}).json_body["token"]
    assert client.delete("/dockless/admin/v1/principals/carol").status_code == 204
    assert token_for(anonymous, "carol", secret, "repository:team/app:pull").status_code == 401
    names = [p["name"] for p in client.get("/dockless/admin/v1/principals").json_body["principals"]]
    assert "carol" not in names


@pytest.mark.parametrize("method, path, document, status, code", [
    ("POST", "/dockless/admin/v1/principals", {"name": "Bad Name"}, 400, "INVALID"),
    ("POST", "/dockless/admin/v1/principals", {"name": "x", "kind": "alien"}, 400, "INVALID"),
    ("POST", "/dockless/admin/v1/principals/nobody/tokens", {}, 404, "NOT_FOUND"),
    ("POST", "/dockless/admin/v1/principals/dev/tokens", {"expires_in_days": -1}, 400, "INVALID"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:nobody", "role": "read"}, 404, "NOT_FOUND"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "*", "role": "write"}, 400, "INVALID"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "Team!", "subject": "*", "role": "read"}, 400, "INVALID"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:dev", "role": "owner"}, 400, "INVALID"),
    ("PUT", "/dockless/admin/v1/teams/dev/members/dev", None, 400, "INVALID"),
    ("DELETE", "/dockless/admin/v1/tokens/ffffffffffffffff", None, 404, "NOT_FOUND"),
])
def test_bad_administration_requests_are_refused_and_change_nothing(client, state, method, path, document,
                                                                     status, code):
    assert post(client, "/dockless/admin/v1/principals", {"name": "dev"}).status_code == 201
    before = state()
    response = client.request(method, path, body=json.dumps(document) if document is not None else b"",
                              headers=JSON)
    assert response.status_code == status, response.body
    assert error_code(response) == code
    assert state() == before


def test_duplicate_principal_is_409(client):
    assert post(client, "/dockless/admin/v1/principals", {"name": "dup"}).status_code == 201
    response = post(client, "/dockless/admin/v1/principals", {"name": "dup", "kind": "robot"})
    assert response.status_code == 409
    assert error_code(response) == "CONFLICT"
