"""Shared by every tier: dummy AWS credentials (never real ones), the in-process fixtures, and the
log of every AWS call the app makes during the run (checked against the IAM policy last)."""
import os
import tempfile
from pathlib import Path

os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1"})
for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(variable, None)

# Every process of the run (in-process stacks, `dockless serve` subprocesses) appends here.
AWS_CALL_LOG = Path(tempfile.mkdtemp(prefix="dockless-calls-")) / "aws-calls.jsonl"
os.environ["DOCKLESS_AWS_CALL_LOG"] = str(AWS_CALL_LOG)

pytest_plugins = ["tests.fixtures"]

# The fuzz tier's budgets (tests marked `fuzz`): `ci`, the default, is what `make test` runs,
# derandomized so a run is repeatable; `deep` (HYPOTHESIS_PROFILE=deep, `make fuzz`) draws fresh
# random examples, many more of them.
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

_FUZZ = dict(deadline=None, database=None, print_blob=True,
             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# `ci` does not shrink a failing example (replaying it, state snapshots and all, can take longer
# than the whole tier): the failure is reported as found; `make fuzz` shrinks.
settings.register_profile("ci", max_examples=20, derandomize=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate], **_FUZZ)
settings.register_profile("deep", max_examples=400, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items):
    """Tests marked `after_all` read what the whole run recorded: they run last."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)
