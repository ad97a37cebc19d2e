"""Docker token auth and access control, in process: the token endpoint, the challenge, and the
authorisation matrix over every route of the route table."""
import base64
import hashlib
import json
import re

import pytest

from chalicelib.access import jwt
from chalicelib.access.service import AuthService, new_credential_text
from chalicelib.backend import backend
from chalicelib.routes.table import ROUTES
from tests.fixtures import PUBLIC_URL, SIGNING_KEY, digest_of, error_code

ROLE_OF = {"rita": "read", "will": "write", "ada": "admin"}


@pytest.fixture
def people(registry, push):
    """Users with roles on namespace `team`, one with a role elsewhere, and their credentials."""
    auth = AuthService(registry)
    credentials = {}
    for name, role, namespace in [("rita", "read", "team"), ("will", "write", "team"), ("ada", "admin", "team"),
                                  ("otto", "write", "other"), ("rev", "write", "team")]:
        auth.ensure_principal(name)
        credentials[name] = new_credential_text()
        auth.store_credential(name, credentials[name])
        auth.set_grant(namespace, f"user:{name}", role)
    push.image("team/app", "v1")
    return credentials


def basic(user, secret):
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def get_token(anonymous, user=None, secret=None, scopes=(), **params):
    query = "&".join(["service=dockless"] + [f"scope={s}" for s in scopes] + [f"{k}={v}" for k, v in params.items()])
    headers = {"Authorization": basic(user, secret)} if user else {}
    return anonymous.get(f"/token?{query}", headers=headers)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def claims_of(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def test_unauthenticated_request_gets_the_docker_challenge(anonymous, people):
    response = anonymous.get("/v2/team/app/manifests/v1")
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"
    assert json.loads(response.body)["errors"][0]["message"] == "authentication required"
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{PUBLIC_URL}/token",service="dockless",scope="repository:team/app:pull"')
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    ping = anonymous.get("/v2/")
    assert ping.status_code == 401
    assert ping.headers["WWW-Authenticate"] == f'Bearer realm="{PUBLIC_URL}/token",service="dockless"'


def test_token_endpoint_grants_what_is_asked_and_held(anonymous, people):
    response = get_token(anonymous, "rita", people["rita"],
                         ["repository:team/app:pull,push", "repository:other/x:pull"])
    assert response.status_code == 200
    body = response.json_body
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60 and body["issued_at"].endswith("Z")
    claims = claims_of(body["token"])
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]},
                                {"type": "repository", "name": "other/x", "actions": []}]
    assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"} <= set(claims)
    assert claims["sub"] == "rita" and claims["aud"] == "dockless" and claims["iss"] == PUBLIC_URL
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "HS256" and header["kid"]


def test_token_lets_docker_pull_and_insufficient_scope_rechallenges(anonymous, people):
    token = get_token(anonymous, "rita", people["rita"], ["repository:team/app:pull,push"]).json_body["token"]
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(token)).status_code == 200
    response = anonymous.post("/v2/team/app/blobs/uploads/", headers=bearer(token))
    assert response.status_code == 401
    # As the reference registry answers: UNAUTHORIZED, the challenge saying insufficient_scope.
    assert error_code(response) == "UNAUTHORIZED"
    assert json.loads(response.body)["errors"][0]["message"] == (
        "authentication required: the credentials do not allow push on team/app; ask an admin for a grant")
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{PUBLIC_URL}/token",service="dockless",scope="repository:team/app:pull,push",'
        'error="insufficient_scope"')


def test_a_refusal_says_what_to_do_anonymous_admin_or_cache(anonymous, client, people, state, clock):
    """The anonymous are told to log in; a registry admin whose token lacks the scope to get one
    with it; anyone pushing to a cache namespace that it takes no pushes (never "ask an admin")."""
    def refused(token, method, path):
        response = anonymous.request(method, path, headers=bearer(token))
        assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED", response.body
        return json.loads(response.body)["errors"][0]["message"]

    anonymous_token = get_token(anonymous, scopes=["repository:team/app:pull"]).json_body["token"]
    assert refused(anonymous_token, "GET", "/v2/team/app/manifests/v1") == (
        "authentication required: anonymous callers may not pull team/app; log in (docker login, dockless login)")
    claims = jwt.new_claims(PUBLIC_URL, "admin", "dockless", None,
                            [{"type": "repository", "name": "team/app", "actions": ["pull"]}], clock().timestamp(), 300)
    claims["admin"] = True
    assert refused(jwt.encode(claims, SIGNING_KEY.encode()), "POST", "/v2/team/app/blobs/uploads/") == (
        "authentication required: the token does not carry push on team/app; ask for a token with that scope")
    assert client.put("/dockless/admin/v1/caches/hub", body=json.dumps({"url": "https://registry.example.com"}),
                      headers={"Content-Type": "application/json"}).status_code == 200
    will = get_token(anonymous, "will", people["will"], ["repository:hub/app:pull,push"]).json_body["token"]
    before = state()
    assert refused(will, "POST", "/v2/hub/app/blobs/uploads/") == "hub is a cache of https://registry.example.com: pull only"
    assert state() == before


@pytest.mark.parametrize("strip", ["the access claim", "an entry's actions"])
def test_a_valid_token_that_names_no_actions_grants_nothing(anonymous, people, strip):
    # Signed with the registry's own key (a token of another release, say): it is a token for
    # nothing, answered with the insufficient_scope challenge like any other, not with an error.
    claims = claims_of(get_token(anonymous, "rita", people["rita"], ["repository:team/app:pull"]).json_body["token"])
    if strip == "the access claim":
        del claims["access"]
    else:
        claims["access"] = [{"type": "repository", "name": "team/app"}]
    token = jwt.encode(claims, backend().signing_keys()[0])
    response = anonymous.get("/v2/team/app/manifests/v1", headers=bearer(token))
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].endswith('scope="repository:team/app:pull",error="insufficient_scope"')


