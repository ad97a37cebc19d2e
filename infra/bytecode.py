"""Add each module's bytecode to a Lambda bundle, compiled by the Python that runs this file.

    python3.13 infra/bytecode.py deployment.zip

Lambda's /var/task is read-only, so without .pyc files beside the sources every cold start
compiles every module it imports (about 380 ms against 130 ms). The bytecode must be the runtime's
own (its magic number and its cache tag, `cpython-313`), so infra/package.py runs this file with
a Python of the runtime's version (infra/runtime.py). Standard library only: that Python has
nothing else installed.
"""
import importlib.util
import marshal
import sys
import zipfile
from pathlib import Path


def _bytecode(name: str, source: bytes) -> bytes | None:
    """The .pyc of one module: hash-based and unchecked (PEP 552), so the import never reads the
    source to compare; None for a file that does not compile (no bytecode: importing it would fail
    on the runtime too, and vendored packages carry such files that nothing imports)."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except SyntaxError:
        return None
    unchecked_hash = (1).to_bytes(4, "little")
    return importlib.util.MAGIC_NUMBER + unchecked_hash + importlib.util.source_hash(source) + marshal.dumps(code)


def compile_bundle(bundle: Path) -> None:
    rewritten = bundle.with_suffix(".compiled")
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = source.read(entry)
            target.writestr(entry, data, zipfile.ZIP_DEFLATED)
            compiled = _bytecode(entry.filename, data) if entry.filename.endswith(".py") else None
            if compiled:
                cached = zipfile.ZipInfo(importlib.util.cache_from_source(entry.filename), entry.date_time)
                cached.external_attr = entry.external_attr
                target.writestr(cached, compiled, zipfile.ZIP_DEFLATED)
    rewritten.replace(bundle)


if __name__ == "__main__":
    compile_bundle(Path(sys.argv[1]))
