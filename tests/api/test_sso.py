"""Single sign-on for people (chalicelib/access/sso.py), in process, against an identity provider on
loopback (tests/oidc.py): the console's authorization code flow with PKCE, the CLI's device grant
through /token, groups mapped to teams, and every way a sign-in must fail without creating a
person, a session or a token. tests/e2e/test_console.py signs in through chromium."""
import base64
import dataclasses
import hashlib
import itertools
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.access import sso
from chalicelib.backend import use_backend
from chalicelib.metadata.models import AuditEvent, Credential, Principal
from chalicelib.runtime.config import SingleSignOn
from tests.api.test_console import Browser, set_cookies
from tests.fixtures import PUBLIC_URL
from tests.oidc import b64url, serving

JSON = {"Content-Type": "application/json"}
ADDRESSES = itertools.count(1)


@pytest.fixture
def provider(clock):
    with serving(clock) as provider:
        provider.client_secret = "s3cret/with:odd=chars"
        provider.people = {"alice": {"sub": "00u-alice", "preferred_username": "alice", "groups": ["eng", "all"]},
                           "bob": {"sub": "00u-bob", "preferred_username": "Bob@Acme.example", "groups": ["ops"]}}
        yield provider


@pytest.fixture
def configured(registry, provider, client):
    """The registry signs people in at `provider`: group eng makes a member of team devs (which
    may read team/), group ops of team ops (which does not exist)."""
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(
        registry.settings, trusted_proxy_hops=2, sso=SingleSignOn(
            provider.issuer, "dockless", provider.client_secret, None, {"eng": "devs", "ops": "ops"},
            "preferred_username", "groups", "openid profile email groups"))))
    assert client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "devs", "kind": "team"}),
                       headers=JSON).status_code == 201
    assert client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": "team", "subject": "team:devs",
                                                                    "role": "read"}), headers=JSON).status_code in (200, 201, 204)
    return provider


class Person(Browser):
    """A browser of one address of its own (the trail caps unproven denials per address)."""

    def __init__(self, http):
        super().__init__(http)
        address = next(ADDRESSES)
        self.forwarded = {"X-Forwarded-For": f"203.0.{address // 250}.{address % 250 + 1}, 130.176.0.1"}

    def request(self, method, path, form=None, headers=None):
        return super().request(method, path, form, {**self.forwarded, **(headers or {})})


