"""What the functions run on, and a Python of that version on this machine.

Every regional function runs PYTHON on ARCHITECTURE (arm64: Graviton's GB-second is 20% cheaper
than x86_64's, and the functions carry no native code that cares). The Lambda@Edge function runs
PYTHON on x86_64: Lambda@Edge takes no arm64 functions (CloudFront's "Restrictions on
Lambda@Edge"). `chalice package` would target the Python that runs it; infra/package.py pins it here.
"""
import glob
import os
import shutil
import subprocess
from pathlib import Path

PYTHON = "python3.13"
ARCHITECTURE = "arm64"
EDGE_ARCHITECTURE = "x86_64"
VERSION = tuple(int(part) for part in PYTHON.removeprefix("python").split("."))


def _is_runtime(candidate: str) -> bool:
    check = f"import sys; sys.exit(sys.version_info[:2] != {VERSION!r})"
    try:
        return subprocess.run([candidate, "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def interpreter() -> str | None:
    """A Python of the runtime's version here, to compile the bundle's bytecode with and to import
    the bundle in tests: $DOCKLESS_RUNTIME_PYTHON, `python3.13` on PATH, or pyenv's 3.13; None
    when there is none."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(pyenv / "versions" / f"{'.'.join(map(str, VERSION))}*" / "bin" / PYTHON)))
    candidates = [os.environ.get("DOCKLESS_RUNTIME_PYTHON"), shutil.which(PYTHON), *reversed(found)]
    return next((c for c in candidates if c and _is_runtime(c)), None)
