"""The web console in Debian's chromium (Playwright), against `dockless serve` with an image docker
pushed: sign in as a pull-only user, browse to the tag, see only what the user may pull, sign
out; no script ever runs. Screenshots go to the test's directory (DOCKLESS_SCREENSHOTS=DIR keeps
them, as docs/ does)."""
import os
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.images import dockerfile_context, pushed_digest


def shoot(page, tmp_path, name):
    target = Path(os.environ.get("DOCKLESS_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)


def test_a_pull_only_user_signs_in_browses_to_a_tag_and_signs_out(stack, docker, dockless, chromium, tmp_path):
    image = f"{stack.host}/webteam/app:1.0"
    dockerfile_context(tmp_path / "ctx", [30_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    digest = pushed_digest(docker("push", image).stdout)
    docker("tag", image, f"{stack.host}/webhidden/app:1.0")
    docker("push", f"{stack.host}/webhidden/app:1.0")
    dockless("user", "create", "webreader")
    token = dockless("token", "create", "webreader").stdout.strip()
    dockless("grant", "read", "webteam", "user:webreader")

    context = chromium.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    dialogs, failed = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # Refused or broken requests; one a navigation cut short (net::ERR_ABORTED) is neither.
    page.on("requestfailed", lambda request: request.failure == "net::ERR_ABORTED" or failed.append(request.url))
    page.goto(f"{stack.url}/ui/")
    expect(page).to_have_title("Sign in · dockless")
    shoot(page, tmp_path, "console-signin")
    page.get_by_label("User or robot").fill("webreader")
    page.get_by_label("Access token").fill("dkl_0000000000000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong name or token.")

    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Repositories · dockless")
    assert page.get_by_role("heading", name="webteam").is_visible()
    assert page.get_by_role("link", name="webteam/app").is_visible()
    assert "webhidden" not in page.content()
    cookie = next(c for c in context.cookies() if c["name"] == "dockless_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    shoot(page, tmp_path, "console-repositories")

    page.get_by_role("link", name="webteam/app").click()
    expect(page).to_have_title("webteam/app · dockless")
    row = page.get_by_role("row", name=re.compile(r"1\.0"))
    assert digest in row.inner_text()
    row.get_by_role("button", name=f"Copy {digest}").click()  # the console's one script
    expect(row.get_by_role("button", name=f"Copy {digest}")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == digest
    shoot(page, tmp_path, "console-repository")
    # The stylesheet loaded under the page's own policy; nothing was refused, no script ran.
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    page.get_by_role("link", name="1.0").click()
    expect(page).to_have_title("webteam/app:1.0 · dockless")
    expect(page.get_by_text("Not signed.")).to_be_visible()
    assert digest in page.locator("dl").first.inner_text()
    # What docker's config says, and the command that made each layer (CMD made none).
    expect(page.get_by_role("heading", name=f"linux/amd64 {digest}")).to_be_visible()
    assert '["/f0.bin"]' in page.locator("dl").nth(1).inner_text()
    (layer,) = page.get_by_role("row", name=re.compile(r"COPY file:\w+ in .f0\.bin")).all()
    number, size = layer.inner_text().split("\t")[:2]
    assert number == "1" and re.fullmatch(r"(29|30)\.\d KiB", size), size  # 30,000 random bytes, gzipped tar
    # Asking for the tag's page queues its scan (the shared stack scans on demand): once it is done
    # (its SBOM referrer is stored a moment before its findings), nothing known affects the image.
    for _ in range(150):
        if "none found" in page.content():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.get_by_role("row", name=re.compile("cyclonedx"))).to_be_visible()
    expect(page.get_by_text("none found")).to_be_visible()
    shoot(page, tmp_path, "console-tag")
    page.get_by_role("link", name="History of this tag").click()
    expect(page).to_have_title("webteam/app:1.0 history · dockless")
    assert page.get_by_role("row", name=re.compile("push")).inner_text().split("\t")[1:4] == ["push", "admin", ""]
    assert page.get_by_role("link", name="Restore this").count() == 0  # pull only
    shoot(page, tmp_path, "console-history")

    page.goto(f"{stack.url}/ui/repository?name=webhidden/app")
    expect(page).to_have_title("Not found · dockless")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_title("Sign in · dockless")
    assert not [c for c in context.cookies() if c["name"] == "dockless_session"]
    page.goto(f"{stack.url}/ui/repository?name=webteam/app")
    expect(page).to_have_title("Sign in · dockless")
    assert dialogs == [] and failed == []
    context.close()


def test_an_admin_runs_the_day_in_the_browser_and_nothing_pushed_runs_as_script(stack, docker, dockless, chromium,
                                                                                tmp_path):
    evil = '<script>alert(1)</script>"onerror=alert(1)'
    dockless("repo", "set", "webadmin", "--auto-sign")  # the registry signs each tag push
    digests = []
    for number, note in enumerate(("first", evil)):
        image = f"{stack.host}/webadmin/app:prod"
        context = tmp_path / f"ctx{number}"
        dockerfile_context(context, [10_000], extra=f"LABEL note={json_quoted(note)}")
        docker("build", "-q", "-t", image, str(context))
        digests.append(pushed_digest(docker("push", image).stdout))
    dockless("user", "create", "webpull")
    pull_token = dockless("token", "create", "webpull").stdout.strip()
    dockless("grant", "read", "webadmin", "user:webpull")

    context = chromium.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, stack, "admin", stack.admin_token)

    # The tag, signed by the registry's key, which the namespace trusts through automatic signing.
    page.goto(f"{stack.url}/ui/tag?name=webadmin/app&tag=prod")
    for signed_as in ("OpenPGP", "cosign "):  # the registry signs in both formats
        expect(page.get_by_role("row", name=re.compile(f"^{signed_as}"))).to_contain_text("trusted")
    shoot(page, tmp_path, "console-tag-signed")
    # The diff of the two pushes shows the label as text.
    page.get_by_label("Compare with (tag or digest)").fill(digests[0])
    page.get_by_role("button", name="Diff").click()
    expect(page.get_by_role("row", name=re.compile("labels note"))).to_contain_text(evil)
    shoot(page, tmp_path, "console-diff")
    # Restore prod to the first push, through the confirmation that names both digests.
    page.goto(f"{stack.url}/ui/history?name=webadmin/app&tag=prod")
    page.get_by_role("link", name="Restore this").click()
    expect(page.get_by_role("main")).to_contain_text(digests[1])
    expect(page.get_by_role("main")).to_contain_text(digests[0])
    page.get_by_role("button", name="Restore").click()
    expect(page.get_by_role("row", name=re.compile("^.*restore"))).to_contain_text(digests[0])
    assert dockless("history", "webadmin/app:prod", "--json", "-n", "1").stdout.count(digests[0]) >= 1

    # People: a user, a token shown once, then revoked; a team with the user, granted pull.
    page.get_by_role("link", name="People").click()
    page.get_by_label("Name", exact=True).fill("webcarol")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page).to_have_title("webcarol · dockless")
    page.get_by_label("Description").fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    token = page.locator("#token").inner_text()
    assert token.startswith("dkl_")
    page.get_by_role("link", name="Back to webcarol").click()
    page.get_by_role("button", name=re.compile("Revoke")).first.click()
    expect(page.get_by_role("row", name=re.compile("laptop"))).to_contain_text("revoked")
    page.goto(f"{stack.url}/ui/people")
    page.get_by_label("Name", exact=True).fill("webcrew")
    page.get_by_label("Kind").select_option("team")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("User or robot").fill("webcarol")
    page.get_by_role("button", name="Add to webcrew").click()
    expect(page.get_by_role("main")).to_contain_text("webcarol")
    page.goto(f"{stack.url}/ui/grants?resource=webadmin")
    page.get_by_label("Subject (user:NAME, team:NAME or *)").fill("team:webcrew")
    page.get_by_role("button", name="Grant", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("team:webcrew"))).to_contain_text("read")
    shoot(page, tmp_path, "console-grants")
    page.goto(f"{stack.url}/ui/usage?namespace=webadmin")
    expect(page.get_by_role("heading", name="Pushes and pulls per day")).to_be_visible()
    shoot(page, tmp_path, "console-usage")
    # The audit trail, filtered.
    page.goto(f"{stack.url}/ui/audit")
    page.get_by_label("Namespace").fill("webadmin")
    page.get_by_label("Action").fill("tag.restore")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row", name=re.compile("tag.restore"))).to_contain_text("admin")
    shoot(page, tmp_path, "console-audit")
    # A form posted without its CSRF token changes nothing.
    refused = page.request.post(f"{stack.url}/ui/people", form={"name": "mallory", "kind": "user"})
    assert refused.status == 403
    assert "mallory" not in dockless("user", "list").stdout

    # A pull-only user is offered no admin page and is refused at its URL.
    reader = chromium.new_context().new_page()
    reader.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(reader, stack, "webpull", pull_token)
    assert reader.get_by_role("link", name="People").count() == 0
    for path in ("/ui/people", "/ui/audit", "/ui/usage"):
        reader.goto(f"{stack.url}{path}")
        expect(reader).to_have_title("Refused · dockless")
    reader.goto(f"{stack.url}/ui/diff?name=webadmin/app&from=prod&to={digests[1]}")
    expect(reader.get_by_role("row", name=re.compile("labels note"))).to_contain_text(evil)
    assert dialogs == []
    context.close()


def json_quoted(text: str) -> str:
    import json
    return json.dumps(text)


def sign_in(page, stack, name, token):
    page.goto(f"{stack.url}/ui/")
    page.get_by_label("User or robot").fill(name)
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Repositories · dockless")


def test_a_person_signs_in_with_single_sign_on(stack, docker, dockless, chromium, identity_provider, tmp_path):
    """The company's identity provider (tests/oidc.py, the stack's SSO_TEAM mapping): the sign-in
    page's link, the provider's page, back to the console signed in as the person with their
    team's grants; their session is the console's strict cookie; someone the provider does not
    know gets no session."""
    from tests.e2e.conftest import pushed_for_sso_team
    pushed_for_sso_team(docker, dockless, tmp_path, f"{stack.host}/ssoweb/app:1.0")

    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"http://{stack.host}/ui/")  # the public URL: the provider sends the person back there
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page.get_by_role("heading", name="Acme identity")).to_be_visible()
    page.get_by_label("User").fill("mallory")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The identity provider did not sign you in (access_denied).")
    assert not [c for c in context.cookies() if c["name"] == "dockless_session"]

    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.get_by_label("User").fill("carol")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Repositories · dockless")  # the signed-in page moved on by itself
    assert page.get_by_role("link", name="ssoweb/app").is_visible()
    assert page.locator(".who").inner_text() == "carol"
    assert "People" not in page.get_by_role("navigation", name="Pages").inner_text()  # no admin through SSO
    cookie = next(c for c in context.cookies() if c["name"] == "dockless_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert not [c for c in context.cookies() if c["name"] == "dockless_sso"]
    shoot(page, tmp_path, "console-sso")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_title("Sign in · dockless")
    context.close()