def test_oauth_password_and_refresh_grants(anonymous, people):
    form = f"grant_type=password&username=will&password={people['will']}&service=dockless" \
           "&scope=repository:team/app:pull repository:team/app:push&access_type=offline&client_id=docker"
    response = anonymous.post("/token", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    body = response.json_body
    assert claims_of(body["access_token"])["access"][0]["actions"] == ["pull", "push"]
    refresh = body["refresh_token"]
    assert refresh.startswith("dkl_") and refresh != people["will"]
    again = anonymous.post("/token", body=f"grant_type=refresh_token&refresh_token={refresh}&service=dockless"
                                         "&scope=repository:team/app:pull",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 200
    assert claims_of(again.json_body["access_token"])["sub"] == "will"
    # The refresh token is not a password, and the password is not a refresh token.
    wrong = anonymous.post("/token", body=f"grant_type=refresh_token&refresh_token={people['will']}",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong.status_code == 401


def test_get_with_offline_token_returns_a_refresh_token(anonymous, people):
    body = get_token(anonymous, "will", people["will"], [], offline_token="true", client_id="docker").json_body
    assert body["refresh_token"].startswith("dkl_")


@pytest.mark.parametrize("user, secret", [("will", "dkl_0000000000000000_" + "x" * 43), ("rita", None),
                                          ("nobody", None), ("will", "not a token")])
def test_bad_credentials_get_401(anonymous, people, user, secret):
    response = get_token(anonymous, user, secret or people.get("will"), ["repository:team/app:pull"])
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_revoked_and_expired_credentials_are_refused_at_once(anonymous, people, clock):
    from chalicelib.metadata.models import Credential
    credential_id = people["rev"].split("_")[1]
    Credential.get(credential_id).update(actions=[Credential.revoked.set(True)])
    assert get_token(anonymous, "rev", people["rev"]).status_code == 401
    auth = AuthService(backend())
    short = new_credential_text()
    auth.store_credential("will", short, lifetime_seconds=60)
    clock.advance(seconds=59)
    assert get_token(anonymous, "will", short).status_code == 200
    clock.advance(seconds=1)  # its lifetime is over at its expiry, not a second after
    assert get_token(anonymous, "will", short).status_code == 401


def test_expired_and_forged_access_tokens_are_refused(anonymous, people, clock, registry):
    token = get_token(anonymous, "ada", people["ada"], ["repository:team/app:pull"]).json_body["token"]
    claims = claims_of(token)
    forged = jwt.encode(claims, b"another key")
    header, _, signature = token.split(".")
    altered_claims = dict(claims, access=[{"type": "repository", "name": "other/x", "actions": ["pull"]}])
    altered = ".".join([header, base64.urlsafe_b64encode(json.dumps(altered_claims).encode()).rstrip(b"=").decode(),
                        signature])
    for bad in (forged, altered, "not.a.token", ""):
        assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(bad)).status_code == 401
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(token)).status_code == 200
    clock.advance(seconds=301)
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(token)).status_code == 401


def test_public_repository_is_pullable_anonymously_but_not_pushable(anonymous, people, registry, push):
    push.image("team/pub", "v1")
    AuthService(registry).set_grant("team/pub", "*", "read")
    token = get_token(anonymous, scopes=["repository:team/pub:pull,push"]).json_body["token"]
    assert claims_of(token)["access"] == [{"type": "repository", "name": "team/pub", "actions": ["pull"]}]
    assert anonymous.get("/v2/team/pub/manifests/v1", headers=bearer(token)).status_code == 200
    private = get_token(anonymous, scopes=["repository:team/app:pull"]).json_body["token"]
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(private)).status_code == 401


def test_catalog_lists_only_what_the_caller_may_pull(anonymous, people, push):
    push.blob("other/secret", b"x")
    token = get_token(anonymous, "rita", people["rita"], ["registry:catalog:*"]).json_body["token"]
    response = anonymous.get("/v2/_catalog", headers=bearer(token))
    assert response.json_body == {"repositories": ["team/app"]}


def test_mount_without_pull_on_the_source_is_an_ordinary_upload(anonymous, people, push, state):
    digest = push.blob("other/src", b"secret layer")["digest"]
    token = get_token(anonymous, "will", people["will"],
                      ["repository:team/app:pull,push", "repository:other/src:pull"]).json_body["token"]
    response = anonymous.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=other/src", headers=bearer(token))
    assert response.status_code == 202
    assert anonymous.head(f"/v2/team/app/blobs/{digest}", headers=bearer(token)).status_code == 404


