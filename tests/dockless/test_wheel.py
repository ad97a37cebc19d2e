"""A non-editable install serves: the wheel `pip install .` builds carries every package and the
console's templates, stylesheet and script. Built from a copy of the tree, installed into a fresh
venv (its dependencies read from the test venv's site-packages, its own code only from the wheel),
and `dockless serve` started from it, outside the source tree."""
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("app.py", "pyproject.toml", "README.md", "chalicelib", "dockless", "infra")


def test_the_wheel_installs_and_serves_the_api_and_the_console(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SHIPPED:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("dockless-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies, not our code: a path line is no site directory, so the test venv's
    # editable-install hook there is never run.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True)
    where = subprocess.run([str(python), "-c", "import chalicelib.console, dockless; "
                            "print(chalicelib.console.__file__, dockless.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where

    process = subprocess.Popen([str(venv / "bin" / "dockless"), "serve", "--port", "0"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()  # api: …
        ready = process.stdout.readline()
        assert ready.startswith("ready: http://127.0.0.1:"), ready + process.stderr.read(2000)
        url = ready.split()[1]
        page = requests.get(f"{url}/ui/signin", timeout=30)
        assert page.status_code == 200 and 'type="password"' in page.text
        style = requests.get(f"{url}/ui/console.css", timeout=30)
        assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")
        assert requests.get(f"{url}/v2/", timeout=30).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
