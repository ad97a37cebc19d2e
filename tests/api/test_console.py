"""The web console in process (chalicelib/console): sign-in with its CSRF cookie, the session
cookie's attributes, what a page shows to whom, sign-out revoking the session, the security
headers, and escaping. tests/e2e/test_console.py drives it in chromium."""
import json
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from chalicelib.metadata.models import Credential
from chalicelib.oci import spec
from chalicelib.oci.spec import PULL, PUSH
from tests.fixtures import digest_of

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def set_cookies(response) -> dict:
    """Each Set-Cookie of a chalice test response, parsed, by name, with its raw text."""
    values = response.headers.get("Set-Cookie") or []
    found = {}
    for text in [values] if isinstance(values, str) else values:
        jar = SimpleCookie()
        jar.load(text)
        for name, morsel in jar.items():
            found[name] = (morsel.value, text)
    return found


def csrf_field(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]*)"', html).group(1)


class Browser:
    """Cookies kept across requests, as a browser would (for /ui only)."""

    def __init__(self, http):
        self.http, self.cookies = http, {}

    def request(self, method, path, form=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            headers.update(FORM)
            body = urlencode(form).encode()
        response = self.http.request(method, path, body=body, headers=headers)
        for name, (value, text) in set_cookies(response).items():
            if "Max-Age=0" in text:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def sign_in(self, name, token):
        form = self.request("GET", "/ui/signin")
        return self.request("POST", "/ui/signin", {"csrf": csrf_field(form.body.decode()), "name": name,
                                                   "token": token})


def test_signing_in_sets_a_strict_session_cookie_and_shows_what_the_caller_may_pull(anonymous, client, push, people):
    push.image("team/app", "v1")
    push.image("team/secret", "v1")
    browser = Browser(anonymous)
    signed_out = browser.request("GET", "/ui/")
    assert signed_out.status_code == 401 and "Sign in to see this page." in signed_out.body.decode()
    first = browser.request("GET", "/ui/signin")
    assert first.status_code == 200 and "Sign in" in first.body.decode()
    signin_cookie = set_cookies(first)["dockless_signin"][1]
    assert "HttpOnly" in signin_cookie and "SameSite=Strict" in signin_cookie and "Path=/ui" in signin_cookie
    answer = browser.sign_in("reader", people["reader"])
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/"
    value, text = set_cookies(answer)["dockless_session"]
    assert value.startswith("dkl_") and value != people["reader"]
    assert all(part in text for part in ("HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"))
    assert text.endswith("; Secure")  # the test registry is served over HTTPS (PUBLIC_URL)
    page = browser.request("GET", "/ui/").body.decode()
    assert "team/app" in page and "team/secret" not in page and "reader" in page
    repo = browser.request("GET", "/ui/repository?name=team/app")
    assert repo.status_code == 200 and ">v1<" in repo.body.decode()
    hidden = browser.request("GET", "/ui/repository?name=team/secret")
    missing = browser.request("GET", "/ui/repository?name=team/none")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.body.replace(b"team/secret", b"X") == missing.body.replace(b"team/none", b"X")


def test_every_page_carries_the_security_headers(anonymous):
    for path in ("/ui/", "/ui/console.css", "/ui/console.js", "/ui/repository?name=team/app"):
        headers = anonymous.get(path).headers
        assert headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self';"), path
        assert "unsafe" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


def test_a_wrong_token_or_a_missing_csrf_token_signs_nobody_in(anonymous, people, state):
    browser = Browser(anonymous)
    form = browser.request("GET", "/ui/signin")
    before = state()
    wrong = browser.request("POST", "/ui/signin", {"csrf": csrf_field(form.body.decode()), "name": "reader",
                                                   "token": people["nobody"]})
    assert wrong.status_code == 401 and "Wrong name or token." in wrong.body.decode()
    assert "dockless_session" not in set_cookies(wrong)
    forged = browser.request("POST", "/ui/signin", {"csrf": "guessed", "name": "reader", "token": people["reader"]})
    assert forged.status_code == 403 and "dockless_session" not in set_cookies(forged)
    no_cookie = Browser(anonymous).request("POST", "/ui/signin", {"csrf": "x", "name": "reader",
                                                                  "token": people["reader"]})
    assert no_cookie.status_code == 403
    assert state() == before


def test_signing_out_revokes_the_session_and_needs_its_csrf_token(anonymous, people, registry):
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    session = browser.cookies["dockless_session"]
    page = browser.request("GET", "/ui/").body.decode()
    refused = browser.request("POST", "/ui/signout", {"csrf": "not-it"})
    assert refused.status_code == 403
    assert browser.request("GET", "/ui/").body.decode().count("Sign out") == 1  # still signed in
    out = browser.request("POST", "/ui/signout", {"csrf": csrf_field(page)})
    assert out.status_code == 303 and "dockless_session" not in browser.cookies
    credential = Credential.get(session.split("_")[1])
    assert (credential.kind, credential.revoked) == ("session", True)
    replayed = Browser(anonymous)
    replayed.cookies["dockless_session"] = session
    assert "Sign in" in replayed.request("GET", "/ui/").body.decode()


def test_revoking_the_access_token_ends_its_sessions(anonymous, client, people):
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    assert "Sign out" in browser.request("GET", "/ui/").body.decode()
    credential_id = people["reader"].split("_")[1]
    assert client.delete(f"/dockless/admin/v1/tokens/{credential_id}").status_code == 204
    assert "Sign in" in browser.request("GET", "/ui/").body.decode()


def test_what_a_caller_typed_is_shown_inert(anonymous):
    """The sign-in form shows the name again after a failed attempt: escaped, never markup."""
    browser = Browser(anonymous)
    form = browser.request("GET", "/ui/signin")
    evil = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    answer = browser.request("POST", "/ui/signin", {"csrf": csrf_field(form.body.decode()), "name": evil,
                                                    "token": "dkl_nope"})
    body = answer.body.decode()
    assert answer.status_code == 401
    assert "<script>" not in body and "<img" not in body
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"' in body


@pytest.fixture
def writer(client, people):
    """A user who may push to team/app, signed in."""
    client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "writer"}), headers=JSON)
    token = client.post("/dockless/admin/v1/principals/writer/tokens", body="{}", headers=JSON).json_body["token"]
    client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": "team/app", "subject": "user:writer",
                                                             "role": "write"}), headers=JSON)
    return token