# What each route needs, written out by hand from the distribution spec (end-1 … end-13), Docker's
# token scope rules (docs/spec/auth/scope.md: pull reads, push writes, delete deletes) and our own
# extensions, independently of the route table the code runs on: a wrong action in ROUTES fails
# here instead of changing the expectation with it.
PULL, PUSH, DELETE = "pull", "push", "delete"
EXPECTED_ACTION = {
    ("GET", "/v2/"): "authenticated",
    ("GET", "/v2/_catalog"): "catalog",
    ("GET", "/token"): "open",
    ("POST", "/token"): "open",
    ("POST", "/token/device"): "open",  # single sign-on's device authorization (RFC 8628)
    ("HEAD", "/v2/{name}/blobs/{digest}"): PULL,
    ("GET", "/v2/{name}/blobs/{digest}"): PULL,
    ("DELETE", "/v2/{name}/blobs/{digest}"): DELETE,
    ("POST", "/v2/{name}/blobs/uploads/"): PUSH,
    ("GET", "/v2/{name}/blobs/uploads/{upload_id}"): PUSH,
    ("PATCH", "/v2/{name}/blobs/uploads/{upload_id}"): PUSH,
    ("PUT", "/v2/{name}/blobs/uploads/{upload_id}"): PUSH,
    ("DELETE", "/v2/{name}/blobs/uploads/{upload_id}"): PUSH,
    ("HEAD", "/v2/{name}/manifests/{reference}"): PULL,
    ("GET", "/v2/{name}/manifests/{reference}"): PULL,
    ("PUT", "/v2/{name}/manifests/{reference}"): PUSH,
    ("DELETE", "/v2/{name}/manifests/{reference}"): DELETE,
    ("GET", "/v2/{name}/tags/list"): PULL,
    ("GET", "/v2/{name}/referrers/{digest}"): PULL,
    ("POST", "/dockless/v1/{name}/uploads/{upload_id}/direct"): PUSH,
    ("POST", "/dockless/v1/{name}/uploads/{upload_id}/parts"): PUSH,
    ("GET", "/dockless/v1/{name}/history"): PULL,
    ("GET", "/dockless/v1/{name}/scans/{reference}"): PULL,
    ("POST", "/dockless/v1/{name}/tags/{tag}/restore"): PUSH,
    ("GET", "/dockless/v1/{name}/diff"): PULL,
    ("GET", "/extensions/v2/{name}/signatures/{digest}"): PULL,
    ("PUT", "/extensions/v2/{name}/signatures/{digest}"): PUSH,
    ("GET", "/keys/{namespace}"): "open",
    ("GET", "/keys/{namespace}/{file}"): "open",
    # The console's pages: the same decision, through the session cookie (tests/api/test_console.py).
    ("GET", "/ui/signin"): "open",
    ("POST", "/ui/signin"): "open",
    ("GET", "/ui/sso"): "open",
    ("GET", "/ui/sso/callback"): "open",
    ("GET", "/ui/console.css"): "open",
    ("GET", "/ui/console.js"): "open",
    ("POST", "/ui/signout"): "authenticated",
    ("GET", "/ui/"): "authenticated",
    ("GET", "/ui/keys"): "authenticated",
    ("GET", "/ui/repository"): PULL,
    ("GET", "/ui/tag"): PULL,
    ("GET", "/ui/diff"): PULL,
    ("GET", "/ui/history"): PULL,
    ("GET", "/ui/restore"): PUSH,
    ("POST", "/ui/restore"): PUSH,
    ("GET", "/ui/audit"): "admin",
    ("GET", "/ui/audit.jsonl"): "admin",
    ("GET", "/ui/people"): "admin",
    ("POST", "/ui/people"): "admin",
    ("GET", "/ui/principal"): "admin",
    ("POST", "/ui/tokens"): "admin",
    ("POST", "/ui/tokens/revoke"): "admin",
    ("POST", "/ui/members"): "admin",
    ("GET", "/ui/grants"): "admin",
    ("POST", "/ui/grants"): "admin",
    ("POST", "/ui/keys"): "admin",
    ("POST", "/ui/keys/remove"): "admin",
    ("GET", "/ui/usage"): "admin",
    ("GET", "/ui/webhooks"): "admin",
}
# The API's repository routes (the console's: tests/api/test_console.py, through a session).
REPOSITORY_ROUTES = sorted(k for k, action in EXPECTED_ACTION.items()
                           if action in (PULL, PUSH, DELETE) and not k[1].startswith("/ui/"))
# The routes that may be open: they must answer before anyone signs in.
MUST_BE_OPEN = {("GET", "/token"), ("POST", "/token"), ("POST", "/token/device"), ("GET", "/keys/{namespace}"),
                ("GET", "/keys/{namespace}/{file}"), ("GET", "/ui/signin"), ("POST", "/ui/signin"),
                ("GET", "/ui/sso"), ("GET", "/ui/sso/callback"), ("GET", "/ui/console.css"), ("GET", "/ui/console.js")}


def test_every_route_has_an_expected_action():
    """The table above covers the route table exactly (administration routes: their own test)."""
    routes = {(r.method, r.path) for r in ROUTES if not r.path.startswith("/dockless/admin/")}
    assert routes == set(EXPECTED_ACTION)
    assert all(r.action == "admin" for r in ROUTES if r.path.startswith("/dockless/admin/"))


def test_no_route_is_open_but_those_that_must_be():
    """Every other route, API or console, goes through the one access decision."""
    assert {(r.method, r.path) for r in ROUTES if r.action == "open"} == MUST_BE_OPEN
    assert all(r.door == "console" for r in ROUTES if r.path.startswith("/ui/"))
    assert all(r.door == "api" and r.name_field is None for r in ROUTES if not r.path.startswith("/ui/"))


# Who may do what on team/app: role on the namespace -> allowed actions.
ALLOWED = {"rita": {PULL}, "will": {PULL, PUSH}, "ada": {PULL, PUSH, DELETE}, "otto": set(),
           "anonymous": set(), "rev": set(), "expired": set(), "forged": set(), "other-repo": set()}


def placeholder(path):
    return (path.replace("{name}", "team/app").replace("{digest}", digest_of(b"x"))
            .replace("{reference}", "v1").replace("{tag}", "v1").replace("{upload_id}", "0123"))


