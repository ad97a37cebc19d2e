"""Build one stage's deployable template: Chalice's package merged with infra/stack.py.

    .chalice/policy-<stage>.json   the functions' role policy (infra/permissions.py), written here
    <outdir>/merge.json            stack.merge_template(stage)
    <outdir>/sam.json              `chalice package --merge-template`: functions, API, role, and
                                   everything above, one SAM template
    <outdir>/deployment.zip        the functions' code and requirements.txt
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from infra import permissions, stack

PROJECT = Path(__file__).resolve().parent.parent


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
    return Path(outdir) / "sam.json"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())
