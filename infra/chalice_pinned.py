"""`chalice` with the functions' runtime pinned (infra/runtime.py), whatever Python runs it.

Chalice targets the runtime of the Python that runs it (`Config.lambda_python_version`) and picks
the wheels it bundles by that version and by `lambda_architecture` (.chalice/config.json). The
deployment must not change runtime with the machine that packages it, so infra/package.py runs
chalice through this module: `python -m infra.chalice_pinned --project-dir … package …`.

Two seams of chalice 1.34 (requirements-dev.txt pins it; tests/infra/test_stack.py checks the
bundle's wheel tags, so a chalice that moves them fails there):
* the runtime, a property of its Config;
* the download of binary wheels, which names the runtime's ABI and platforms but not its Python
  version, so pip would match them against the Python running it and find none.
"""
import sys

from chalice import config
from chalice.cli import main
from chalice.deploy import packager

from infra import runtime

config.Config.lambda_python_version = property(lambda self: runtime.PYTHON)

_execute = packager.PipRunner._execute


def _execute_for_the_runtime(self, command, args, *rest, **named):
    if command == "download" and "--abi" in args and "--python-version" not in args:
        args = ["--python-version", "".join(map(str, runtime.VERSION)), *args]
    return _execute(self, command, args, *rest, **named)


packager.PipRunner._execute = _execute_for_the_runtime

if __name__ == "__main__":
    sys.exit(main())
