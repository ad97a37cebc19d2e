"""Docker token auth and access control, in process: the token endpoint, the challenge, and the
authorisation matrix over every route of the route table."""
import base64
import json

import pytest

from chalicelib.auth import jwt
from chalicelib.auth.service import AuthService, new_credential_text
from chalicelib.routes.table import DELETE, PULL, PUSH, ROUTES
from tests.fixtures import PUBLIC_URL, digest_of, error_code

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
        auth.grant(f"ns:{namespace}", f"user:{name}", role)
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
    assert error_code(response) == "DENIED"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="repository:team/app:pull,push"' in response.headers["WWW-Authenticate"]


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
    from chalicelib.meta.models import Credential
    credential_id = people["rev"].split("_")[1]
    Credential.get(credential_id).update(actions=[Credential.revoked.set(True)])
    assert get_token(anonymous, "rev", people["rev"]).status_code == 401
    auth = AuthService(__import__("chalicelib.services", fromlist=["services"]).services())
    short = new_credential_text()
    auth.store_credential("will", short, lifetime_seconds=60)
    assert get_token(anonymous, "will", short).status_code == 200
    clock.advance(seconds=61)
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
    AuthService(registry).grant("repo:team/pub", "*", "read")
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


def placeholder(route):
    return (route.path.replace("{name}", "team/app").replace("{digest}", digest_of(b"x"))
            .replace("{reference}", "v1").replace("{upload_id}", "0123"))


# Who may do what on team/app: role on the namespace -> allowed actions.
ALLOWED = {"rita": {PULL}, "will": {PULL, PUSH}, "ada": {PULL, PUSH, DELETE}, "otto": set(),
           "anonymous": set(), "rev": set(), "expired": set(), "forged": set(), "other-repo": set()}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.action in (PULL, PUSH, DELETE)],
                         ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(anonymous, people, clock, state, route, who):
    scope = "repository:team/app:pull,push,delete"
    if who in ("rita", "will", "ada", "otto"):
        token = get_token(anonymous, who, people[who], [scope]).json_body["token"]
    elif who == "anonymous":
        token = None
    elif who == "rev":
        from chalicelib.meta.models import Credential
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
    response = anonymous.request(route.method, placeholder(route), body=b"", headers=headers)
    if route.action in ALLOWED[who]:
        assert response.status_code not in (401, 403), response.body
    else:
        assert response.status_code == 401, response.body
        assert error_code(response) in ("UNAUTHORIZED", "DENIED")
        assert "WWW-Authenticate" in response.headers
        assert state() == before


def admin_route_path(route):
    return (route.path.replace("{principal}", "will").replace("{credential_id}", "0123456789abcdef")
            .replace("{team}", "devs"))


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
        assert state() == before


def test_signing_key_can_come_from_secrets_manager(registry):
    import dataclasses

    import boto3

    from chalicelib.services import Services
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="dockless/signing", SecretString="s3cr3t")
    settings = dataclasses.replace(registry.settings, token_signing_key=None, token_signing_key_secret="dockless/signing")
    assert Services(settings=settings, objects=registry.objects).signing_keys() == [b"s3cr3t"]
    unset = dataclasses.replace(registry.settings, token_signing_key=None, token_signing_key_secret=None)
    with pytest.raises(RuntimeError, match="no token signing key"):
        Services(settings=unset, objects=registry.objects).signing_keys()
