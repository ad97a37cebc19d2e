"""Starting the real programs the end-to-end tests and the benchmarks drive: `dockless serve`,
`dockless gateway`, dockerd and the reference registry. Each is a context manager that stops
what it started."""
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def wait_for(predicate, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {seconds} s")


class Stack:
    """A running `dockless serve`: the gateway at `url`, the API behind it at `api_url`, and the
    records of the requests the API answered."""

    def __init__(self, process, url: str, api_url: str, request_log: Path, admin_token: str):
        self.process, self.url, self.api_url, self.request_log = process, url, api_url, request_log
        self.admin_token = admin_token
        self.port = int(url.rsplit(":", 1)[1])
        self.host = f"localhost:{self.port}"

    def requests(self):
        lines = self.request_log.read_text().splitlines() if self.request_log.exists() else []
        return [json.loads(line) for line in lines]

    def mark(self) -> int:
        return len(self.requests())

    def requests_since(self, mark: int):
        return self.requests()[mark:]


def _announced(process, count: int) -> dict:
    lines = dict(process.stdout.readline().split(": ", 1) for _ in range(count))
    # Keep reading stdout so the program can never block on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return {key: value.strip() for key, value in lines.items()}


@contextlib.contextmanager
def dockless_serve(work: Path, env=None, args=(), must_stop: bool = True):
    """`dockless serve` with a bootstrap admin token chosen here (Stack.admin_token); `args` adds
    options (`--tls --tls-dir DIR`). It must stop within 30 s of SIGTERM, else the test fails
    (after killing it), unless `must_stop` is False (then it is killed, and the log says so).
    Pushes are scanned only when asked for (DOCKLESS_SCAN_PUSHES=0, unless `env` says otherwise):
    the tests count what a push stores, and the SBOM referrer a scan adds would be in the counts."""
    from chalicelib.access.service import new_credential_text

    admin_token = new_credential_text()
    request_log = work / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "dockless.cli", "serve", "--port", "0", "--request-log", str(request_log), *args],
        stdout=subprocess.PIPE, stderr=open(work / "serve.log", "w"), text=True,
        env={"DOCKLESS_SCAN_PUSHES": "0", **(env or os.environ), "DOCKLESS_BOOTSTRAP_TOKEN": admin_token})
    try:
        announced = _announced(process, 2)
        if "ready" not in announced:
            raise RuntimeError(f"dockless serve did not start: {(work / 'serve.log').read_text()}")
        yield Stack(process, announced["ready"], announced["api"], request_log, admin_token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            if must_stop:
                raise
            print(f"dockless serve in {work} did not stop within 30 s of SIGTERM: killed")


@contextlib.contextmanager
def dockless_gateway(upstream: str, spool_dir: Path):
    """A `dockless gateway` process; yields it with `.host` set to the name clients push to."""
    process = subprocess.Popen([sys.executable, "-m", "dockless.cli", "gateway", "--upstream", upstream,
                                "--port", "0", "--spool-dir", str(spool_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        process.host = "localhost:" + _announced(process, 1)["ready"].rsplit(":", 1)[1]
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_rss_kib(pid) -> int:
    """VmHWM of a process (a pid, or "self"): the peak RSS of what it runs since its exec."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


@contextlib.contextmanager
def dockerd(root: Path):
    """Debian's dockerd on a private socket: vfs storage, no iptables, no bridge. Yields the
    environment for the docker client."""
    socket = root / "docker.sock"
    process = subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
         "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "-H", f"unix://{socket}"],
        stdout=open(root / "dockerd.log", "w"), stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(root / "client")}
    try:
        wait_for(lambda: subprocess.run([DOCKER, "version"], env=env, capture_output=True).returncode == 0,
                 "dockerd")
        yield env
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextlib.contextmanager
def reference_registry(root: Path, port: int):
    """Debian's `docker-registry` (distribution) on loopback, storing on the filesystem."""
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(root / "registry.log", "w"))
    try:
        import requests
        wait_for(lambda: _answers(requests, f"http://127.0.0.1:{port}/v2/"), "docker-registry")
        yield f"localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(requests, url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