@pytest.mark.parametrize("route", REPOSITORY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(anonymous, people, clock, state, route, who):
    method, path = route
    scope = "repository:team/app:pull,push,delete"
    if who in ("rita", "will", "ada", "otto"):
        token = get_token(anonymous, who, people[who], [scope]).json_body["token"]
    elif who == "anonymous":
        token = None
    elif who == "rev":
        from chalicelib.metadata.models import Credential
        Credential.get(people["rev"].split("_")[1]).update(actions=[Credential.revoked.set(True)])
        answer = get_token(anonymous, "rev", people["rev"], [scope])
        assert answer.status_code == 401
        token = None
    elif who == "expired":
        token = get_token(anonymous, "ada", people["ada"], [scope]).json_body["token"]
        clock.advance(seconds=600)
    elif who == "forged":
        token = jwt.encode(claims_of(get_token(anonymous, "ada", people["ada"], [scope]).json_body["token"]),
                           b"forged key")
    else:
        token = get_token(anonymous, "ada", people["ada"], ["repository:team/other:pull,push,delete"]).json_body["token"]
    before = state()
    headers = {"Content-Type": "application/octet-stream", **(bearer(token) if token else {})}
    response = anonymous.request(method, placeholder(path), body=b"", headers=headers)
    if EXPECTED_ACTION[route] in ALLOWED[who]:
        assert response.status_code not in (401, 403), response.body
    else:
        assert response.status_code == 401, response.body
        assert error_code(response) in ("UNAUTHORIZED", "DENIED")
        assert "WWW-Authenticate" in response.headers
        assert state() == before


def admin_route_path(route):
    return (route.path.replace("{principal}", "will").replace("{credential_id}", "0123456789abcdef")
            .replace("{team}", "devs").replace("{namespace}", "team").replace("{fingerprint}", "A" * 40)
            .replace("{rule}", "nightly"))


@pytest.mark.parametrize("route", [r for r in ROUTES if r.path.startswith("/dockless/admin/")],
                         ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("who", ["anonymous", "rita", "ada", "registry-admin"])
def test_administration_is_for_registry_admins_only(anonymous, people, registry, state, route, who):
    if who == "registry-admin":
        auth = AuthService(registry)
        auth.ensure_principal("root", admin=True)
        secret = new_credential_text()
        auth.store_credential("root", secret)
        token = get_token(anonymous, "root", secret, ["registry:admin:*"]).json_body["token"]
    elif who == "anonymous":
        token = None
    else:
        token = get_token(anonymous, who, people[who], ["registry:admin:*"]).json_body["token"]
        assert claims_of(token)["access"] == []
    before = state()
    response = anonymous.request(route.method, admin_route_path(route), body=b"{}",
                                 headers={"Content-Type": "application/json", **(bearer(token) if token else {})})
    if who == "registry-admin":
        assert response.status_code not in (401, 403), response.body
    else:
        assert response.status_code == 401
        assert 'scope="registry:admin:*"' in response.headers["WWW-Authenticate"]
        assert json.loads(response.body)["errors"][0]["message"] == (
            "authentication required" if token is None else
            "authentication required: the credentials do not allow admin on the registry; ask an admin for a grant")
        assert state() == before


def test_signing_key_can_come_from_secrets_manager(registry):
    import dataclasses

    import boto3

    from chalicelib.backend import Backend
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="dockless/signing", SecretString="s3cr3t")
    settings = dataclasses.replace(registry.settings, token_signing_key=None, token_signing_key_secret="dockless/signing")
    assert Backend(settings=settings, objects=registry.objects).signing_keys() == [b"s3cr3t"]
    unset = dataclasses.replace(registry.settings, token_signing_key=None, token_signing_key_secret=None)
    with pytest.raises(RuntimeError, match="no token signing key"):
        Backend(settings=unset, objects=registry.objects).signing_keys()


@pytest.mark.parametrize("who, method, path", [
    ("rita", "PUT", "/v2/team/app/manifests/v1"),
    ("rita", "POST", "/v2/team/app/blobs/uploads/"),
    ("rita", "DELETE", "/v2/team/app/manifests/v1"),
    ("will", "DELETE", "/v2/team/app/manifests/v1"),
    ("will", "DELETE", f"/v2/team/app/blobs/{digest_of(b'x')}"),
    ("rita", "PUT", f"/extensions/v2/team/app/signatures/{digest_of(b'x')}"),
    ("rita", "POST", "/dockless/v1/team/app/uploads/0123/direct"),
    ("otto", "GET", "/v2/team/app/manifests/v1"),
])
def test_literal_refusals(anonymous, people, state, who, method, path):
    """A few cases spelled out, whatever any table says."""
    token = get_token(anonymous, who, people[who], ["repository:team/app:pull,push,delete"]).json_body["token"]
    before = state()
    response = anonymous.request(method, path, body=b"{}", headers={"Content-Type": "application/json", **bearer(token)})
    assert response.status_code == 401
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert state() == before


def refresh_grant(anonymous, refresh):
    return anonymous.post("/token", body=f"grant_type=refresh_token&refresh_token={refresh}&service=dockless",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


@pytest.mark.parametrize("end", ["parent revoked", "parent expired", "principal deleted", "itself revoked"])
def test_a_refresh_token_dies_with_the_credential_it_came_from(anonymous, people, registry, clock, end):
    auth = AuthService(registry)
    text, parent = auth.new_token("will", 3600, "laptop")
    answer = get_token(anonymous, "will", text, [], offline_token="true").json_body
    refresh = answer["refresh_token"]
    from chalicelib.metadata.models import Credential
    child = Credential.get(refresh.split("_")[1])
    assert child.parent == parent.credential_id and child.expires_at == parent.expires_at
    assert refresh_grant(anonymous, refresh).status_code == 200
    if end == "parent revoked":
        auth.revoke_token(parent.credential_id)
    elif end == "parent expired":
        clock.advance(seconds=3601)
    elif end == "principal deleted":
        auth.delete_principal("will")
    else:
        auth.revoke_token(child.credential_id)
    refused = refresh_grant(anonymous, refresh)
    assert refused.status_code == 401 and error_code(refused) == "UNAUTHORIZED"


def test_a_refresh_token_keeps_its_own_lifetime_under_a_longer_lived_credential(anonymous, people, registry):
    from chalicelib.oci import spec
    from chalicelib.metadata.models import Credential
    text, parent = AuthService(registry).new_token("will", 2 * spec.REFRESH_TOKEN_SECONDS, "laptop")
    refresh = get_token(anonymous, "will", text, [], offline_token="true").json_body["refresh_token"]
    child = Credential.get(refresh.split("_")[1])
    assert child.expires_at == int(registry.clock().timestamp()) + spec.REFRESH_TOKEN_SECONDS < parent.expires_at
    from chalicelib.metadata.models import AuditEvent
    assert [json.loads(e.detail) for e in AuditEvent.scan() if e.action == "credential.create"
            and json.loads(e.detail)["kind"] == "refresh"] == [
        {"principal": "will", "credential": child.credential_id, "kind": "refresh", "expires_at": child.expires_at,
         "parent": parent.credential_id}]


def test_a_credential_of_the_wrong_shape_is_refused_and_not_stored(registry, people):
    from chalicelib.metadata.models import Credential
    before = {c.credential_id for c in Credential.scan()}
    with pytest.raises(ValueError, match=r"^a credential looks like dkl_<16 hex>_<43 base64url>$"):
        AuthService(registry).store_credential("will", "dkl_0123456789abcdef_short")
    assert {c.credential_id for c in Credential.scan()} == before


@pytest.mark.parametrize("header, claims", [(b"[]", b"{}"), (b"1", b"{}"), (b'"x"', b"{}"), (b"null", b"{}"),
                                            (b'{"alg":"HS256"}', b"[]"), (b"\xff\xfe", b"{}"),
                                            (b"[" * 5000, b"{}")])
def test_malformed_bearer_tokens_are_401_not_500(anonymous, people, header, claims):
    def part(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    response = anonymous.get("/v2/team/app/manifests/v1",
                             headers=bearer(f"{part(header)}.{part(claims)}.{part(b'sig')}"))
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")


@pytest.mark.parametrize("authorization, says", [
    ("Basic w6nDqQ==", "invalid credentials"),  # "éé": base64 of UTF-8, no colon
    ("Basic éé", "malformed Basic credentials"),  # not ASCII
    ("Basic !!!", "malformed Basic credentials"),  # not base64 (not skipped over)
    ("Basic cml0YTpkaw==!", "malformed Basic credentials"),  # base64 of "rita:dk", then garbage
    ("Basic " + "A" * 5, "malformed Basic credentials"),  # bad padding
    ("Basic /w==", "malformed Basic credentials"),  # not UTF-8
])
def test_malformed_basic_credentials_are_401_not_500(anonymous, people, authorization, says):
    response = anonymous.get("/token?service=dockless", headers={"Authorization": authorization})
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert json.loads(response.body)["errors"][0]["message"].endswith(says)


def test_a_token_request_names_a_bounded_number_of_scopes(anonymous, people, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="dockless.request")
    many = [f"repository:team/r{i}:pull" for i in range(200)]
    refused = get_token(anonymous, "rita", people["rita"], many)
    assert refused.status_code == 400 and error_code(refused) == "INVALID_REQUEST"
    assert "at most 32 scopes" in json.loads(refused.body)["errors"][0]["message"]
    allowed = get_token(anonymous, "rita", people["rita"], many[:32])
    assert allowed.status_code == 200
    assert len(claims_of(allowed.json_body["token"])["access"]) == 32
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"]
    refused_record, allowed_record = records[-2:]
    assert [c for c in refused_record["aws_calls"] if c.startswith("dynamodb:")] == []
    # The credential and the principal (with its teams) are one read; the grants of all 32 scopes
    # one more, whatever their number; then the one audit event.
    calls = [c for c in allowed_record["aws_calls"] if c != "dynamodb:UpdateItem"]  # last use, daily
    assert calls == ["dynamodb:BatchGetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem"]


def test_unproven_denials_never_write_into_the_targeted_namespace(anonymous, people, registry):
    from chalicelib.metadata.models import AuditEvent
    before = {e.at for e in AuditEvent.scan()}
    for _ in range(15):
        response = anonymous.get("/v2/victim/app/manifests/v1", headers=bearer("garbage"))
        assert response.status_code == 401
    new = [e for e in AuditEvent.scan() if e.at not in before]
    assert all(e.partition.startswith("_unauthenticated#") for e in new)
    assert not any(e.partition.startswith("victim#") for e in AuditEvent.scan())
    assert len(new) == 10 and {(e.action, e.actor, e.repository, e.outcome) for e in new} == {
        ("access.denied", "-", "victim/app", "denied")}


def test_unproven_denials_are_counted_per_source_and_the_left_out_are_told(anonymous, registry, monkeypatch):
    """One address flooding garbage tokens is capped at 10 events a minute; another address still
    gets its event, and the first's next admitted event says how many were left out."""
    import dataclasses
    import time

    from chalicelib.metadata import audit
    from chalicelib.backend import use_backend
    from chalicelib.metadata.models import AuditEvent
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, trusted_proxy_hops=2)))

    def deny(address):
        headers = {**bearer("garbage"), "X-Forwarded-For": f"{address}, 130.176.0.1"}
        assert anonymous.get("/v2/victim/app/manifests/v1", headers=headers).status_code == 401
    before = {e.at for e in AuditEvent.scan()}
    for _ in range(12):
        deny("198.51.100.7")
    deny("203.0.113.9")
    later = time.monotonic() + 61
    monkeypatch.setattr(audit.time, "monotonic", lambda: later)
    deny("198.51.100.7")
    # The test clock stands still: the events share a time, and are compared without order.
    new = [e for e in AuditEvent.scan() if e.at not in before]
    assert sorted((e.source_ip, json.loads(e.detail).get("suppressed", 0)) for e in new) == \
        [("198.51.100.7", 0)] * 10 + [("198.51.100.7", 2), ("203.0.113.9", 0)]


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_a_forged_or_expired_token_leaves_an_access_denied_event(anonymous, people, clock, kind):
    from chalicelib.metadata.models import AuditEvent
    token = get_token(anonymous, "ada", people["ada"], ["repository:team/app:pull"]).json_body["token"]
    if kind == "forged":
        token = jwt.encode(claims_of(token), b"forged key")
    else:
        clock.advance(seconds=301)
    before = {e.at for e in AuditEvent.scan()}
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(token)).status_code == 401
    new = [e for e in AuditEvent.scan() if e.at not in before]
    assert [(e.action, e.repository, e.outcome, json.loads(e.detail)) for e in new] == [
        ("access.denied", "team/app", "denied", {"method": "GET", "route": "/v2/{name}/manifests/{reference}",
                                                 "needed": "pull"})]


