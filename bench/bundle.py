"""The Lambda bundle: the size of deployment.zip and the cold import of the packaged app against
`import chalice, boto3`, both from the unpacked bundle alone (no site-packages) and writing no
bytecode, as Lambda starts it (/var/task is read-only: the .pyc files are the packaged ones), on
the runtime's Python (infra/runtime.py).
Goals (../shared/DESIGN.md): zip <= 12 MB, cold import <= 1.2x. Not a test: it prints a table.

    make bench-bundle
"""
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra import package, runtime

RUNS = 41
ZIP_GOAL_BYTES = 12 * 1024 * 1024
IMPORT_GOAL_RATIO = 1.2


def cold_imports_ms(python: str, bundle: Path, statements: list) -> list:
    """For each statement, the median over fresh interpreters of the time it takes, importing from
    the bundle only. The statements take turns, so a change of load on the machine weighs on each alike."""
    scripts = [("import sys, time; sys.path.insert(0, sys.argv[1]); started = time.perf_counter(); "
                f"{statement}; print((time.perf_counter() - started) * 1000)") for statement in statements]
    times = [[] for _ in statements]
    for _ in range(RUNS):
        for script, samples in zip(scripts, times):
            samples.append(float(subprocess.run(
                [python, "-S", "-B", "-c", script, str(bundle)], capture_output=True, text=True, check=True,
                env={"PATH": "/usr/bin:/bin"}).stdout))
    return [statistics.median(samples) for samples in times]


def main() -> None:
    python = runtime.interpreter()
    if python is None:
        sys.exit(f"bench-bundle imports the bundle with {runtime.PYTHON}: none here (set DOCKLESS_RUNTIME_PYTHON)")
    with tempfile.TemporaryDirectory(prefix="dockless-bundle-") as work:
        package.package("bench", Path(work) / "out", "eu-west-1")
        zip_path = Path(work) / "out" / "deployment.zip"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(Path(work) / "bundle")
        app, base = cold_imports_ms(python, Path(work) / "bundle", ["import app", "import chalice, boto3"])
        size = zip_path.stat().st_size
    print("| what | dockless | goal | |\n|---|---:|---:|---|")
    print(f"| deployment.zip | {size / 1024 / 1024:.1f} MB | {ZIP_GOAL_BYTES / 1024 / 1024:.0f} MB | "
          f"{'ok' if size <= ZIP_GOAL_BYTES else 'OVER'} |")
    print(f"| cold import of `app` (median of {RUNS}) | {app:.0f} ms | {IMPORT_GOAL_RATIO}x of {base:.0f} ms "
          f"(`import chalice, boto3`) | {app / base:.2f}x {'ok' if app <= IMPORT_GOAL_RATIO * base else 'OVER'} |")


if __name__ == "__main__":
    main()