def test_a_tag_history_offers_restore_to_those_who_may_push_and_restore_names_both_digests(
        anonymous, client, push, people, writer, clock):
    _, first = push.image("team/app", "prod", layers=[b"one"])
    clock.advance(seconds=1)
    _, second = push.image("team/app", "prod", layers=[b"two"])
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    page = reader.request("GET", "/ui/history?name=team/app&tag=prod").body.decode()
    assert re.findall(r"<td>(push|move|restore)</td>", page) == ["move", "push"]  # newest first
    assert "Restore this" not in page  # the reader may not push
    refused = reader.request("GET", f"/ui/restore?name=team/app&tag=prod&digest={first}")
    assert refused.status_code == 403

    browser = Browser(anonymous)
    browser.sign_in("writer", writer)
    page = browser.request("GET", "/ui/history?name=team/app&tag=prod").body.decode()
    assert page.count("Restore this") == 1  # the manifest it names now is not offered
    confirm = browser.request("GET", f"/ui/restore?name=team/app&tag=prod&digest={first}").body.decode()
    assert f"names <code class=\"digest\">{second}</code> now" in confirm and first in confirm
    assert client.get("/v2/team/app/manifests/prod").headers["Docker-Content-Digest"] == second
    forged = browser.request("POST", "/ui/restore", {"csrf": "x", "name": "team/app", "tag": "prod", "digest": first})
    assert forged.status_code == 403
    assert client.get("/v2/team/app/manifests/prod").headers["Docker-Content-Digest"] == second
    clock.advance(seconds=1)
    done = browser.request("POST", "/ui/restore", {"csrf": csrf_field(confirm), "name": "team/app", "tag": "prod",
                                                   "digest": first})
    assert done.status_code == 303 and done.headers["Location"] == "/ui/history?name=team%2Fapp&tag=prod"
    assert client.get("/v2/team/app/manifests/prod").headers["Docker-Content-Digest"] == first
    after = browser.request("GET", "/ui/history?name=team/app&tag=prod").body.decode()
    assert re.findall(r"<td>(push|move|restore)</td>", after) == ["restore", "move", "push"]
    assert "<td>writer</td>" in after
    unknown = browser.request("POST", "/ui/restore", {"csrf": csrf_field(confirm), "name": "team/app", "tag": "prod",
                                                      "digest": "sha256:" + "0" * 64})
    assert unknown.status_code == 404 and "Not found" in unknown.body.decode()


