"""Robots that trust federated identities (chalicelib/access/federation.py), in process, against an
OIDC provider on loopback (tests/oidc.py): a CI's ID token is the robot's password at the token
endpoint, checked against the issuer's published keys and the trust's conditions; every refusal is
a 401 that issues nothing, its reason in the audit trail only."""
import base64
import itertools
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chalicelib.access import federation
from tests.fixtures import Pusher, error_code
from tests.oidc import Provider, serving

AUDIENCE = "https://registry.example.test"
SUBJECT = "repo:acme/app:ref:refs/heads/main"


@pytest.fixture(autouse=True)
def from_many_addresses(registry):
    """Each exchange from an address of its own (behind CloudFront): the trail caps unproven
    denials per address, and these tests read every one."""
    import dataclasses
    from chalicelib.backend import use_backend
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, trusted_proxy_hops=2)))


ADDRESSES = itertools.count(1)


@pytest.fixture
def provider(clock):
    with serving(clock) as provider:  # each test fetches the keys it serves
        yield provider


@pytest.fixture
def robot(client, provider):
    """Robot `ci`, which may push to team/, trusting main-branch runs of acme/app."""
    assert client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "ci", "kind": "robot"}),
                       headers={"Content-Type": "application/json"}).status_code == 201
    assert client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": "team", "subject": "user:ci",
                                                                    "role": "write"}),
                      headers={"Content-Type": "application/json"}).status_code in (200, 201, 204)
    trust = client.post("/dockless/admin/v1/principals/ci/trusts", headers={"Content-Type": "application/json"},
                        body=json.dumps({"issuer": provider.issuer, "audience": AUDIENCE, "subject": "repo:acme/*:ref:refs/heads/main",
                                         "claims": {"workflow": "release*"}}))
    assert trust.status_code == 201, trust.body
    return json.loads(trust.body)


class BearerClient:
    """The test client, sending one access token on every request (what docker does after login)."""

    def __init__(self, http, token):
        self._http, self._token = http, token

    def __getattr__(self, method):
        def send(path, headers=None, **kwargs):
            return getattr(self._http, method)(path, headers={**(headers or {}), "Authorization": f"Bearer {self._token}"},
                                               **kwargs)
        return send


def exchange(anonymous, token, username="ci", scope="repository:team/app:pull,push", offline=False):
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    address = next(ADDRESSES)
    return anonymous.get(f"/token?service=dockless&scope={scope}" + ("&offline_token=true&client_id=docker" if offline else ""),
                         headers={"Authorization": f"Basic {basic}",
                                  "X-Forwarded-For": f"198.51.{address // 250}.{address % 250 + 1}, 130.176.0.1"})


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def denials(client) -> list:
    events = client.get("/dockless/admin/v1/audit?namespace=_unauthenticated").json_body["events"]
    return [e["detail"] for e in events if e["action"] == "authenticate" and e["outcome"] == "denied"]


def test_a_trust_is_kept_listed_removed_and_audited(client, provider, robot):
    assert robot["issuer"] == provider.issuer and robot["claims"] == {"workflow": "release*"}
    listed = client.get("/dockless/admin/v1/principals/ci/trusts").json_body["trusts"]
    assert [t["id"] for t in listed] == [robot["id"]]
    assert client.delete(f"/dockless/admin/v1/principals/ci/trusts/{robot['id']}").status_code == 204
    assert client.get("/dockless/admin/v1/principals/ci/trusts").json_body["trusts"] == []
    events = client.get("/dockless/admin/v1/audit?namespace=_registry").json_body["events"]
    assert sorted((e["action"], e["detail"]["principal"]) for e in events if e["action"].startswith("robot.")) == [
        ("robot.trust", "ci"), ("robot.untrust", "ci")]