def test_the_window_limiter_admits_n_per_window_and_counts_the_rest():
    from chalicelib.runtime.ratelimit import WindowLimiter
    limiter = WindowLimiter(per_window=2, window_seconds=60)
    assert [limiter.admit("a", t) for t in (0, 1, 2, 3)] == [0, 0, None, None]
    assert limiter.admit("b", 4) == 0
    assert limiter.admit("a", 61) == 2  # a new window, reporting the two left out


# --- access tokens (access/jwt.py), unit by unit -------------------------------------------------

KEY, OTHER = b"the key", b"another key"


def good_claims(now=1000.0, **changes):
    return dict(jwt.new_claims("https://r", "ada", "dockless", None, [], now, 300), **changes)


def test_jwt_round_trip_and_what_it_refuses():
    now = 1000.0
    assert jwt.decode(jwt.encode(good_claims(), KEY), [KEY], "dockless", now)["sub"] == "ada"
    expired = "token expired or not yet valid"
    refusals = [
        (jwt.encode(good_claims(aud="another-service"), KEY), "token for another service"),
        (jwt.encode(good_claims(nbf=now + 60), KEY), expired),
        (jwt.encode(good_claims(exp=now - 1), KEY), expired),
        (jwt.encode({k: v for k, v in good_claims().items() if k != "exp"}, KEY), expired),
        (jwt.encode(good_claims(exp="9999999999"), KEY), expired),
        (jwt.encode(good_claims(), OTHER), "unknown signing key"),
        (jwt.encode(good_claims(), KEY).rsplit(".", 1)[0] + "." + "A" * 43, "bad signature"),  # 32 zero bytes
        (jwt.encode(good_claims(access="all"), KEY), "malformed access claim"),
    ]
    for token, reason in refusals:
        with pytest.raises(jwt.InvalidToken) as refused:
            jwt.decode(token, [KEY], "dockless", now)
        assert str(refused.value) == reason