def test_each_page_reads_a_handful_of_items(anonymous, push, people, writer, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="dockless.request")
    push.image("team/app", "prod")
    browser = Browser(anonymous)
    browser.sign_in("writer", writer)
    reads = {}
    for path in ("/ui/", "/ui/repository?name=team/app", "/ui/history?name=team/app&tag=prod"):
        caplog.clear()
        assert browser.request("GET", path).status_code == 200
        (record,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"]
        calls = record["aws_calls"]
        # A page writes nothing but, once a day, its session's last use.
        assert [c for c in calls if c.endswith(("PutItem", "UpdateItem", "TransactWriteItems"))] in (
            [], ["dynamodb:UpdateItem"]), calls
        reads[path.split("?")[0]] = [c for c in calls if c.endswith(("GetItem", "Query"))]
    # The session (credential, then principal with its parent), the grants, then the page's own.
    session = ["dynamodb:BatchGetItem", "dynamodb:BatchGetItem"]
    assert reads == {
        "/ui/": session + ["dynamodb:Query", "dynamodb:BatchGetItem"],  # the catalog, its grants
        # its grants, its settings, its tags, their scans (and the manifests of the tags not scanned, to
        # tell an index), its namespace's quota and count (total and shards)
        "/ui/repository": session + ["dynamodb:BatchGetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                                     "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchGetItem"],
        "/ui/history": session + ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"],
    }


def test_admins_filter_and_export_the_audit_trail_and_others_are_refused(anonymous, push, people, boss, clock):
    push.image("team/app", "v1")
    clock.advance(seconds=1)
    push.image("team/app", "v2")
    evil = '<script>alert(1)</script>'
    stranger = Browser(anonymous)
    stranger.request("POST", "/ui/signin", {"csrf": csrf_field(stranger.request("GET", "/ui/signin").body.decode()),
                                            "name": evil, "token": "dkl_nope"})
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    assert "/ui/audit" not in reader.request("GET", "/ui/").body.decode()  # not offered
    assert reader.request("GET", "/ui/audit?namespace=team").status_code == 403
    assert reader.request("GET", "/ui/audit.jsonl?namespace=team").status_code == 403

    browser = Browser(anonymous)
    browser.sign_in("boss", boss)
    assert '<a href="/ui/audit">Audit</a>' in browser.request("GET", "/ui/").body.decode()
    page = browser.request("GET", "/ui/audit?namespace=team&action=manifest.push").body.decode()
    assert re.findall(r"<td>(manifest\.\w+)</td>", page) == ["manifest.push", "manifest.push"]
    export = browser.request("GET", "/ui/audit.jsonl?namespace=team&action=manifest.push")
    assert export.headers["Content-Type"] == "application/x-ndjson"
    assert [json.loads(line)["reference"] for line in export.body.decode().splitlines()] == ["v1", "v2"]
    denied = browser.request("GET", "/ui/audit?namespace=_unauthenticated&outcome=denied").body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in denied and evil not in denied
    bad = browser.request("GET", "/ui/audit?namespace=team&since=yesterday")
    assert bad.status_code == 400 and "Refused" in bad.body.decode()


def test_the_audit_page_pages_back_in_time(anonymous, push, boss, clock, monkeypatch):
    from chalicelib import console
    monkeypatch.setattr(console, "AUDIT_PAGE_EVENTS", 1)
    push.image("team/app", "v1")
    clock.advance(seconds=1)
    push.image("team/app", "v2")
    browser = Browser(anonymous)
    browser.sign_in("boss", boss)
    newest = browser.request("GET", "/ui/audit?namespace=team&action=manifest.push").body.decode()
    assert re.findall(r"<td>(v\d)</td>", newest) == ["v2"]
    older = re.search(r'<a href="(/ui/audit\?[^"]+)">Older events</a>', newest).group(1).replace("&amp;", "&")
    page = browser.request("GET", older).body.decode()
    assert re.findall(r"<td>(v\d)</td>", page) == ["v1"] and "Older events" not in page


def test_an_admin_manages_people_tokens_teams_and_grants_in_the_console(anonymous, push, boss):
    push.image("crew/app", "v1")
    admin = Browser(anonymous)
    admin.sign_in("boss", boss)
    page = admin.request("GET", "/ui/people").body.decode()
    csrf = csrf_field(page)
    for name, kind in (("carol", "user"), ("crew-readers", "team")):
        added = admin.request("POST", "/ui/people", {"csrf": csrf, "name": name, "kind": kind})
        assert added.status_code == 303 and added.headers["Location"] == f"/ui/principal?name={name}"
    created = admin.request("POST", "/ui/tokens", {"csrf": csrf, "principal": "carol", "description": "laptop",
                                                   "expires_days": "30"}).body.decode()
    token = re.search(r'<code class="secret" id="token">(dkl_[^<]+)</code>', created).group(1)
    carol_page = admin.request("GET", "/ui/principal?name=carol").body.decode()
    assert "laptop" in carol_page and token not in carol_page  # listed, never shown again
    assert admin.request("POST", "/ui/members", {"csrf": csrf, "team": "crew-readers", "member": "carol",
                                                 "present": "1"}).status_code == 303
    assert "<li>carol" in admin.request("GET", "/ui/principal?name=crew-readers").body.decode()
    assert admin.request("POST", "/ui/grants", {"csrf": csrf, "resource": "crew", "subject": "team:crew-readers",
                                                "role": "read"}).status_code == 303
    assert "<td>team:crew-readers</td><td>read</td>" in admin.request("GET", "/ui/grants?resource=crew").body.decode()

    carol = Browser(anonymous)
    assert carol.sign_in("carol", token).status_code == 303
    assert "crew/app" in carol.request("GET", "/ui/").body.decode()  # through the team's grant
    assert carol.request("GET", "/ui/people").status_code == 403  # a user made in the console is no admin
    credential_id = token.split("_")[1]
    assert admin.request("POST", "/ui/tokens/revoke", {"csrf": csrf, "principal": "carol",
                                                       "id": credential_id}).status_code == 303
    assert "Sign in" in carol.request("GET", "/ui/").body.decode()  # the session went with its token
    assert Browser(anonymous).sign_in("carol", token).status_code == 401


def test_people_pages_refuse_non_admins_and_forms_without_their_csrf_token(anonymous, people, boss, state):
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    admin = Browser(anonymous)
    admin.sign_in("boss", boss)
    before = state()
    for path in ("/ui/people", "/ui/principal?name=reader", "/ui/grants?resource=team"):
        assert reader.request("GET", path).status_code == 403, path
    reader_csrf = csrf_field(reader.request("GET", "/ui/").body.decode())
    attempts = [("/ui/people", {"name": "mallory", "kind": "user"}),
                ("/ui/tokens", {"principal": "reader"}),
                ("/ui/members", {"team": "x", "member": "reader", "present": "1"}),
                ("/ui/grants", {"resource": "team", "subject": "user:reader", "role": "admin"})]
    for path, form in attempts:
        assert reader.request("POST", path, {"csrf": reader_csrf, **form}).status_code == 403, path
        assert admin.request("POST", path, form).status_code == 403, path  # no CSRF token
        assert admin.request("POST", path, {"csrf": reader_csrf, **form}).status_code == 403, path
    assert state() == before


def test_a_tag_page_shows_cosign_signatures_with_their_key_and_verdict(anonymous, client, push, people, registry):
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.api.test_cosign import payload, pem, push_signatures, sign_bytes
    from tests.api.test_verified import HOST
    _, digest = push.image("team/app", "v1")
    trusted, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    (key,) = json.loads(client.put("/dockless/admin/v1/keys/team", body=pem(trusted),
                                   headers={"Content-Type": "text/plain"}).body)["keys"]
    signed = payload(digest, f"{HOST}/team/app")
    push_signatures(push, "team/app", digest, (signed, sign_bytes(trusted, signed)), (signed, sign_bytes(stranger, signed)))
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/tag?name=team/app&tag=v1").body.decode()
    rows = re.findall(r"<tr>\s*<td>cosign</td>\s*<td><code>([^<]+)</code></td>\s*<td><span class=\"badge (\w+)\">"
                      r"[^<]*</span></td>\s*<td>([^<]*)</td>", page)
    assert sorted(rows) == sorted([(key["fingerprint"], "trusted", f"{HOST}/team/app"),
                                   ("no trusted key", "untrusted", f"{HOST}/team/app")])


def test_a_tag_page_shows_its_manifest_and_which_signatures_a_trusted_key_vouches_for(anonymous, client, push,
                                                                                      people, registry):
    from chalicelib.signing.service import SigningService
    from chalicelib.oci.sizes import human
    from tests.api.test_verified import HOST, foreign_signature, signature_document
    body, digest = push.image("team/app", "v1", layers=(b"a" * 2048, b"b" * 1024))
    trusted_fpr, trusted_key, good = foreign_signature(digest, f"{HOST}/team/app:v1")
    _, _, stranger = foreign_signature(digest, f"{HOST}/team/app:v1")
    for name, content in (("good", good), ("stranger", stranger)):
        assert client.put(f"/extensions/v2/team/app/signatures/{digest}", body=signature_document(digest, content, name),
                          headers=JSON).status_code == 201
    SigningService(registry).add_keys("team", trusted_key)
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/tag?name=team/app&tag=v1").body.decode()
    config = json.loads(body)["config"]["size"]
    assert f'<code class="digest">{digest}</code>' in page
    assert f"<dd>{human(2048 + 1024 + config)}</dd>" in page
    assert "<dd>linux/amd64</dd>" in page and "by admin," in page
    grouped = " ".join(trusted_fpr[i:i + 4] for i in range(0, 20, 4)) + "  " + \
        " ".join(trusted_fpr[i:i + 4] for i in range(20, 40, 4))
    rows = dict(re.findall(r"<tr>\s*<td>OpenPGP</td>\s*<td><code>([^<]+)</code></td>\s*<td><span class=\"badge (\w+)\">",
                           page))
    assert sorted(rows.values()) == ["trusted", "untrusted"] and rows[grouped] == "trusted"
    missing = browser.request("GET", "/ui/tag?name=team/app&tag=nope")
    assert missing.status_code == 404 and "team/app:nope names no manifest" in missing.body.decode()


def test_the_diff_page_shows_config_and_layer_changes_and_labels_inert(anonymous, push, people):
    push.image("team/app", "v1", layers=(b"base", b"old"))
    evil = '<script>alert(1)</script>"onerror=alert(1)'
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"note": evil}}}).encode()
    pusher = push
    config_descriptor = dict(pusher.blob("team/app", config), mediaType="application/vnd.oci.image.config.v1+json")
    layers = [dict(pusher.blob("team/app", data), mediaType="application/vnd.oci.image.layer.v1.tar")
              for data in (b"base", b"new")]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_descriptor, "layers": layers}).encode()
    assert pusher.manifest("team/app", "v2", manifest).status_code == 201
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/diff?name=team/app&from=v1&to=v2").body.decode()
    assert "<td>labels note</td>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onerror=alert(1)" in page
    assert page.count("<li>+ ") == 1 and page.count("<li>− ") == 1 and "<li>1 shared</li>" in page
    assert "dockless diff team/app:v1 team/app:v2" in page