@pytest.mark.parametrize("change, said", [
    ({"issuer": "ftp://issuer.example.test"}, "issuer must be"),
    ({"issuer": "http://issuer.example.test"}, "issuer must be"),
    ({"subject": "*"}, "not only *"),
    ({"audience": ""}, "audience must be"),
    ({"claims": {"sub": "x"}}, "not iss, aud or sub"),
])
def test_a_bad_trust_is_refused_and_nothing_is_kept(client, provider, robot, state, change, said):
    before = state()
    document = {"issuer": provider.issuer, "audience": AUDIENCE, "subject": SUBJECT, **change}
    refused = client.post("/dockless/admin/v1/principals/ci/trusts", body=json.dumps(document),
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and error_code(refused) == "INVALID"
    assert said in json.loads(refused.body)["errors"][0]["message"]
    assert state() == before


def test_only_a_robot_trusts_federated_identities(client, provider, state):
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "alice", "kind": "user"}),
                headers={"Content-Type": "application/json"})
    before = state()
    refused = client.post("/dockless/admin/v1/principals/alice/trusts", headers={"Content-Type": "application/json"},
                          body=json.dumps({"issuer": provider.issuer, "audience": AUDIENCE, "subject": SUBJECT}))
    assert refused.status_code == 400 and "is not a robot" in json.loads(refused.body)["errors"][0]["message"]
    assert state() == before


def test_an_id_token_is_the_robots_password(client, anonymous, provider, robot, push):
    id_token = provider.token(SUBJECT, workflow="release.yml", run_id=4711, repository="acme/app")
    answer = exchange(anonymous, id_token, offline=True)
    assert answer.status_code == 200, answer.body
    document = json.loads(answer.body)
    assert "refresh_token" not in document  # it would outlive the ID token
    claims = claims_of(document["token"])
    assert claims["sub"] == "ci" and claims["access"] == [{"type": "repository", "name": "team/app",
                                                           "actions": ["pull", "push"]}]
    assert claims["exp"] <= claims_of(id_token)["exp"] and document["expires_in"] <= 300
    assert claims["fed"]["issuer"] == provider.issuer and claims["fed"]["subject"] == SUBJECT
    # What the token does is recorded with the identity behind it.
    as_ci = Pusher(BearerClient(anonymous, document["token"]))
    as_ci.image("team/app", "v1")
    events = client.get("/dockless/admin/v1/audit?namespace=team").json_body["events"]
    federated = [e["detail"].get("federated") for e in events if e["actor"] == "ci"]
    assert federated and all(f == {"issuer": provider.issuer, "subject": SUBJECT, "trust": robot["id"],
                                   "workflow": "release.yml", "run_id": "4711", "repository": "acme/app"}
                             for f in federated)
    issued = [e for e in client.get("/dockless/admin/v1/audit?namespace=_registry").json_body["events"]
              if e["action"] == "token.issue" and e["actor"] == "ci"]
    assert issued and issued[0]["detail"]["grant"] == "federated"


def test_an_ec_key_and_a_rotated_key_are_fetched_as_the_issuer_publishes_them(anonymous, provider, robot, monkeypatch):
    assert exchange(anonymous, provider.token(SUBJECT, workflow="release.yml")).status_code == 200
    assert provider.fetches == 2  # discovery, then the keys
    provider.keys["k2"] = ec.generate_private_key(ec.SECP256R1())  # rotation: a new kid
    # Within REFETCH_SECONDS of the last fetch an unknown kid costs the issuer nothing: a flood of
    # made-up kids is not a flood of fetches.
    for _ in range(5):
        assert exchange(anonymous, provider.token(SUBJECT, kid="k2", workflow="release.yml")).status_code == 401
    assert provider.fetches == 2
    monkeypatch.setattr(federation, "REFETCH_SECONDS", 0)
    assert exchange(anonymous, provider.token(SUBJECT, kid="k2", workflow="release.yml")).status_code == 200
    assert provider.fetches == 4


