"""End-to-end tier: real programs, started once per session and shared.

* `dockless serve` as its own process (moto server, the app behind the local front door), with
  its per-request JSON log written to a file the tests read;
* Debian's dockerd (vfs storage, no iptables, no bridge, its own data root and socket);
* Debian's containerd, for `ctr`; skopeo runs per call.
`make test` installs the Debian packages; a missing program fails the tier instead of skipping it.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import programs
from tests.e2e.programs import DOCKER


def _require(*names):
    missing = [p for p in names if not (shutil.which(p) or os.path.exists(f"/usr/sbin/{p}"))]
    if missing:
        pytest.fail(f"end-to-end tests need {missing}; `make test` installs them from Debian")


def run(*args, env=None, check=True, timeout=600, input=None):
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


SSO_TEAM = "ssoteam"  # the team the identity provider's group `platform` makes people members of


@pytest.fixture(scope="session")
def identity_provider():
    """The company's identity provider, on loopback (tests/oidc.py), which the shared stack signs
    people in with: carol is in group `platform`."""
    from tests.oidc import Provider
    provider = Provider()
    provider.client_id, provider.client_secret = "dockless-e2e", "e2e-client-secret"
    provider.people = {"carol": {"sub": "00u-carol", "preferred_username": "carol", "groups": ["platform", "all"]}}
    yield provider
    provider.close()


def pushed_for_sso_team(docker, dockless, tmp_path, image: str) -> str:
    """`image` (REGISTRY/NAMESPACE/REPO:TAG) built and pushed, its namespace readable by SSO_TEAM
    (made if no test made it yet), the local copy removed: what a person signed in by single
    sign-on may pull."""
    from tests.e2e.images import dockerfile_context
    dockerfile_context(tmp_path / "ctx", [7_000])
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    docker("push", image)
    docker("rmi", image)
    dockless("team", "create", SSO_TEAM, check=False)
    dockless("grant", "read", image.split("/")[1], f"team:{SSO_TEAM}")
    return image


@pytest.fixture(scope="session")
def stack(tmp_path_factory, identity_provider):
    sso = {"DOCKLESS_SSO_ISSUER": identity_provider.issuer, "DOCKLESS_SSO_CLIENT_ID": identity_provider.client_id,
           "DOCKLESS_SSO_CLIENT_SECRET": identity_provider.client_secret, "DOCKLESS_SSO_TEAMS": f"platform={SSO_TEAM}"}
    with programs.dockless_serve(Path(tmp_path_factory.mktemp("stack")), env={**os.environ, **sso}) as running:
        yield running


@pytest.fixture(scope="session")
def tls_stack(tmp_path_factory):
    """A second `dockless serve`, with --tls: for clients that insist on HTTPS. `ca_path` is the
    certificate they trust."""
    work = Path(tmp_path_factory.mktemp("tls-stack"))
    with programs.dockless_serve(work, args=("--tls", "--tls-dir", str(work / "tls"))) as running:
        running.ca_path = work / "tls" / "ca.crt"
        yield running


@pytest.fixture(scope="session")
def podman_root(tmp_path_factory):
    _require("podman", "buildah")
    return Path(tmp_path_factory.mktemp("podman"))


def storage_options(root: Path) -> list:
    """podman's and buildah's storage in a directory of the test run's own (vfs, as in a container
    without overlay)."""
    return ["--root", str(root / "storage"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]


@pytest.fixture
def podman(podman_root, stack, registry_auth):
    """Runs podman with private storage and the stack admin's credentials (the auth file skopeo
    uses); removes every image afterwards."""
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(registry_auth.path), "TMPDIR": str(podman_root)}
    options = storage_options(podman_root) + ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def podman_run(*args, check=True, env_extra=None):
        return run("podman", *options, *args, env={**env, **(env_extra or {})}, check=check)

    podman_run.buildah = lambda *args, check=True: run("buildah", *storage_options(podman_root), *args, env=env,
                                                       check=check)
    yield podman_run
    run("podman", *options, "rmi", "--all", "--force", env=env, check=False)


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory):
    _require("dockerd", DOCKER)
    with programs.dockerd(Path(tmp_path_factory.mktemp("dockerd"))) as env:
        yield env


def docker_login(env, host: str, token: str) -> None:
    run(DOCKER, "login", host, "-u", "admin", "--password-stdin", env=env, input=token)


@pytest.fixture(scope="session")
def registry_auth(tmp_path_factory, stack):
    """A containers auth.json (for skopeo) with the admin's credentials; `add(host)` for more."""
    path = Path(tmp_path_factory.mktemp("auth")) / "auth.json"
    hosts = {}

    def add(host: str, token: str = stack.admin_token) -> None:
        hosts[host] = {"auth": base64.b64encode(f"admin:{token}".encode()).decode()}
        path.write_text(json.dumps({"auths": hosts}))

    add(stack.host)
    add.path = path
    return add