def test_keys_are_listed_for_all_and_admins_trust_and_remove_them(anonymous, people, boss, state):
    from tests.api.test_verified import foreign_signature
    fingerprint, public, _ = foreign_signature("sha256:" + "0" * 64, "x")
    admin = Browser(anonymous)
    admin.sign_in("boss", boss)
    csrf = csrf_field(admin.request("GET", "/ui/keys?namespace=team").body.decode())
    added = admin.request("POST", "/ui/keys", {"csrf": csrf, "namespace": "team", "armored": public}).body.decode()
    grouped = " ".join(fingerprint[i:i + 4] for i in range(0, 20, 4)) + "  " + \
        " ".join(fingerprint[i:i + 4] for i in range(20, 40, 4))
    assert f"<code>{grouped}</code>" in added and "Later Trusted" in added
    assert "curl -fsS https://registry.example.test/keys/team/KEYS | gpg --import" in added
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    page = reader.request("GET", "/ui/keys?namespace=team").body.decode()
    assert grouped in page and "Trust a key" not in page and "/ui/keys/remove" not in page
    before = state()
    reader_csrf = csrf_field(page)
    assert reader.request("POST", "/ui/keys/remove", {"csrf": reader_csrf, "namespace": "team",
                                                      "fingerprint": fingerprint}).status_code == 403
    assert state() == before
    assert admin.request("POST", "/ui/keys/remove", {"csrf": csrf, "namespace": "team",
                                                     "fingerprint": fingerprint}).status_code == 303
    assert "No keys are trusted for team." in admin.request("GET", "/ui/keys?namespace=team").body.decode()
    bad = admin.request("POST", "/ui/keys", {"csrf": csrf, "namespace": "team", "armored": "not a key"})
    assert bad.status_code == 400 and "Refused" in bad.body.decode()