def test_a_token_that_does_not_hold_is_refused_with_its_reason_in_the_trail_only(client, anonymous, provider, robot,
                                                                                state):
    stranger = Provider()
    stranger.clock = provider.clock
    stranger_key = rsa.generate_private_key(65537, 2048)
    try:
        provider.keys["unpublished"] = stranger_key
        cases = {
            "expired": (provider.token(SUBJECT, workflow="release.yml", now=provider.clock() - 3600), "expired"),
            "for another audience": (provider.token(SUBJECT, audience="https://elsewhere.test", workflow="release.yml"),
                                     "aud"),
            "from another issuer": (stranger.token(SUBJECT, workflow="release.yml"), "no trust of this robot names"),
            "another repository": (provider.token("repo:mallory/app:ref:refs/heads/main", workflow="release.yml"), "sub"),
            "another branch": (provider.token("repo:acme/app:ref:refs/heads/dev", workflow="release.yml"), "sub"),
            "another workflow": (provider.token(SUBJECT, workflow="deploy.yml"), "claim workflow"),
            "without the claim": (provider.token(SUBJECT), "claim workflow"),
            "not yet valid": (provider.token(SUBJECT, workflow="release.yml", nbf=int(provider.clock()) + 600), "not valid yet"),
            "HS256 with the public key": (provider.forged_hs256(SUBJECT, workflow="release.yml"), "is not RS256 or ES256"),
            "a kid the issuer does not publish": (provider.token(SUBJECT, kid="unpublished", workflow="release.yml",
                                                                 header={"kid": "nobody"}), "publishes no key"),
            "signed by a key it does not publish, under its kid": (
                provider.token(SUBJECT, kid="unpublished", header={"kid": "k1"}, workflow="release.yml"),
                "does not verify"),
            "iss naming the trust, signed by a stranger": (
                stranger.token(SUBJECT, issuer=provider.issuer, workflow="release.yml"), "does not verify"),
        }
        del provider.keys["unpublished"]
        before = state()
        for why, (token, reason) in cases.items():
            refused = exchange(anonymous, token)
            assert refused.status_code == 401 and error_code(refused) == "UNAUTHORIZED", why
            assert json.loads(refused.body)["errors"][0]["detail"] == "invalid credentials", why  # nothing more
        reasons = [d.get("reason", "") for d in denials(client)]
        for why, (_, reason) in cases.items():
            assert any(reason in r for r in reasons), (why, reason, reasons)
        unsigned = exchange(anonymous, provider.unsigned(SUBJECT))  # alg none: not even a token
        assert unsigned.status_code == 401
        assert state() == before  # nothing issued, no credential, no refresh token (the trail aside)
    finally:
        stranger.close()


def test_a_user_or_an_unknown_robot_cannot_use_an_id_token(client, anonymous, provider, robot):
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "alice", "kind": "user"}),
                headers={"Content-Type": "application/json"})
    for name in ("alice", "nobody"):
        assert exchange(anonymous, provider.token(SUBJECT, workflow="release.yml"), username=name).status_code == 401
    reasons = [d.get("reason", "") for d in denials(client)]
    assert any("is not a robot that trusts" in r for r in reasons) and any("no robot 'nobody'" in r for r in reasons)


@pytest.mark.parametrize("mode, reason", [
    ("lie", "names another issuer"),
    ("redirect-internal", "does not fetch from"),
    ("redirect-loop", "redirected more than"),
    ("flood", "sent more than"),
    ("stall", "did not finish within"),
])
def test_a_hostile_issuer_gets_nothing_in(client, anonymous, provider, robot, monkeypatch, mode, reason):
    monkeypatch.setattr(federation, "FETCH_SECONDS", 1)
    provider.mode = mode
    started = time.monotonic()
    refused = exchange(anonymous, provider.token(SUBJECT, workflow="release.yml"))
    assert refused.status_code == 401
    assert time.monotonic() - started < 20  # bounded, whatever the issuer does (no wall-clock goal: a bound)
    assert any(reason in d.get("reason", "") for d in denials(client)), denials(client)


def test_in_lambda_a_loopback_issuer_is_never_fetched(provider):
    keys = federation.KeySets(in_lambda=True)
    with pytest.raises(federation.Refused, match="does not fetch from"):
        keys(provider.issuer, "k1")
    assert provider.fetches == 0
