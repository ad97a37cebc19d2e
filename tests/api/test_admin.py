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


KINDS_SAID = "name must match [a-z0-9][a-z0-9._-]{0,63}, kind one of user, robot, team"


@pytest.mark.parametrize("method, path, document, status, code, says", [
    ("POST", "/dockless/admin/v1/principals", {"name": "Bad Name"}, 400, "INVALID", KINDS_SAID),
    ("POST", "/dockless/admin/v1/principals", {"name": "x", "kind": "alien"}, 400, "INVALID", KINDS_SAID),
    ("POST", "/dockless/admin/v1/principals", {"name": "dev", "kind": "robot"}, 409, "CONFLICT", "'dev' exists"),
    ("POST", "/dockless/admin/v1/principals/nobody/tokens", {}, 404, "NOT_FOUND", "no user, robot or team 'nobody'"),
    ("POST", "/dockless/admin/v1/principals/dev/tokens", {"expires_in_days": -1}, 400, "INVALID",
     "expires_in_days is a positive whole number"),
    ("POST", "/dockless/admin/v1/principals/devs/tokens", {}, 400, "INVALID", "teams have no credentials; their members do"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:nobody", "role": "read"}, 404, "NOT_FOUND",
     "no user, robot or team 'nobody'"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "robot:dev", "role": "read"}, 400, "INVALID",
     "subject is user:<name>, team:<name> or *"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "team:dev", "role": "read"}, 400, "INVALID",
     "subject is user:<name>, team:<name> or *"),  # dev is a user
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:devs", "role": "read"}, 400, "INVALID",
     "subject is user:<name>, team:<name> or *"),  # devs is a team
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:dev:x", "role": "read"}, 404, "NOT_FOUND",
     "no user, robot or team 'dev:x'"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "*", "role": "write"}, 400, "INVALID",
     "anyone may only read"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "Team!", "subject": "*", "role": "read"}, 400, "INVALID",
     "'Team!' is not a namespace or repository name"),
    ("PUT", "/dockless/admin/v1/grants", {"resource": "team", "subject": "user:dev", "role": "owner"}, 400, "INVALID",
     "role is one of ['admin', 'read', 'write']; anyone may only read"),
    ("PUT", "/dockless/admin/v1/teams/dev/members/dev", None, 400, "INVALID", "'dev' is not a team"),
    ("DELETE", "/dockless/admin/v1/tokens/ffffffffffffffff", None, 404, "NOT_FOUND", "no credential 'ffffffffffffffff'"),
    *[("POST", "/dockless/admin/v1/probe", {"wait_seconds": wait}, 400, "INVALID", "wait_seconds is a number from 0 to 35")
      for wait in (-1, 35.5, "1", True, None)],
    ("POST", "/dockless/admin/v1/probe", {"busy": "yes"}, 400, "INVALID", "busy is true or false"),
])
def test_bad_administration_requests_are_refused_and_change_nothing(client, state, method, path, document,
                                                                     status, code, says):
    assert post(client, "/dockless/admin/v1/principals", {"name": "dev"}).status_code == 201
    assert post(client, "/dockless/admin/v1/principals", {"name": "devs", "kind": "team"}).status_code == 201
    before = state()
    response = client.request(method, path, body=json.dumps(document) if document is not None else b"",
                              headers=JSON)
    assert response.status_code == status, response.body
    assert error_code(response) == code
    assert json.loads(response.body)["errors"][0]["message"].endswith(says)
    assert state() == before


def test_a_tokens_last_use_is_listed_to_the_hour(client, anonymous, clock):
    """Each use would be a write; the last use is kept to the hour, so a token used all day
    writes once an hour at most."""
    post(client, "/dockless/admin/v1/principals", {"name": "lu"})
    secret = post(client, "/dockless/admin/v1/principals/lu/tokens", {}).json_body["token"]

    def last_used():
        (listed,) = client.get("/dockless/admin/v1/principals/lu/tokens").json_body["tokens"]
        return listed["last_used_at"]

    assert last_used() is None
    first = clock.now
    assert token_for(anonymous, "lu", secret, "repository:team/app:pull").status_code == 200
    assert last_used() == first.isoformat()
    clock.advance(seconds=3599)
    token_for(anonymous, "lu", secret, "repository:team/app:pull")
    assert last_used() == first.isoformat()  # within the hour: not written again
    clock.advance(seconds=1)
    token_for(anonymous, "lu", secret, "repository:team/app:pull")
    assert last_used() == clock.now.isoformat()