def test_admins_see_usage_quota_use_cost_and_a_chart_of_each_day(anonymous, client, push, people, boss, clock):
    push.image("team/app", "v1", layers=(b"x" * 4000,))
    client.get("/v2/team/app/manifests/v1")
    client.put("/dockless/admin/v1/quotas/team", body=json.dumps({"bytes": 5000}), headers=JSON)
    admin = Browser(anonymous)
    admin.sign_in("boss", boss)
    page = admin.request("GET", "/ui/usage?namespace=team").body.decode()
    stored = client.get("/dockless/admin/v1/quotas/team").json_body["stored_bytes"]
    percent = round(stored * 100 / 5000, 1)
    assert f'aria-label="{percent} % of the quota"' in page and "<td>4.9 KiB</td>" in page
    assert re.search(r"<td>team/app</td><td>[^<]+</td>", page)
    assert re.search(r"<td>1</td><td>1</td><td>0\.\d{4}</td>", page)  # one push, one pull, dollars
    assert page.count("pulls</title>") == 31 and "1 pulls</title>" in page  # the default 30 days and today
    assert page.count("<script") == 1 and '<script src="/ui/console.js" defer></script>' in page  # its own file only
    reader = Browser(anonymous)
    reader.sign_in("reader", people["reader"])
    assert reader.request("GET", "/ui/usage").status_code == 403


