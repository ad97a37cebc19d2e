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

    context = chromium.new_context()
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
    shoot(page, tmp_path, "console-repository")
    # The stylesheet loaded under the page's own policy; nothing was refused, no script ran.
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    page.get_by_role("link", name="1.0").click()
    expect(page).to_have_title("webteam/app:1.0 · dockless")
    expect(page.get_by_text("Not signed.")).to_be_visible()
    assert digest in page.locator("dl").inner_text()
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