def test_the_bootstrap_admin_is_an_admin_with_a_described_token(registry, anonymous):
    from chalicelib.access.service import AuthService
    secret = AuthService(registry).bootstrap_admin(description="first deploy")
    access = token_for(anonymous, "admin", secret, "registry:admin:*")
    assert access.status_code == 200 and granted(access) == ["*"]
    (listed,) = AuthService(registry).credentials_of("admin")
    assert listed.description == "first deploy"
    AuthService(registry).bootstrap_admin()  # as `dockless serve` and `dockless deploy` make it
    assert AuthService(registry).principal("admin").kind == "user"
    assert sorted(c.description for c in AuthService(registry).credentials_of("admin")) == ["bootstrap", "first deploy"]


def test_making_a_principal_is_audited_with_its_name_kind_and_admin(client):
    post(client, "/dockless/admin/v1/principals", {"name": "ops", "kind": "user", "admin": True})
    post(client, "/dockless/admin/v1/principals", {"name": "ci", "kind": "robot"})
    made = [e["detail"] for e in client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
            if e["action"] == "principal.create"]
    assert sorted(made, key=lambda d: d["principal"]) == [{"principal": "ci", "kind": "robot", "admin": False},
                                                          {"principal": "ops", "kind": "user", "admin": True}]


def test_a_member_deleted_while_joining_a_team_is_unknown_and_not_made_again(client, registry, monkeypatch):
    """The membership's write is conditional on the member still existing: a principal deleted
    between the check and the write is not brought back as a record with only its teams."""
    from chalicelib.access.service import AuthService
    from chalicelib.metadata.models import Principal
    post(client, "/dockless/admin/v1/principals", {"name": "crew", "kind": "team"})
    post(client, "/dockless/admin/v1/principals", {"name": "gone"})
    checked = AuthService.principal

    def deleted_after_the_check(self, name):
        found = checked(self, name)
        if name == "gone":
            Principal.get("gone").delete()
        return found

    monkeypatch.setattr(AuthService, "principal", deleted_after_the_check)
    response = client.put("/dockless/admin/v1/teams/crew/members/gone")
    assert response.status_code == 404 and error_code(response) == "NOT_FOUND"
    assert "no user, robot or team 'gone'" in json.loads(response.body)["errors"][0]["message"]
    assert Principal.count("gone") == 0
    events = client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
    assert not [e for e in events if e["action"] == "team.add"]


def test_a_principals_tokens_are_listed_oldest_first_and_only_its_own(client, clock):
    for name in ("alice", "bob"):
        post(client, "/dockless/admin/v1/principals", {"name": name})
    made = []
    for description in ("second", "first"):
        made.append(post(client, "/dockless/admin/v1/principals/alice/tokens", {"description": description}).json_body["id"])
        post(client, "/dockless/admin/v1/principals/bob/tokens", {})
        clock.advance(minutes=1)
    listed = client.get("/dockless/admin/v1/principals/alice/tokens").json_body["tokens"]
    assert [t["id"] for t in listed] == made and [t["description"] for t in listed] == ["second", "first"]