def test_a_repository_page_says_which_settings_apply_who_set_them_and_its_quota(anonymous, client, push, people):
    push.image("team/app", "v1")
    assert client.put("/dockless/admin/v1/settings", body=json.dumps(
        {"resource": "team", "immutable_tags": ["v*"], "retention": {"keep_last": 5, "exempt": ["prod"]}}),
        headers=JSON).status_code == 200
    client.put("/dockless/admin/v1/quotas/team", body=json.dumps({"bytes": 10 * 1024 ** 3}), headers=JSON)
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/repository?name=team/app").body.decode()
    assert re.search(r"<dd>v\* <span class=\"hint\">\(set on team by admin, \d{4}-\d\d-\d\d\)</span></dd>", page)
    assert "<dd>keep last 5; exempt prod <span" in page
    assert "stored of 10 GiB</dd>" in page
    assert '<span class="badge">immutable</span>' in page  # v1 matches v*


def test_a_cache_namespaces_repository_page_says_what_it_caches(anonymous, client, push, people):
    push.image("team/app", "v1")
    assert client.put("/dockless/admin/v1/caches/team", body=json.dumps(
        {"url": "https://registry.example.com", "freshness_seconds": 600}), headers=JSON).status_code == 200
    browser = Browser(anonymous)
    browser.request("GET", "/ui/")
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/repository?name=team/app").body.decode()
    assert "<dt>Pull-through cache of</dt><dd>https://registry.example.com: tags checked again after 600 s; " \
           "no pushes <span class=\"hint\">(set on team by admin," in page


@pytest.mark.parametrize("config, row", [
    ({"config": "notadict"}, None),
    ({"config": {"Labels": ["a"]}}, "labels a"),
    ({"config": {"Labels": "tier=web"}}, "labels tier"),
    ({"config": {"Env": "A=1"}}, "env A"),
    ({"config": {"Env": {"A": 1}}}, "env A"),
    ({"config": {"ExposedPorts": ["80/tcp"]}}, "exposed_ports 80/tcp"),
    ({"config": {"Cmd": {"not": "a list"}}}, "cmd"),
    ({"history": "made by hand"}, "history"),
    ({"history": [7, {"created_by": ["RUN", "x"]}]}, "history"),
    ({"os": ["linux"], "architecture": {"x": 1}}, None),
    ({"config": None, "created": {"when": "now"}}, "created"),
])
def test_a_config_of_any_json_shape_is_compared_as_data(anonymous, client, push, people, config, row):
    """A config is what its pusher wrote: fields of unexpected types are differences to show, not
    a 500 (the API's diff and the console's diff page)."""
    push.image("team/app", "v1", layers=(b"base",))
    document = json.dumps({"architecture": "amd64", "os": "linux", **config}).encode()
    descriptor = dict(push.blob("team/app", document), mediaType="application/vnd.oci.image.config.v1+json")
    layer = dict(push.blob("team/app", b"base"), mediaType="application/vnd.oci.image.layer.v1.tar")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptor, "layers": [layer]}).encode()
    assert push.manifest("team/app", "odd", manifest).status_code == 201
    answer = client.get("/dockless/v1/team/app/diff?from=v1&to=odd")
    assert answer.status_code == 200, answer.body
    (platform,) = answer.json_body["platforms"]
    assert platform["layers"]["shared"] and not platform["layers"]["added"]
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/diff?name=team/app&from=v1&to=odd")
    assert page.status_code == 200, page.body
    if row is not None:
        assert f"<td>{row}</td>" in page.body.decode()


def throttled_attempts(browser, name, token, count):
    statuses = []
    for _ in range(count):
        form = browser.request("GET", "/ui/")
        statuses.append(browser.request("POST", "/ui/signin", {"csrf": csrf_field(form.body.decode()), "name": name,
                                                               "token": token}))
    return statuses


