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


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with programs.dockless_serve(Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


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