def at_provider(provider, location: str, username: str) -> str:
    """What the person does at the provider's sign-in page: its form posted with their name; the
    redirect back to the registry, as a path and query."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    answer = requests.post(provider.issuer + "/authorize", data={**query, "username": username},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == PUBLIC_URL and back.path == "/ui/sso/callback"
    return f"{back.path}?{back.query}"


def sign_in(person: Person, provider, username="alice"):
    started = person.request("GET", "/ui/sso")
    assert started.status_code == 302, started.body
    return person.request("GET", at_provider(provider, started.headers["Location"], username))


def people_named(*names):
    return {name: Principal.get(name) if Principal.count(name) else None for name in names}


def sessions():
    return [c for c in Credential.scan() if c.kind == "session"]


def denials():
    return [json.loads(e.detail or "{}") for e in AuditEvent.scan()
            if e.action == "console.signin" and e.outcome == "denied"]


def test_the_console_signs_a_person_in_through_the_provider_with_pkce(anonymous, configured, push):
    push.image("team/app", "v1")
    person = Person(anonymous)
    form = person.request("GET", "/ui/signin").body.decode()
    assert 'href="/ui/sso"' in form and "Sign in with single sign-on" in form
    started = person.request("GET", "/ui/sso")
    assert started.status_code == 302
    location = urlsplit(started.headers["Location"])
    asked = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == configured.issuer + "/authorize"
    assert asked["response_type"] == "code" and asked["client_id"] == "dockless"
    assert asked["redirect_uri"] == PUBLIC_URL + "/ui/sso/callback" and asked["scope"] == "openid profile email groups"
    state, nonce, verifier = person.cookies["dockless_sso"].split(".")
    assert asked["state"] == state and asked["nonce"] == nonce and asked["code_challenge_method"] == "S256"
    assert asked["code_challenge"] == b64url(hashlib.sha256(verifier.encode()).digest())
    flow_cookie = set_cookies(started)["dockless_sso"][1]
    assert all(part in flow_cookie for part in ("HttpOnly", "SameSite=Lax", "Path=/ui/sso", "Max-Age=600", "Secure"))

    back = person.request("GET", at_provider(configured, started.headers["Location"], "alice"))
    assert back.status_code == 200, back.body
    page = back.body.decode()
    assert '<meta http-equiv="refresh" content="0;url=/ui/">' in page and "alice" in page and "devs" in page
    cookies = set_cookies(back)
    assert cookies["dockless_session"][0].startswith("dkl_") and "SameSite=Strict" in cookies["dockless_session"][1]
    assert "dockless_sso" not in person.cookies  # the flow is over
    exchanged = configured.token_requests[-1]
    assert exchanged["grant_type"] == "authorization_code" and exchanged["code_verifier"] == verifier
    assert exchanged["redirect_uri"] == PUBLIC_URL + "/ui/sso/callback"
    assert base64.b64decode(exchanged["authorization"][6:]).decode() == "dockless:s3cret%2Fwith%3Aodd%3Dchars"

    home = person.request("GET", "/ui/").body.decode()
    assert "team/app" in home and "alice" in home
    alice = Principal.get("alice")
    assert alice.kind == "user" and not alice.admin and alice.identity == f"{configured.issuer} 00u-alice"
    assert alice.teams == {"devs"}
    signed = [json.loads(e.detail) for e in AuditEvent.scan() if e.action == "sso.signin"]
    assert signed == [{"principal": "alice", "issuer": configured.issuer, "subject": "00u-alice", "teams": ["devs"],
                       "created": True}]
    assert [s.description for s in sessions()] == ["console (single sign-on)"]


def test_a_person_has_only_their_teams_grants(anonymous, configured, push):
    push.image("team/app", "v1")
    person = Person(anonymous)
    sign_in(person, configured)
    assert person.request("GET", "/ui/tag?name=team/app&tag=v1").status_code == 200
    refused = person.request("GET", "/ui/restore?name=team/app&tag=v1&digest=sha256:" + "0" * 64)
    assert refused.status_code == 403  # devs may read team/, not push
    assert person.request("GET", "/ui/people").status_code == 403  # no admin through single sign-on


def test_teams_follow_the_groups_at_every_sign_in(anonymous, configured):
    sign_in(Person(anonymous), configured)
    assert Principal.get("alice").teams == {"devs"}
    configured.people["alice"]["groups"] = ["all", "ops"]  # out of eng; ops names a team that does not exist
    again = sign_in(Person(anonymous), configured)
    assert again.status_code == 200
    assert Principal.get("alice").teams is None
    assert [json.loads(e.detail)["created"] for e in AuditEvent.scan() if e.action == "sso.signin"].count(False) == 1


def test_a_rotated_key_is_fetched_by_its_kid(anonymous, configured, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import ec
    from chalicelib.access import federation
    monkeypatch.setattr(federation, "REFETCH_SECONDS", 0)
    assert sign_in(Person(anonymous), configured).status_code == 200  # the keys are held now
    configured.keys = {"k2": ec.generate_private_key(ec.SECP256R1())}
    configured.kid = "k2"
    assert sign_in(Person(anonymous), configured).status_code == 200


def test_an_email_as_user_name_becomes_a_principal_name(anonymous, configured):
    assert sign_in(Person(anonymous), configured, "bob").status_code == 200
    assert Principal.get("bob.acme.example").identity == f"{configured.issuer} 00u-bob"


def test_a_local_users_name_is_never_taken_over(anonymous, client, configured):
    assert client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "alice"}), headers=JSON).status_code == 201
    assert client.put("/dockless/admin/v1/teams/devs/members/alice").status_code in (200, 204)
    answer = sign_in(Person(anonymous), configured)
    assert answer.status_code == 401 and "belongs to someone else" in answer.body.decode()
    alice = Principal.get("alice")
    assert alice.identity is None and alice.teams == {"devs"}
    assert sessions() == [] and "dockless_session" not in set_cookies(answer)
    assert "is not bound to" in denials()[-1]["reason"]


@pytest.mark.parametrize("break_it, reason", [
    (lambda p, d: (200, {**d, "id_token": p.token("00u-alice", audience="someone-else", nonce=_nonce(d),
                                                  preferred_username="alice")}), "aud"),
    (lambda p, d: (200, {**d, "id_token": p.token("00u-alice", audience="dockless", nonce="another",
                                                  preferred_username="alice")}), "claim nonce"),
    (lambda p, d: (200, {**d, "id_token": p.token("00u-alice", audience="dockless", nonce=_nonce(d), lifetime=-120,
                                                  preferred_username="alice")}), "expired"),
    (lambda p, d: (200, {**d, "id_token": p.unsigned("00u-alice")}), "not a JWS"),
    (lambda p, d: (200, {**d, "id_token": p.forged_hs256("00u-alice", nonce=_nonce(d))}), "alg 'HS256'"),
    (lambda p, d: (200, {**d, "id_token": p.token("00u-alice", audience="dockless", nonce=_nonce(d),
                                                  issuer="https://evil.example.test")}), "issuer"),
    (lambda p, d: (200, {k: v for k, v in d.items() if k != "id_token"}), "no id_token"),
    (lambda p, d: (200, {**d, "id_token": p.token("00u-alice", audience="dockless", nonce=_nonce(d),
                                                  preferred_username="Alice Smith")}), "not a principal name"),
    (lambda p, d: (302, {}), "answered 302"),
    (lambda p, d: (500, {"error": "server_error"}), "answered 500"),
    (lambda p, d: (200, "not an object"), "no JSON object"),
])
def test_an_answer_that_does_not_verify_signs_no_one_in(anonymous, configured, break_it, reason):
    configured.answer = lambda document: break_it(configured, document)
    answer = sign_in(Person(anonymous), configured)
    assert answer.status_code == 401 and "dockless_session" not in set_cookies(answer)
    assert "Sign in" in answer.body.decode()
    assert people_named("alice")["alice"] is None and sessions() == []
    assert reason in denials()[-1]["reason"]


def _nonce(document) -> str:
    """The nonce of the ID token the provider would have sent."""
    body = document["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["nonce"]


def test_a_callback_not_of_this_browsers_sign_in_is_refused(anonymous, configured):
    attacker, victim = Person(anonymous), Person(anonymous)
    started = attacker.request("GET", "/ui/sso")
    callback = at_provider(configured, started.headers["Location"], "alice")
    # Login CSRF: the attacker's code and state, in the victim's browser (whose flow is its own, or none).
    for browser in (victim, Person(anonymous)):
        if browser is victim:
            browser.request("GET", "/ui/sso")
        answer = browser.request("GET", callback)
        assert answer.status_code == 401 and "expired or came from elsewhere" in answer.body.decode()
    assert sessions() == [] and people_named("alice")["alice"] is None
    # The code is one-time: once used, the attacker's own browser cannot use it again either.
    assert attacker.request("GET", callback).status_code == 200
    assert attacker.request("GET", callback).status_code == 401
    assert len(sessions()) == 1


def test_a_refusal_at_the_provider_is_said(anonymous, configured):
    answer = sign_in(Person(anonymous), configured, username="mallory")  # not a person the provider knows
    assert answer.status_code == 401 and "did not sign you in (access_denied)" in answer.body.decode()
    assert sessions() == []


def test_a_stalling_provider_is_cut_off(anonymous, configured, monkeypatch):
    monkeypatch.setattr(sso, "EXCHANGE_SECONDS", 1)
    configured.answer = lambda document: (time.sleep(4), (200, document))[1]
    answer = sign_in(Person(anonymous), configured)
    assert answer.status_code == 401 and "could not be reached" in answer.body.decode()
    assert "within 1 s" in denials()[-1]["reason"] and sessions() == []


def test_without_configuration_there_is_no_single_sign_on(anonymous, registry):
    person = Person(anonymous)
    assert "/ui/sso" not in person.request("GET", "/ui/signin").body.decode()
    assert person.request("GET", "/ui/sso").status_code == 404
    assert anonymous.post("/token/device", body=b"").status_code == 400


# --- the CLI: the device grant, relayed by /token -------------------------------------------------

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def poll(anonymous, device_code):
    return anonymous.post("/token", headers=FORM, body=f"grant_type={sso.DEVICE_GRANT}&device_code={device_code}"
                                                       "&scope=repository:team/app:pull".encode())


def test_the_device_grant_signs_the_cli_in_with_a_refresh_token(anonymous, configured, clock):
    started = anonymous.post("/token/device", body=b"", headers=FORM)
    assert started.status_code == 200, started.body
    codes = started.json_body
    assert set(codes) == {"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in",
                          "interval"}
    assert codes["verification_uri"] == configured.issuer + "/activate"
    pending = poll(anonymous, codes["device_code"])
    assert pending.status_code == 400 and pending.json_body["error"] == "authorization_pending"
    assert people_named("alice")["alice"] is None
    configured.approve(codes["user_code"], "alice")
    answer = poll(anonymous, codes["device_code"])
    assert answer.status_code == 200, answer.body
    assert answer.json_body["principal"] == "alice"
    claims = json.loads(base64.urlsafe_b64decode(answer.json_body["token"].split(".")[1] + "=="))
    assert claims["sub"] == "alice" and claims["access"] == [{"type": "repository", "name": "team/app",
                                                             "actions": ["pull"]}]
    refresh = answer.json_body["refresh_token"]
    stored = [c for c in Credential.scan() if c.kind == "refresh"]
    assert len(stored) == 1 and stored[0].expires_at == int(clock().timestamp()) + sso.REFRESH_SECONDS
    again = anonymous.post("/token", headers=FORM, body=f"grant_type=refresh_token&refresh_token={refresh}"
                                                         "&scope=repository:team/app:pull,push".encode())
    assert again.status_code == 200
    assert json.loads(base64.urlsafe_b64decode(again.json_body["token"].split(".")[1] + "=="))["access"][0]["actions"] == ["pull"]
    assert poll(anonymous, codes["device_code"]).json_body["error"] == "access_denied"  # the code is spent
    clock.advance(seconds=sso.REFRESH_SECONDS + 1)
    assert anonymous.post("/token", headers=FORM, body=f"grant_type=refresh_token&refresh_token={refresh}".encode()
                          ).status_code == 401


def test_a_device_approved_by_no_one_the_provider_knows_gets_nothing(anonymous, configured):
    codes = anonymous.post("/token/device", body=b"", headers=FORM).json_body
    configured.approve(codes["user_code"], "mallory")
    answer = poll(anonymous, codes["device_code"])
    assert answer.status_code == 400 and answer.json_body["error"] == "access_denied"
    assert "refresh_token" not in answer.json_body and not [c for c in Credential.scan() if c.kind == "refresh"]
    refused = [json.loads(e.detail) for e in AuditEvent.scan() if e.action == "authenticate" and e.outcome == "denied"]
    assert refused[-1]["grant"] == "sso" and "access_denied" in refused[-1]["reason"]


def test_a_wrong_client_secret_is_the_providers_to_refuse(anonymous, configured):
    configured.client_secret = "rotated"
    answer = anonymous.post("/token/device", body=b"", headers=FORM)
    assert answer.status_code == 400 and answer.json_body["error"] == "invalid_request"
    assert "did not sign you in (invalid_client)" in answer.json_body["error_description"]


def test_deployed_the_client_secret_comes_from_secrets_manager(anonymous, configured):
    """The provider refuses a wrong secret (invalid_client, the test above): a 200 says the
    registry sent the one in its Secrets Manager secret (trailing whitespace not part of it)."""
    import uuid
    import boto3
    from chalicelib.backend import backend
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name=f"dockless-test-sso-client-{uuid.uuid4().hex}",
                                SecretString=configured.client_secret + "\n")["ARN"]
    current = backend()
    use_backend(dataclasses.replace(current, settings=dataclasses.replace(
        current.settings, sso=current.settings.sso._replace(client_secret=None, client_secret_secret=arn))))
    try:
        assert anonymous.post("/token/device", body=b"", headers=FORM).status_code == 200
        secrets.put_secret_value(SecretId=arn, SecretString="changed")
        assert anonymous.post("/token/device", body=b"", headers=FORM).status_code == 200  # read once per container
    finally:
        sso._CLIENT_SECRET.clear()
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