def test_failed_sign_ins_are_throttled_per_principal_with_retry_after_and_audited_once(anonymous, people, clock,
                                                                                      registry):
    from chalicelib.metadata.models import AuditEvent
    browser = Browser(anonymous)
    answers = throttled_attempts(browser, "reader", people["nobody"], spec.SIGNIN_FAILURES_PER_PRINCIPAL + 3)
    assert [a.status_code for a in answers] == [401] * spec.SIGNIN_FAILURES_PER_PRINCIPAL + [429] * 3
    assert answers[-1].headers["Retry-After"] == str(spec.SIGNIN_WINDOW_SECONDS + 1)
    assert "Too many failed sign-ins: try again in 16 minutes." in answers[-1].body.decode()
    # The right token is refused too while the window runs, and signs nobody in.
    (right,) = throttled_attempts(browser, "reader", people["reader"], 1)
    assert right.status_code == 429 and "dockless_session" not in set_cookies(right)
    # Another principal is not held up by the reader's failures.
    assert Browser(anonymous).sign_in("nobody", people["nobody"]).status_code == 303
    throttled = [e for e in AuditEvent.scan() if e.action == "console.signin.throttled"]
    assert [(e.actor, json.loads(e.detail)["subject"]) for e in throttled] == [("reader", "user:reader")]
    assert len([e for e in AuditEvent.scan() if e.action == "console.signin" and e.outcome == "denied"]) == \
        spec.SIGNIN_FAILURES_PER_PRINCIPAL
    # When the window ends the right token signs in, and the count starts again.
    clock.advance(seconds=spec.SIGNIN_WINDOW_SECONDS)
    assert Browser(anonymous).sign_in("reader", people["reader"]).status_code == 303
    assert [a.status_code for a in throttled_attempts(browser, "reader", people["nobody"], 2)] == [401, 401]


def test_failed_sign_ins_are_throttled_per_client_address_whatever_the_names(anonymous, people):
    browser = Browser(anonymous)
    for number in range(spec.SIGNIN_FAILURES_PER_ADDRESS):
        (answer,) = throttled_attempts(browser, f"guess{number % 5}", "dkl_wrong", 1)
        assert answer.status_code == 401
    (refused,) = throttled_attempts(browser, "reader", people["reader"], 1)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_a_tag_page_shows_each_platforms_config_layers_and_referrers_as_inert_text(anonymous, client, push, people):
    """What a person opens a tag for, as Harbor and Quay show it: an index's platforms, each
    image's config (created, author, entrypoint, cmd, env, ports, labels), its layers with their
    sizes and the command that made each, and the artifacts that refer to it. A label holding
    markup shows as those characters."""
    from tests.api.test_history import image
    evil = "<img src=x onerror=alert(7)>"
    amd = image(push, "team/app", None, layers=[b"base" * 100, b"app" * 50], Env=["PATH=/bin", "MODE=prod"],
                Entrypoint=["/app"], Cmd=["--serve"], ExposedPorts={"8080/tcp": {}}, Labels={"note": evil})
    arm = image(push, "team/app", None, layers=[b"arm" * 10], platform=("linux", "arm64"))
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
         "size": len(client.get(f"/v2/team/app/manifests/{digest}").body), "platform": platform}
        for digest, platform in ((amd, {"os": "linux", "architecture": "amd64"}),
                                 (arm, {"os": "linux", "architecture": "arm64"}))]}).encode()
    assert push.manifest("team/app", "multi", index).status_code == 201
    empty = dict(push.blob("team/app", b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    sbom = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "artifactType": "application/vnd.cyclonedx+json", "config": empty, "layers": [],
                       "subject": {"mediaType": "application/vnd.oci.image.index.v1+json",
                                   "digest": digest_of(index), "size": len(index)}}).encode()
    assert push.manifest("team/app", digest_of(sbom), sbom).status_code == 201
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/tag?name=team/app&tag=multi").body.decode()
    assert f'<h2>linux/amd64 <code class="digest">{amd}</code></h2>' in page
    assert f'<h2>linux/arm64 <code class="digest">{arm}</code></h2>' in page
    assert "<dd>2026-01-01T00:00:00Z</dd>" in page
    assert "<code>[&#34;/app&#34;]</code>" in page or '<code>["/app"]</code>' in page
    assert "<li><code>PATH=/bin</code></li>" in page and "<li><code>MODE=prod</code></li>" in page
    assert "<dd>8080/tcp</dd>" in page
    assert "<td>note</td><td>&lt;img src=x onerror=alert(7)&gt;</td>" in page and evil not in page
    layers = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td><code>([^<]+)</code></td>", page)
    assert layers == [("1", "400 B", "ADD layer 0"), ("2", "150 B", "ADD layer 1"), ("1", "30 B", "ADD layer 0")]
    assert f"<td>application/vnd.cyclonedx+json</td><td>{len(b'{}')} B</td>" not in page  # the manifest's size
    assert f'<td>application/vnd.cyclonedx+json</td><td>{len(sbom)} B</td><td><code class="digest">' \
           f"{digest_of(sbom)}</code>" in page


