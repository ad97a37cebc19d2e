"""Build one stage's deployable template: Chalice's package merged with infra/stack.py.

    .chalice/policy-<stage>.json   the functions' role policy (infra/permissions.py), written here
    <outdir>/merge.json            stack.merge_template(stage)
    <outdir>/sam.json              `chalice package --merge-template`: functions, API, role, and
                                   everything above, one SAM template
    <outdir>/deployment.zip        the functions' code and requirements.txt (wheels for the
                                   runtime's Python and architecture, infra/runtime.py), with
                                   botocore's service models trimmed to the services the functions
                                   call, and every module compiled for the runtime (infra/bytecode.py)
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from infra import permissions, runtime, stack

PROJECT = Path(__file__).resolve().parent.parent
# The AWS services the functions build clients for (chalicelib/backend.py; pynamodb for DynamoDB).
# botocore ships a model for every AWS service, 16 MB of the bundle's 22; the rest are left out
# (tests/infra/test_iam.py checks that the run called nothing else).
BOTOCORE_SERVICES = ("dynamodb", "events", "s3", "secretsmanager", "sqs", "ssm")


def policy_path(stage: str, project: Path = PROJECT) -> Path:
    return project / ".chalice" / f"policy-{stage}.json"


def write_policy(stage: str, project: Path = PROJECT) -> Path:
    return stack.write(permissions.policy(stage), policy_path(stage, project))


def package(stage: str, outdir: Path, region: str, project: Path = PROJECT) -> Path:
    """Write the policy and merge template, run `chalice package`; return the SAM template's path."""
    write_policy(stage, project)
    merge = stack.write(stack.merge_template(stage), Path(outdir) / "merge.json")
    subprocess.run([sys.executable, "-m", "infra.chalice_pinned", "--project-dir", str(project), "package",
                    "--stage", stage, "--merge-template", str(merge), str(outdir)], cwd=PROJECT,
                   check=True, env={**os.environ, "AWS_DEFAULT_REGION": region})
    rewrite_bundle(Path(outdir) / "deployment.zip")
    template = Path(outdir) / "sam.json"
    template.write_text(json.dumps(stack.point_consumers_at_queues(json.loads(template.read_text())), indent=2))
    return template


def _unused_model(name: str) -> bool:
    parts = name.split("/")
    return parts[:2] == ["botocore", "data"] and len(parts) > 3 and parts[2] not in BOTOCORE_SERVICES


def rewrite_bundle(bundle: Path) -> None:
    """Rewrite the zip without the botocore models of services the functions never call, then add
    each module's bytecode with a Python of the runtime's version. Without one here the bundle
    ships without bytecode (its cold starts compile every module), and says so."""
    trimmed = bundle.with_suffix(".trimmed")
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if not _unused_model(entry.filename):
                target.writestr(entry, source.read(entry), zipfile.ZIP_DEFLATED)
    trimmed.replace(bundle)
    python = runtime.interpreter()
    if python is None:
        print(f"warning: no {runtime.PYTHON} on this machine (set DOCKLESS_RUNTIME_PYTHON): the bundle "
              "ships without bytecode, so each cold start compiles its modules (about 250 ms more)",
              file=sys.stderr)
        return
    subprocess.run([python, "-I", str(Path(__file__).with_name("bytecode.py")), str(bundle)], check=True)


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())