def test_jwt_claims_and_header_are_dockers_token_format():
    claims = jwt.new_claims("https://registry.example", "ada", "dockless", "c1", [{"type": "repository"}], 1000.7, 300)
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": "https://registry.example", "sub": "ada", "aud": "dockless", "exp": 1300, "nbf": 1000, "iat": 1000,
        "cid": "c1", "access": [{"type": "repository"}]}
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert claims["jti"] != good_claims()["jti"]
    token = jwt.encode(claims, KEY)
    assert "=" not in token  # JWS compact serialization: base64url without padding
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT", "kid": hashlib.sha256(KEY).hexdigest()[:16]}


def test_jwt_validity_window_edges_and_claim_types():
    now = 1000.0
    accepted = {
        "nbf within the 5 s clock skew": good_claims(nbf=now + 5),
        "nbf absent": {k: v for k, v in good_claims().items() if k != "nbf"},
        "access absent (a token for nothing)": {k: v for k, v in good_claims().items() if k != "access"},
        "exp just ahead": good_claims(exp=now + 0.5),
        "a float exp": good_claims(exp=now + 10.5),
    }
    for reason, claims in accepted.items():
        assert jwt.decode(jwt.encode(claims, KEY), [KEY], "dockless", now)["sub"] == "ada", reason
    refused = {
        "nbf past the clock skew": good_claims(nbf=now + 5.5),
        "exp now": good_claims(exp=now),
        "exp a bool": good_claims(exp=True),
        "nbf a bool": good_claims(nbf=False),
        "nbf a string": good_claims(nbf="0"),
        "access not a list": good_claims(access={"type": "repository"}),
        "an access entry not an object": good_claims(access=["repository:a/b:pull"]),
        "no audience": {k: v for k, v in good_claims().items() if k != "aud"},
    }
    for reason, claims in refused.items():
        with pytest.raises(jwt.InvalidToken):
            jwt.decode(jwt.encode(claims, KEY), [KEY], "dockless", now)
            pytest.fail(reason)