def test_a_tag_page_says_why_an_image_is_not_shown(anonymous, client, push, people):
    """An index whose child this repository does not hold (what a cache has not fetched yet)."""
    from tests.api.test_history import image
    amd = image(push, "team/other", None, layers=[b"elsewhere"])
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    from chalicelib.backend import backend
    from chalicelib.oci.formats import parse_manifest
    from chalicelib.registry.manifests import ManifestService
    ManifestService(backend()).store_cached("team/app", "cached", parse_manifest(index, None), index, None,
                                            upstream="https://registry.example.com", requested_by="reader")
    browser = Browser(anonymous)
    browser.sign_in("reader", people["reader"])
    page = browser.request("GET", "/ui/tag?name=team/app&tag=cached")
    assert page.status_code == 200, page.body
    assert f'<h2>linux/amd64 <code class="digest">{amd}</code></h2>\n\n<p>Not shown: ' in page.body.decode()


# What each kind of console caller is answered on a page whose action it lacks (None: allowed).
CONSOLE_REFUSALS = {
    "authenticated": {"reader": None, "writer": None, "nobody": None, "boss": None},
    PULL: {"reader": None, "writer": None, "nobody": 404, "boss": None},
    PUSH: {"reader": 403, "writer": None, "nobody": 404, "boss": None},
    "admin": {"reader": 403, "writer": 403, "nobody": 403, "boss": None},
}


def console_request(route, digest: str):
    """A request for a console route about team/app:v1, its form filled in as its page would."""
    fields = {"name": "team/app", "tag": "v1", "digest": digest, "namespace": "team", "resource": "team",
              "principal": "nobody", "kind": "user", "team": "devs", "member": "nobody", "subject": "user:nobody",
              "role": "read", "id": "0123456789abcdef", "fingerprint": "A" * 40, "armored": "x"}
    if route.method == "GET":
        return route.path + "?" + urlencode(fields), None
    return route.path, fields


@pytest.mark.parametrize("who", ["anonymous", "revoked", "expired", "forged", "reader", "writer", "nobody", "boss"])
def test_every_console_page_goes_through_the_one_access_decision(anonymous, client, push, people, writer, boss,
                                                                 clock, state, who):
    """Each console route answers each kind of caller as its action says, through a session; a
    refused one changes nothing. Signed out, expired, revoked or forged: the sign-in form (401)."""
    from chalicelib.routes.table import ROUTES
    _, digest = push.image("team/app", "v1")
    browser = Browser(anonymous)
    tokens = {**people, "writer": writer, "boss": boss}
    if who in ("revoked", "expired"):
        browser.sign_in("reader", people["reader"])
    elif who == "forged":
        browser.cookies["dockless_session"] = "dkl_0123456789abcdef_" + "A" * 43
    elif who != "anonymous":
        browser.sign_in(who, tokens[who])
    csrf = csrf_field(browser.request("GET", "/ui/").body.decode()) if who in tokens else "x"
    if who == "revoked":
        Credential.get(browser.cookies["dockless_session"].split("_")[1]).update(
            actions=[Credential.revoked.set(True)])
    elif who == "expired":
        clock.advance(seconds=8 * 3600 + 1)
    pages = [r for r in ROUTES if r.door == "console" and r.action != "open" and r.path != "/ui/signout"]
    assert len(pages) == 22
    for route in pages:
        path, form = console_request(route, digest)
        before = state()
        answer = browser.request(route.method, path, None if form is None else {"csrf": csrf, **form})
        expected = CONSOLE_REFUSALS[route.action].get(who, 401)
        body = answer.body.decode()
        if expected is None:
            assert answer.status_code not in (401, 403), (route.path, answer.status_code, body)
            continue
        assert answer.status_code == expected, (route.path, who, answer.status_code)
        assert answer.headers["Content-Type"].startswith("text/html") and "WWW-Authenticate" not in answer.headers
        assert ("Sign in to see this page." if expected == 401 else "Sign out") in body, route.path
        assert state() == before, route.path
