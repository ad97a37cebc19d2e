"""`dockless serve` as a user runs it: the ready line, a working registry, a clean stop."""
import signal
import subprocess
import sys

import requests


def test_serve_prints_ready_answers_and_stops_cleanly_on_ctrl_c():
    process = subprocess.Popen([sys.executable, "-m", "dockless.cli", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        api_line, ready_line = process.stdout.readline(), process.stdout.readline()
        assert api_line.startswith("api: http://127.0.0.1:")
        assert ready_line.startswith("ready: http://127.0.0.1:")
        url = ready_line.split()[1]
        response = requests.get(f"{url}/v2/", timeout=10)
        assert response.status_code == 401  # private by default
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        realm = response.headers["WWW-Authenticate"].split('realm="')[1].split('"')[0]
        admin_line = next(line for line in iter(process.stderr.readline, "") if line.startswith("admin token"))
        assert admin_line.startswith("admin token (shown once; user admin): dkl_")
        token = admin_line.split()[-1]
        login_line = process.stderr.readline()
        assert login_line.strip().startswith(f"docker login localhost:{url.rsplit(':', 1)[1]} -u admin --password-stdin")
        assert token not in login_line  # never on a command line, where ps and the shell's history keep it
        assert requests.get(realm, auth=("admin", token), timeout=10).status_code == 200
        assert requests.get(realm, auth=("admin", token[:-1] + ("y" if token.endswith("x") else "x")), timeout=10).status_code == 401
        too_deep = "/".join("abcdefghi")
        response = requests.get(f"{url}/v2/{too_deep}/tags/list", timeout=10)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NOT_FOUND"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "stopping" in stderr
    # The terminal gets what a person reads; the per-request JSON records go to --request-log only.
    assert "CloudWatchMetrics" not in stderr and '"route"' not in stderr