def test_a_principal_deleted_and_made_again_gets_nothing_back(client, anonymous, clock):
    """Deleting revokes its credentials (kept, marked revoked), removes the grants to it and, for a
    team, its members' membership; a principal of the same name made later starts with none of it,
    and nobody else loses anything."""
    for name, kind in [("carol", "user"), ("dave", "user"), ("devs", "team"), ("ops", "team")]:
        assert post(client, "/dockless/admin/v1/principals", {"name": name, "kind": kind}).status_code == 201
    secrets = {n: post(client, f"/dockless/admin/v1/principals/{n}/tokens", {}).json_body["token"]
               for n in ("carol", "dave")}
    for resource, subject in [("team", "user:carol"), ("team", "user:dave"), ("shared", "team:devs"),
                              ("shared", "team:ops")]:
        assert client.put("/dockless/admin/v1/grants", headers=JSON, body=json.dumps(
            {"resource": resource, "subject": subject, "role": "write"})).status_code == 204
    for team in ("devs", "ops"):
        assert client.put(f"/dockless/admin/v1/teams/{team}/members/dave").status_code == 204

    assert client.delete("/dockless/admin/v1/principals/carol").status_code == 204
    clock.advance(seconds=1)
    assert client.delete("/dockless/admin/v1/principals/devs").status_code == 204
    from chalicelib.metadata.models import Credential
    assert [c.revoked for c in Credential.scan(Credential.principal == "carol")] == [True]  # kept, revoked
    assert [c.revoked for c in Credential.scan(Credential.principal == "dave")] == [False]
    assert client.get("/dockless/admin/v1/grants?resource=team").json_body["grants"] == [
        {"resource": "team", "subject": "user:dave", "role": "write"}]
    assert client.get("/dockless/admin/v1/grants?resource=shared").json_body["grants"] == [
        {"resource": "shared", "subject": "team:ops", "role": "write"}]
    principals = {p["name"]: p for p in client.get("/dockless/admin/v1/principals").json_body["principals"]}
    assert set(principals) == {"dave", "ops"} | ({"admin"} & set(principals))
    assert principals["ops"]["members"] == ["dave"]
    from chalicelib.metadata.models import Principal
    assert Principal.get("dave").teams == {"ops"}

    # Made again: the old secret, grants and members stay gone.
    post(client, "/dockless/admin/v1/principals", {"name": "carol"})
    post(client, "/dockless/admin/v1/principals", {"name": "devs", "kind": "team"})
    assert token_for(anonymous, "carol", secrets["carol"], "repository:team/app:pull").status_code == 401
    fresh = post(client, "/dockless/admin/v1/principals/carol/tokens", {}).json_body["token"]
    assert granted(token_for(anonymous, "carol", fresh, "repository:team/app:pull,push")) == []
    assert granted(token_for(anonymous, "dave", secrets["dave"], "repository:team/app:pull,push")) == ["pull", "push"]
    assert granted(token_for(anonymous, "dave", secrets["dave"], "repository:shared/app:pull,push")) == ["pull", "push"]
    events = [e for e in client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
              if e["action"] == "principal.delete"]
    assert [e["detail"] for e in events] == [{"principal": "carol", "kind": "user"}, {"principal": "devs", "kind": "team"}]


@pytest.mark.parametrize("path, message", [
    ("/dockless/admin/v1/teams/bob/members/dave", "'bob' is not a team"),
    ("/dockless/admin/v1/teams/devs/members/ops", "teams do not nest"),
])
def test_a_membership_that_cannot_be_is_refused(client, state, path, message):
    for name, kind in [("bob", "user"), ("dave", "user"), ("devs", "team"), ("ops", "team")]:
        post(client, "/dockless/admin/v1/principals", {"name": name, "kind": kind})
    before = state()
    response = client.put(path)
    assert response.status_code == 400 and error_code(response) == "INVALID"
    assert json.loads(response.body)["errors"][0]["message"] == f"invalid administration request: {message}"
    assert state() == before


def test_membership_changes_are_audited_with_team_and_member(client, clock):
    for name, kind in [("dave", "user"), ("devs", "team")]:
        post(client, "/dockless/admin/v1/principals", {"name": name, "kind": kind})
    client.put("/dockless/admin/v1/teams/devs/members/dave")
    clock.advance(seconds=1)
    client.delete("/dockless/admin/v1/teams/devs/members/dave")
    events = [(e["action"], e["detail"]) for e in client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
              if e["action"].startswith("team.")]
    assert events == [("team.add", {"team": "devs", "member": "dave"}), ("team.remove", {"team": "devs", "member": "dave"})]


def test_revoking_a_token_is_audited_and_an_unknown_one_says_which(client):
    post(client, "/dockless/admin/v1/principals", {"name": "erin"})
    credential = post(client, "/dockless/admin/v1/principals/erin/tokens", {}).json_body["id"]
    assert client.delete(f"/dockless/admin/v1/tokens/{credential}").status_code == 204
    events = [e for e in client.get("/dockless/admin/v1/audit?actor=admin").json_body["events"]
              if e["action"] == "credential.revoke"]
    assert [e["detail"] for e in events] == [{"principal": "erin", "credential": credential}]
    unknown = client.delete("/dockless/admin/v1/tokens/ffffffffffffffff")
    assert json.loads(unknown.body)["errors"][0]["message"].endswith("no credential 'ffffffffffffffff'")


