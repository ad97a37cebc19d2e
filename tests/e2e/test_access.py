"""Access control as a platform team uses it: the admin CLI creates users and robots and grants
roles; docker, skopeo and the token endpoint then behave accordingly."""
import json
import os
import sys

from chalicelib.lifecycle import prices
from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import dockerfile_context


def test_admin_cli_users_robots_grants_and_docker(stack, docker, dockerd, skopeo, tmp_path):
    config = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}

    def dockless(*args, check=True, input=None):
        return run(sys.executable, "-m", "dockless.cli", *args, env=config, check=check, input=input)

    assert "logged in" in dockless("login", stack.url, "-u", "admin", "--password-stdin",
                                   input=stack.admin_token).stdout
    assert oct(os.stat(tmp_path / "logins.json").st_mode & 0o777) == "0o600"
    assert stack.admin_token not in (tmp_path / "logins.json").read_text()  # a refresh token instead
    dockless("user", "create", "alice")
    dockless("robot", "create", "deployer")
    dockless("team", "create", "readers")
    dockless("team", "add", "readers", "deployer")
    alice = dockless("token", "create", "alice", "--description", "laptop").stdout.strip()
    robot = dockless("token", "create", "deployer", "--expires-days", "30").stdout.strip()
    dockless("grant", "write", "acme", "user:alice")
    dockless("grant", "read", "acme", "team:readers")
    assert "deployer" in dockless("team", "list").stdout

    def as_user(name, secret):
        env = {**dockerd, "DOCKER_CONFIG": str(tmp_path / f"docker-{name}")}
        run(DOCKER, "login", stack.host, "-u", name, "--password-stdin", env=env, input=secret)
        return lambda *args, check=True: run(DOCKER, *args, env=env, check=check)

    image = f"{stack.host}/acme/app:1"
    dockerfile_context(tmp_path / "ctx", [20_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    alice_docker = as_user("alice", alice)
    alice_docker("push", image)
    docker("tag", image, f"{stack.host}/other/app:1")
    refused = alice_docker("push", f"{stack.host}/other/app:1", check=False)
    assert refused.returncode != 0
    assert "denied: requested access to the resource is denied" in refused.stderr

    robot_docker = as_user("deployer", robot)
    docker("rmi", image)
    robot_docker("pull", image)
    docker("tag", image, f"{stack.host}/acme/app:robot")
    denied = robot_docker("push", f"{stack.host}/acme/app:robot", check=False)
    assert denied.returncode != 0 and "denied" in denied.stderr

    # Public for anonymous pull, then private again.
    anonymous = {**dockerd, "DOCKER_CONFIG": str(tmp_path / "docker-anonymous")}
    docker("rmi", image)
    assert run(DOCKER, "pull", image, env=anonymous, check=False).returncode != 0
    dockless("repo", "visibility", "acme/app", "public")
    run(DOCKER, "pull", image, env=anonymous)
    dockless("repo", "visibility", "acme/app", "private")
    run(DOCKER, "rmi", image, env=anonymous)
    assert run(DOCKER, "pull", image, env=anonymous, check=False).returncode != 0

    # skopeo with --creds, and a revoked token that stops working at the token endpoint.
    listed = skopeo("list-tags", "--tls-verify=false", "--creds", f"alice:{alice}",
                    f"docker://{stack.host}/acme/app").stdout
    assert '"1"' in listed
    token_id = next(line.split()[0] for line in dockless("token", "list", "alice").stdout.splitlines())
    dockless("token", "revoke", token_id)
    relogin = run(DOCKER, "login", stack.host, "-u", "alice", "--password-stdin", input=alice, check=False,
                  env={**dockerd, "DOCKER_CONFIG": str(tmp_path / "docker-alice-again")})
    assert relogin.returncode != 0

    # And the audit trail shows who did what.
    trail = dockless("audit", "--repo", "acme/app").stdout
    assert "alice" in trail and "manifest.push" in trail
    assert "deployer" in trail and "manifest.pull" in trail
    alice_events = [json.loads(line) for line in dockless("audit", "--actor", "alice", "--json").stdout.splitlines()]
    actions = {(e["action"], e["outcome"]) for e in alice_events}
    assert {("manifest.push", "allowed"), ("access.denied", "denied"), ("authenticate", "denied")} <= actions
    assert all(e["source_ip"] == "127.0.0.1" for e in alice_events)

    # And what the namespace stores and costs.
    report = json.loads(dockless("usage", "--namespace", "acme", "--json").stdout)
    (usage,) = report["repositories"]
    assert usage["repository"] == "acme/app"
    assert usage["pushes"] >= 1 and usage["pulls"] >= 1 and usage["stored_bytes"] > 20_000
    assert 0 < usage["estimated_monthly_usd"] < 0.01
    table = dockless("usage").stdout
    assert "acme/app" in table
    fixed = sum(report["fixed_monthly_usd"].values())
    assert f"the registry, whatever its traffic: ${fixed:.2f}/month" in table and f"CloudWatch alarms ({prices.STACK_ALARMS})" in table


def test_anonymous_docker_pull_of_a_private_repository_fails(stack, docker, dockerd, tmp_path):
    image = f"{stack.host}/private/app:1"
    dockerfile_context(tmp_path / "ctx", [10_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    docker("push", image)
    docker("rmi", image)
    anonymous = {**dockerd, "DOCKER_CONFIG": str(tmp_path / "docker-anonymous")}
    result = run(DOCKER, "pull", image, env=anonymous, check=False)
    assert result.returncode != 0
    assert "denied" in result.stderr or "unauthorized" in result.stderr


def test_a_ci_job_pushes_with_its_oidc_id_token_as_the_robots_password(stack, docker, dockerd, tmp_path):
    """Keyless CI: the robot trusts one repository's main-branch runs of an OIDC issuer (on
    loopback, as tests/oidc.py serves one); the job runs `docker login -u ROBOT --password-stdin`
    with its ID token, unmodified, and pushes; a token for another branch gets nothing."""
    from tests.oidc import Provider
    provider = Provider()
    config = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}

    def dockless(*args, check=True, input=None):
        return run(sys.executable, "-m", "dockless.cli", *args, env=config, check=check, input=input)
    try:
        dockless("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token)
        dockless("robot", "create", "ci")
        dockless("grant", "write", "cinamespace", "user:ci")
        trusted = dockless("robot", "trust", "ci", "--issuer", provider.issuer, "--audience", stack.url,
                           "--subject", "repo:acme/app:ref:refs/heads/main", "--claim", "workflow=release*").stdout
        assert "ci trusts" in trusted and "workflow=release*" in trusted
        assert provider.issuer in dockless("robot", "trusts", "ci").stdout

        image = f"{stack.host}/cinamespace/app:1"
        dockerfile_context(tmp_path / "ctx", [12_000])
        docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
        job = {**dockerd, "DOCKER_CONFIG": str(tmp_path / "docker-ci")}
        other = provider.token("repo:acme/app:ref:refs/heads/dev", audience=stack.url, workflow="release.yml")
        refused = run(DOCKER, "login", stack.host, "-u", "ci", "--password-stdin", env=job, input=other, check=False)
        assert refused.returncode != 0
        id_token = provider.token("repo:acme/app:ref:refs/heads/main", audience=stack.url, workflow="release.yml",
                                  run_id="99")
        run(DOCKER, "login", stack.host, "-u", "ci", "--password-stdin", env=job, input=id_token)
        run(DOCKER, "push", image, env=job)
        events = [json.loads(line) for line in dockless("audit", "--actor", "ci", "--json").stdout.splitlines()]
        pushed = [e for e in events if e["action"] == "manifest.push"]
        assert pushed and pushed[0]["detail"]["federated"]["subject"] == "repo:acme/app:ref:refs/heads/main"
        assert pushed[0]["detail"]["federated"]["run_id"] == "99"
        docker("rmi", image)
    finally:
        provider.close()


def test_a_person_logs_the_cli_and_docker_in_with_single_sign_on(stack, dockless, docker, dockerd, identity_provider,
                                                                  tmp_path):
    """`dockless login --sso --docker`: the CLI says where to confirm its code; the person confirms
    it at the identity provider; the CLI stores the registry's refresh token, and docker's config
    the same as its identity token; docker pulls as the person, with their team's grants only."""
    import re
    import requests
    import subprocess
    from tests.e2e.conftest import SSO_TEAM, pushed_for_sso_team
    image = pushed_for_sso_team(docker, dockless, tmp_path, f"{stack.host}/ssocli/app:1")
    config = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "carol.json"), "DOCKER_CONFIG": str(tmp_path / "docker")}
    public = f"http://{stack.host}"  # the name docker pulls by
    login = subprocess.Popen([sys.executable, "-m", "dockless.cli", "login", public, "--sso", "--docker"], env=config,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = login.stderr.readline() + login.stderr.readline()
        where = re.search(r"open (\S+)\s+and confirm the code (\S+)\.", said)
        assert where, said
        assert where.group(1).startswith(identity_provider.issuer + "/activate")
        page = requests.get(where.group(1), timeout=10)
        assert page.status_code == 200 and "Approve" in page.text
        requests.post(identity_provider.issuer + "/activate", data={"user_code": where.group(2), "username": "carol"},
                      timeout=10).raise_for_status()
        out, err = login.communicate(timeout=60)
    finally:
        login.kill()
    assert login.returncode == 0, err
    assert out.splitlines() == [f"logged in to {public} as carol", f"docker logged in to {stack.host} as carol"]
    stored = json.loads((tmp_path / "carol.json").read_text())["registries"][public]
    assert stored["username"] == "carol" and stored["refresh_token"].startswith("dkl_")
    assert json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][stack.host]["identitytoken"] == \
        stored["refresh_token"]
    as_carol = run(sys.executable, "-m", "dockless.cli", "user", "list", env=config, check=False)
    assert as_carol.returncode != 0 and "admin" in (as_carol.stderr + as_carol.stdout).lower()

    carol = {**dockerd, "DOCKER_CONFIG": str(tmp_path / "docker")}
    run(DOCKER, "pull", image, env=carol)
    run(DOCKER, "tag", image, f"{stack.host}/ssocli/app:carols", env=carol)
    pushed = run(DOCKER, "push", f"{stack.host}/ssocli/app:carols", env=carol, check=False)
    assert pushed.returncode != 0 and ("denied" in pushed.stderr or "unauthorized" in pushed.stderr)
    run(DOCKER, "rmi", image, f"{stack.host}/ssocli/app:carols", env=carol)
    events = [json.loads(line) for line in dockless("audit", "--actor", "carol", "--json").stdout.splitlines()]
    assert any(e["action"] == "sso.signin" and e["detail"]["teams"] == [SSO_TEAM] for e in events)
    assert any(e["action"] == "manifest.pull" and e["repository"] == "ssocli/app" for e in events)