@pytest.mark.parametrize("token, reason", [
    ("", "malformed token: .+"), ("a.b", "malformed token: .+"), ("a.b.c.d", "malformed token: .+"),
    ("!!.!!.!!", "malformed token: .+"), ("bm90IGpzb24.e30.", "malformed token: .+"), ("e30.e30", "malformed token: .+"),
    ("W10.e30.", "malformed token: header and claims are JSON objects"),  # a JSON list for the header
    ("e30.W10.", "malformed token: header and claims are JSON objects"),  # and for the claims
])
def test_jwt_malformed_tokens_are_invalid_not_errors(token, reason):
    with pytest.raises(jwt.InvalidToken) as refused:
        jwt.decode(token, [KEY], "dockless", 1000.0)
    assert re.fullmatch(reason, str(refused.value))


@pytest.mark.parametrize("subject", ["a", "ab", "abc", "abcd"])  # every base64 padding length
def test_jwt_round_trips_whatever_its_parts_padding(subject):
    claims = good_claims(sub=subject)
    token = jwt.encode(claims, KEY)
    assert jwt.decode(token, [KEY], "dockless", 1000.0) == claims


def _with_header(token, header):
    _, claims, signature = token.split(".")
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{claims}.{signature}"


def test_jwt_kid_names_the_key_and_never_falls_back():
    token = jwt.encode(good_claims(), OTHER)
    # Both keys known: the kid picks OTHER, which verifies.
    assert jwt.decode(token, [KEY, OTHER], "dockless", 1000.0)["sub"] == "ada"
    # A kid naming no known key is refused, even though another key is at hand.
    unknown = _with_header(jwt.encode(good_claims(), KEY), {"alg": "HS256", "typ": "JWT", "kid": "0" * 16})
    with pytest.raises(jwt.InvalidToken, match="^unknown signing key$"):
        jwt.decode(unknown, [KEY], "dockless", 1000.0)


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256", None])
def test_jwt_only_hs256(alg):
    token = _with_header(jwt.encode(good_claims(), KEY), {"alg": alg, "typ": "JWT", "kid": jwt.key_id(KEY)})
    with pytest.raises(jwt.InvalidToken, match="^unsupported algorithm$"):
        jwt.decode(token, [KEY], "dockless", 1000.0)


def test_authenticate_compares_the_whole_secret_hash(registry, people):
    from chalicelib.access.service import _hash
    from chalicelib.metadata.models import Credential
    auth = AuthService(registry)
    text, credential = auth.new_token("will", None, "laptop")
    secret = text.rsplit("_", 1)[1]
    # A stored hash that agrees with the secret's on a long prefix only.
    partial = _hash(secret)[:-1] + ("0" if _hash(secret)[-1] != "0" else "1")
    Credential.get(credential.credential_id).update(actions=[Credential.secret_hash.set(partial)])
    with pytest.raises(Exception) as refused:
        auth.authenticate(text)
    assert getattr(refused.value, "error", None) is not None and refused.value.error.code == "UNAUTHORIZED"


def test_a_mount_challenge_names_the_source_and_a_client_asking_for_exactly_that_gets_201(anonymous, people, push):
    digest = push.blob("team/src", b"shared layer")["digest"]
    path = f"/v2/team/dest/blobs/uploads/?mount={digest}&from=team/src"
    challenge = anonymous.post(path).headers["WWW-Authenticate"]
    scope = challenge.split('scope="')[1].split('"')[0]
    assert scope == "repository:team/dest:pull,push repository:team/src:pull"
    token = get_token(anonymous, "will", people["will"], scope.split(" ")).json_body["token"]
    response = anonymous.post(path, headers=bearer(token))
    assert response.status_code == 201 and response.headers["Docker-Content-Digest"] == digest


def test_basic_credentials_work_on_registry_routes_for_what_they_hold(anonymous, people, push, state):
    """For clients that send credentials on every request (oras-py's basic backend, curl -u)."""
    body = anonymous.get("/v2/team/app/manifests/v1", headers={"Authorization": basic("rita", people["rita"])})
    assert body.status_code == 200
    before = state()
    refused = anonymous.post("/v2/team/app/blobs/uploads/", headers={"Authorization": basic("rita", people["rita"])})
    assert refused.status_code == 401 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    wrong = anonymous.get("/v2/team/app/manifests/v1", headers={"Authorization": basic("rita", people["will"])})
    assert wrong.status_code == 401 and error_code(wrong) == "UNAUTHORIZED"
    assert state() == before
    assert anonymous.post("/v2/team/app/blobs/uploads/",
                          headers={"Authorization": basic("will", people["will"])}).status_code == 202


def test_readers_of_a_public_repository_see_who_moved_a_tag_but_not_from_where(anonymous, people, registry, client):
    AuthService(registry).set_grant("team/app", "*", "read")
    token = get_token(anonymous, scopes=["repository:team/app:pull"]).json_body["token"]
    public = anonymous.get("/dockless/v1/team/app/history", headers=bearer(token))
    assert public.status_code == 200
    [event] = public.json_body["history"]
    assert (event["action"], event["tag"], event["actor"]) == ("push", "v1", "admin")
    assert "source_ip" not in event and "credential_id" not in event
    reader = get_token(anonymous, "rita", people["rita"], ["repository:team/app:pull"]).json_body["token"]
    [shown] = anonymous.get("/dockless/v1/team/app/history", headers=bearer(reader)).json_body["history"]
    assert "source_ip" not in shown
    # A writer sees where from, with a token for pull alone too (what a client asks for to read).
    writer = get_token(anonymous, "will", people["will"], ["repository:team/app:pull"]).json_body["token"]
    [full] = anonymous.get("/dockless/v1/team/app/history", headers=bearer(writer)).json_body["history"]
    assert full["source_ip"] and "credential_id" in full


