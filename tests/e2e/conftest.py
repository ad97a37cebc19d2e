"""End-to-end tier: real programs, started once per session and shared.

* `dockless serve` as its own process (moto server, the app behind the local front door), with
  its per-request JSON log written to a file the tests read;
* Debian's dockerd (vfs storage, no iptables, no bridge, its own data root and socket);
* Debian's containerd, for `ctr`; skopeo runs per call.
`make test` installs the Debian packages; a missing program fails the tier instead of skipping it.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def _require(*programs):
    missing = [p for p in programs if not (shutil.which(p) or os.path.exists(f"/usr/sbin/{p}"))]
    if missing:
        pytest.fail(f"end-to-end tests need {missing}; `make test` installs them from Debian")


def _wait(predicate, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {seconds} s")


def run(*args, env=None, check=True, timeout=600, input=None):
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


class Stack:
    """A running `dockless serve`: the gateway at `url`, the API behind it at `api_url`, and the
    records of the requests the API answered."""

    def __init__(self, process, url: str, api_url: str, request_log: Path):
        self.process, self.url, self.api_url, self.request_log = process, url, api_url, request_log
        self.port = int(url.rsplit(":", 1)[1])
        self.host = f"localhost:{self.port}"

    def requests(self):
        lines = self.request_log.read_text().splitlines() if self.request_log.exists() else []
        return [json.loads(line) for line in lines]

    def mark(self) -> int:
        return len(self.requests())

    def requests_since(self, mark: int):
        return self.requests()[mark:]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    request_log = work / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "dockless.cli", "serve", "--port", "0", "--request-log", str(request_log)],
        stdout=subprocess.PIPE, stderr=open(work / "serve.log", "w"), text=True)
    announced = dict(process.stdout.readline().split(": ", 1) for _ in range(2))
    if "ready" not in announced:
        process.kill()
        raise RuntimeError(f"dockless serve did not start: {announced}\n{(work / 'serve.log').read_text()}")
    url, api_url = announced["ready"].strip(), announced["api"].strip()
    # Keep reading stdout so the server can never block on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    yield Stack(process, url, api_url, request_log)
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory):
    _require("dockerd", DOCKER)
    root = Path(tmp_path_factory.mktemp("dockerd"))
    socket = root / "docker.sock"
    log = open(root / "dockerd.log", "w")
    process = subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
         "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "-H", f"unix://{socket}"],
        stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(root / "client")}
    _wait(lambda: subprocess.run([DOCKER, "version"], env=env, capture_output=True).returncode == 0,
          "dockerd")
    yield env
    process.terminate()
    process.wait(timeout=60)


@pytest.fixture
def docker(dockerd):
    """Runs the docker client against the shared dockerd; removes the test's images afterwards."""
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
    _wait(lambda: subprocess.run(["ctr", "-a", str(socket), "version"], capture_output=True).returncode == 0,
          "containerd")
    yield lambda *args, **kw: run("ctr", "-a", str(socket), *args, **kw)
    process.terminate()
    process.wait(timeout=60)


@pytest.fixture
def skopeo():
    _require("skopeo")
    return lambda *args, **kw: run("skopeo", *args, **kw)


@pytest.fixture
def http(stack):
    session = requests.Session()
    yield session
    session.close()