def test_a_team_without_members_lists_none(client):
    post(client, "/dockless/admin/v1/principals", {"name": "empty", "kind": "team"})
    listed = {p["name"]: p for p in client.get("/dockless/admin/v1/principals").json_body["principals"]}
    assert listed["empty"]["members"] == []


@pytest.mark.parametrize("race", ["before", "after"])
def test_a_push_racing_a_repositorys_deletion_leaves_it_in_the_catalog(client, push, monkeypatch, race):
    """The catalog entry is read after a link's transaction, not written in it: a push whose blob
    lands while the repository is being deleted either finds the entry gone and writes it, or the
    deletion finds the blob and puts the entry back. Either way the blob is in a listed repository
    (else garbage collection, which walks the catalog, would never see it)."""
    from chalicelib.metadata import models
    push.image("raced/app", "1", layers=(b"first",))
    delete, raced = models.Repository.delete, []

    def delete_meanwhile(item, *args, **kwargs):
        if race == "after":
            answer = delete(item, *args, **kwargs)
        if not raced:  # the push's link commits (and, "before", reads the entry) at this moment
            raced.append(push.blob("raced/app", b"pushed meanwhile"))
        return answer if race == "after" else delete(item, *args, **kwargs)

    monkeypatch.setattr(models.Repository, "delete", delete_meanwhile)
    assert client.delete("/dockless/admin/v1/repositories?name=raced/app").status_code == 200
    assert raced and client.get("/v2/_catalog").json_body["repositories"] == ["raced/app"]
    assert [link.digest for link in models.BlobLink.query("raced/app")] == [raced[0]["digest"]]


def test_an_admin_deletes_a_repository_whole_and_not_one_with_an_immutable_tag(client, push, state):
    from chalicelib.metadata.models import BlobLink, Manifest, Tag
    body, digest = push.image("gone/app", "1", layers=(b"only here", b"shared"))
    push.image("gone/kept", "1", layers=(b"shared",))
    response = client.delete("/dockless/admin/v1/repositories?name=gone/app")
    assert response.status_code == 200, response.body
    assert response.json_body == {"tags": 1, "manifests": 1, "signatures": 0, "links": 3,
                                  "bytes_freed": len(b"only here")}
    assert (list(Tag.query("gone/app")), list(Manifest.query("gone/app")), list(BlobLink.query("gone/app"))) == \
        ([], [], [])
    assert client.get("/v2/_catalog").json_body["repositories"] == ["gone/kept"]
    assert client.get("/v2/gone/app/tags/list").status_code == 404
    assert client.get("/v2/gone/kept/manifests/1").status_code == 200
    events = client.get("/dockless/admin/v1/audit?repository=gone/app").json_body["events"]
    assert [e["detail"] for e in events if e["action"] == "repository.delete"] == [response.json_body]

    assert client.put("/dockless/admin/v1/settings", body=json.dumps({"resource": "gone", "immutable_tags": ["1"]}),
                      headers=JSON).status_code == 200
    before = state()
    refused = client.delete("/dockless/admin/v1/repositories?name=gone/kept")
    assert refused.status_code == 403 and json.loads(refused.body)["errors"][0]["message"] == \
        "gone/kept has immutable tags (1): it cannot be deleted"
    unknown = client.delete("/dockless/admin/v1/repositories?name=gone/never")
    assert unknown.status_code == 404 and json.loads(unknown.body)["errors"][0]["code"] == "NAME_UNKNOWN"
    missing = client.delete("/dockless/admin/v1/repositories")
    assert missing.status_code == 400
    assert state() == before


def test_the_probe_says_the_runtime_and_answers_busy_as_every_route_does(client):
    import platform
    answer = client.post("/dockless/admin/v1/probe", body=b"", headers=JSON)
    assert answer.status_code == 200
    assert json.loads(answer.body) == {"python": platform.python_version(), "architecture": platform.machine(),
                                       "memory_mb": None, "door": "api-gateway"}  # not on Lambda
    busy = client.post("/dockless/admin/v1/probe", body=json.dumps({"busy": True}), headers=JSON)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert error_code(busy) == "TOOMANYREQUESTS"