def test_a_token_that_carries_push_answers_without_reading_grants(anonymous, people, caplog):
    """Whether a caller may push, for what an answer shows (history's client addresses): from the
    token when it says so, from the grants only when it does not."""
    import logging
    caplog.set_level(logging.INFO, logger="dockless.request")
    for scope in ("repository:team/app:pull,push", "repository:team/app:pull"):
        token = get_token(anonymous, "will", people["will"], [scope]).json_body["token"]
        [event] = anonymous.get("/dockless/v1/team/app/history", headers=bearer(token)).json_body["history"]
        assert event["source_ip"], scope
    with_push, pull_only = [json.loads(r.getMessage())["aws_calls"] for r in caplog.records
                            if r.name == "dockless.request" and "/history" in r.getMessage()]
    assert pull_only == ["dynamodb:GetItem", "dynamodb:BatchGetItem"] + with_push  # its teams, then the grants


def test_an_anonymous_token_speaks_for_nobody_and_an_admins_says_admin(anonymous, people, registry):
    from chalicelib.metadata.models import AuditEvent
    auth = AuthService(registry)
    auth.ensure_principal("root", admin=True)
    secret = new_credential_text()
    auth.store_credential("root", secret)
    assert claims_of(get_token(anonymous, "root", secret, ["registry:catalog:*"]).json_body["token"])["admin"] is True
    auth.set_grant("team/app", "*", "read")
    nobody = get_token(anonymous, scopes=["repository:team/app:pull"]).json_body["token"]
    assert claims_of(nobody)["sub"] == "" and "admin" not in claims_of(nobody)
    assert anonymous.get("/v2/team/app/manifests/v1", headers=bearer(nobody)).status_code == 200
    assert [e.actor for e in AuditEvent.scan() if e.action == "manifest.pull"] == ["-"]  # "-": anonymous


@pytest.mark.parametrize("user, asked, granted", [
    ("will", "*", ["pull", "push"]),  # "*": every action, as far as the grants go
    ("ada", "*", ["delete", "pull", "push"]),
    ("will", "pull", ["pull"]),
    ("rita", "pull,push,*", ["pull"]),
])
def test_a_scope_asking_for_every_action_gets_what_the_caller_holds(anonymous, people, user, asked, granted):
    token = get_token(anonymous, user, people[user], [f"repository:team/app:{asked}"]).json_body["token"]
    assert claims_of(token)["access"] == [{"type": "repository", "name": "team/app", "actions": granted}]


def test_grants_this_version_cannot_honour_grant_nothing_more(anonymous, people, push):
    """Grants are checked when they are made; one that reached the table otherwise (an older or
    newer version, a hand edit) grants no more: an unknown role nothing, anyone no more than pull."""
    import datetime
    from chalicelib.metadata import keys
    from chalicelib.metadata.models import Grant
    push.image("open/app", "v1")
    now = datetime.datetime.now(datetime.timezone.utc)
    Grant(keys.resource("open"), "*", role="write", granted_at=now).save()
    Grant(keys.resource("open"), "user:rita", role="owner", granted_at=now).save()
    for user, secret in ((None, None), ("rita", people["rita"])):
        token = get_token(anonymous, user, secret, ["repository:open/app:pull,push,delete"])
        assert token.status_code == 200
        assert claims_of(token.json_body["token"])["access"][0]["actions"] == ["pull"], user


def test_each_scope_is_answered_whatever_comes_before_it(anonymous, people):
    scopes = ["nonsense", "registry:catalog:*", "repository:team/app:pull", "registry:admin:*",
              "repository:team/app:push"]
    token = get_token(anonymous, "will", people["will"], scopes).json_body["token"]
    assert claims_of(token)["access"] == [
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]  # no admin scope for will


def _presented(anonymous, how, user, secret, scope):
    """Authorization headers for `user`: its Basic credentials, or a token for `scope` got with them."""
    if how == "basic":
        return {"Authorization": basic(user, secret)}
    return bearer(get_token(anonymous, user, secret, [scope]).json_body["token"])


@pytest.mark.parametrize("how", ["bearer", "basic"])
def test_credentials_name_the_caller_and_carry_an_admins_rights(anonymous, people, registry, push, how):
    """Whether a client sends a token or its Basic credentials on each request, the API knows the
    same caller: the audit trail's actor and credential and, for an admin, every repository (the
    catalog lists what no grant names)."""
    from chalicelib.metadata.models import AuditEvent
    rita = _presented(anonymous, how, "rita", people["rita"], "repository:team/app:pull")
    assert anonymous.get("/v2/team/app/manifests/v1", headers=rita).status_code == 200
    (pull,) = [e for e in AuditEvent.scan() if e.action == "manifest.pull"]
    assert (pull.actor, pull.credential_id) == ("rita", people["rita"].split("_")[1])
    push.blob("other/secret", b"x")
    auth = AuthService(registry)
    auth.ensure_principal("root", admin=True)
    secret = new_credential_text()
    auth.store_credential("root", secret)
    listed = anonymous.get("/v2/_catalog", headers=_presented(anonymous, how, "root", secret, "registry:catalog:*"))
    assert listed.status_code == 200 and listed.json_body == {"repositories": ["other/secret", "team/app"]}