@pytest.fixture
def docker(dockerd, stack):
    """Runs the docker client against the shared dockerd, logged in to the stack as its admin;
    removes the test's images afterwards."""
    docker_login(dockerd, stack.host, stack.admin_token)
    created = []

    def docker_run(*args, check=True, timeout=600):
        if args[0] in ("build", "tag", "pull"):
            created.extend(a for a in args if ":" in a and "/" in a and not a.startswith("-"))
        return run(DOCKER, *args, env=dockerd, check=check, timeout=timeout)

    yield docker_run
    for image in created:
        run(DOCKER, "rmi", "-f", image, env=dockerd, check=False)
    run(DOCKER, "image", "prune", "-f", env=dockerd, check=False)


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    _require("containerd", "ctr")
    root = Path(tmp_path_factory.mktemp("containerd"))
    socket = root / "containerd.sock"
    config = root / "config.toml"
    config.write_text(f'version = 2\nroot = "{root}/root"\nstate = "{root}/state"\n'
                      f'[grpc]\n  address = "{socket}"\n')
    log = open(root / "containerd.log", "w")
    process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    programs.wait_for(lambda: subprocess.run(["ctr", "-a", str(socket), "version"],
                                             capture_output=True).returncode == 0, "containerd")
    yield ctr_with(socket, None)
    process.terminate()
    process.wait(timeout=60)


def ctr_with(socket, user):
    def ctr(*args, **kw):
        if args[:2] in (("images", "pull"), ("images", "push")) and user:
            args = args[:2] + ("--user", user) + args[2:]
        return run("ctr", "-a", str(socket), *args, **kw)
    ctr.socket = socket
    return ctr


@pytest.fixture
def ctr(containerd, stack):
    """ctr against the shared containerd, with the stack admin's credentials on pull and push."""
    return ctr_with(containerd.socket, f"admin:{stack.admin_token}")


@pytest.fixture
def skopeo(registry_auth):
    _require("skopeo")
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(registry_auth.path)}
    return lambda *args, **kw: run("skopeo", *args, env=env, **kw)


@pytest.fixture
def gnupg(tmp_path):
    """A keyring with two signing keys: a release engineer's (trusted later) and a stranger's."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    fingerprints = []
    for uid in ("Release Engineer <release@example.com>", "Stranger <stranger@example.com>"):
        run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign", "never", env=env)
        listing = run("gpg", "--with-colons", "--list-keys", uid, env=env).stdout
        fingerprints.append(next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")))
    env_keys = {"env": env, "release": fingerprints[0], "stranger": fingerprints[1]}
    yield env_keys
    run("gpgconf", "--kill", "all", env=env, check=False)


def signed_by_policy(directory, scope: str, keys_file):
    """A containers policy.json that accepts images under `scope` only if signed by a key in
    `keys_file`, and rejects everything else."""
    policy = directory / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {
        "docker": {scope: [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keys_file)}]}}}))
    return policy


@pytest.fixture
def dockless(stack, tmp_path):
    """The CLI, logged in to the stack as its admin."""
    env = {**os.environ, "DOCKLESS_CONFIG": str(tmp_path / "logins.json")}

    def cli(*args, check=True, input=None, env_extra=None):
        return run(sys.executable, "-m", "dockless.cli", *args, env={**env, **(env_extra or {})}, check=check,
                   input=input)
    cli("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token)
    return cli


@pytest.fixture(scope="session")
def chromium():
    """One Debian chromium for the session, driven by Playwright (its own browser downloads are
    not used: Debian's binary is). Each test opens its own context (cookies apart)."""
    _require("chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()
