"""Build one stage's deployable template: Chalice's package merged with infra/stack.py.

    .chalice/policy-<stage>.json   the functions' role policy (infra/permissions.py), written here
    <outdir>/merge.json            stack.merge_template(stage)
    <outdir>/sam.json              `chalice package --merge-template`: functions, API, role, and
                                   everything above, one SAM template
    <outdir>/deployment.zip        the functions' code and requirements.txt, with botocore's service
                                   models trimmed to the services the functions call, and every
                                   module compiled for the functions' runtime
"""
import importlib.util
import json
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from infra import permissions, stack

PROJECT = Path(__file__).resolve().parent.parent
# The AWS services the functions build clients for (chalicelib/backend.py; pynamodb for DynamoDB).
# botocore ships a model for every AWS service, 16 MB of the bundle's 22; the rest are left out
# (tests/infra/test_iam.py checks that the run called nothing else).
BOTOCORE_SERVICES = ("dynamodb", "s3", "secretsmanager", "ssm")


def policy_path(stage: str, project: Path = PROJECT) -> Path:
    return project / ".chalice" / f"policy-{stage}.json"


def write_policy(stage: str, project: Path = PROJECT) -> Path:
    return stack.write(permissions.policy(stage), policy_path(stage, project))


def package(stage: str, outdir: Path, region: str, project: Path = PROJECT) -> Path:
    """Write the policy and merge template, run `chalice package`; return the SAM template's path."""
    write_policy(stage, project)
    merge = stack.write(stack.merge_template(stage), Path(outdir) / "merge.json")
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "--project-dir", str(project), "package", "--stage", stage,
                    "--merge-template", str(merge), str(outdir)],
                   check=True, env={**os.environ, "AWS_DEFAULT_REGION": region})
    rewrite_bundle(Path(outdir) / "deployment.zip")
    return Path(outdir) / "sam.json"


def _unused_model(name: str) -> bool:
    parts = name.split("/")
    return parts[:2] == ["botocore", "data"] and len(parts) > 3 and parts[2] not in BOTOCORE_SERVICES


def _bytecode(name: str, source: bytes) -> bytes | None:
    """The .pyc of one module: hash-based and unchecked (PEP 552), so the import never reads the
    source to compare; None for a file that does not compile here (no bytecode: importing it would
    fail on the runtime too, and vendored packages carry such files that nothing imports)."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except SyntaxError:
        return None
    unchecked_hash = (1).to_bytes(4, "little")
    return importlib.util.MAGIC_NUMBER + unchecked_hash + importlib.util.source_hash(source) + marshal.dumps(code)


def rewrite_bundle(bundle: Path) -> None:
    """Rewrite the zip without the botocore models of services the functions never call, and with
    each module's bytecode beside it. Lambda's /var/task is read-only, so without them every cold
    start compiles every module it imports (about 380 ms against 130 ms). Chalice packages for the
    runtime of the Python that runs it, so this interpreter's bytecode is the runtime's."""
    rewritten = bundle.with_suffix(".rewritten")
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if _unused_model(entry.filename):
                continue
            data = source.read(entry)
            target.writestr(entry, data, zipfile.ZIP_DEFLATED)
            compiled = _bytecode(entry.filename, data) if entry.filename.endswith(".py") else None
            if compiled:
                cached = zipfile.ZipInfo(importlib.util.cache_from_source(entry.filename), entry.date_time)
                cached.external_attr = entry.external_attr
                target.writestr(cached, compiled, zipfile.ZIP_DEFLATED)
    rewritten.replace(bundle)


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())
