"""The functions' IAM policy against every AWS call the test suite made (tests/conftest.py sets
DOCKLESS_AWS_CALL_LOG for every process of the run; chalicelib/runtime/observe.py writes it, presigned
URLs included). Runs last. A recorded call the policy does not allow fails; in a run that includes
the end-to-end tier, so does an allowed action that no call needed and UNRECORDED does not list."""
import fnmatch
import json
import os
import re
from pathlib import Path

import pytest

from chalicelib.metadata.models import TABLES
from infra import permissions, stack
from infra.stack import table_id

STAGE = "test"
ACCOUNT, REGION, BUCKET = "123456789012", "us-east-1", "the-bucket"
SECRET_IDS = {"token-signing": "TokenSigningKey", "registry-signing": "RegistrySigningKey",
              "sso-client": "SsoClientSecret"}


def resolve(node):
    """The policy's references as CloudFormation would resolve them for a stack named dockless-test."""
    if isinstance(node, list):
        return [resolve(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "Fn::GetAtt" in node:
        return _arn_of(node["Fn::GetAtt"][0])
    if "Ref" in node:
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{node['Ref']}-??????"
    if "Fn::Sub" in node:
        names = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                 "AWS::StackName": f"dockless-{STAGE}"}
        return re.sub(r"\$\{([^}]+)\}", lambda m: names.get(m[1]) or _arn_of(m[1].removesuffix(".Arn")), node["Fn::Sub"])
    return node


def _arn_of(logical: str) -> str:
    if logical == "Blobs":
        return f"arn:aws:s3:::{BUCKET}"
    if logical in stack.QUEUES:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:dockless-{STAGE}-{stack.QUEUES[logical]}"
    if logical == "EventBus":
        return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/dockless-{STAGE}"
    concern = next(c for c in TABLES.values() if table_id(c) == logical)
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dockless-{STAGE}-{concern}"


def call_arns(call: dict):
    """(IAM action, ARN) for each resource of one recorded call, in the resolved stack's names."""
    service, operation = call["service"], call["operation"]
    for kind, name, detail in call["resources"]:
        action = permissions.iam_action(service, operation, detail)
        if service == "dynamodb":
            concern = max((c for c in TABLES.values() if name.endswith("-" + c)), key=len)
            arn = _arn_of(table_id(concern))
            if detail and operation in ("Query", "Scan"):
                arn += f"/index/{detail}"
            yield action, arn
        elif service == "s3":
            yield action, f"arn:aws:s3:::{BUCKET}" + ("" if action == "s3:ListBucket" else f"/{detail}")
        elif service == "secretsmanager" and "/cache/" in name:  # a cache's upstream password
            yield action, (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dockless-{STAGE}/cache/"
                           f"{name.split('/cache/', 1)[1]}-AbCdEf")
        elif service == "secretsmanager":
            logical = next(v for k, v in SECRET_IDS.items() if k in name)
            yield action, f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{logical}-AbCdEf"
        elif service == "sqs":  # the stack's queues, named by what they end with (tests add a prefix of their own)
            logical = next(q for q, suffix in stack.QUEUES.items() if name.endswith(suffix))
            yield action, _arn_of(logical)
        elif service == "events":
            yield action, _arn_of("EventBus")
        elif service == "ssm":
            yield action, f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/dockless/{STAGE}/public-url"
        else:
            yield action, f"{service}:{name}"


def statements():
    for statement in permissions.policy(STAGE)["Statement"]:
        resources = resolve(statement["Resource"])
        for action in statement["Action"]:
            for resource in resources if isinstance(resources, list) else [resources]:
                yield action, resource


def allowed(action: str, arn: str, granted) -> bool:
    return any(action == a and fnmatch.fnmatchcase(arn, pattern) for a, pattern in granted)


def recorded_calls():
    log = Path(os.environ["DOCKLESS_AWS_CALL_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def calls(request):
    calls = recorded_calls()
    if not calls:
        pytest.fail("no AWS calls were recorded: run this with the rest of the suite (make test)")
    return calls


@pytest.mark.after_all
def test_every_recorded_call_is_allowed_by_the_policy(calls):
    granted = list(statements())
    denied = sorted({f"{action} on {arn}" for call in calls for action, arn in call_arns(call)
                     if not allowed(action, arn, granted)})
    assert not denied, "the policy does not allow:\n" + "\n".join(denied[:40])


@pytest.mark.after_all
def test_the_policy_allows_nothing_that_no_call_needed(calls, request):
    if not any("tests/e2e" in str(item.fspath) for item in request.session.items):
        pytest.skip("only a run with the end-to-end tier exercises every permission")
    used = {(action, arn) for call in calls for action, arn in call_arns(call)}
    unrecorded = {action for action, _, _ in permissions.UNRECORDED}
    idle = sorted(f"{action} on {pattern}" for action, pattern in set(statements())
                  if action not in unrecorded
                  and not any(a == action and fnmatch.fnmatchcase(arn, pattern) for a, arn in used))
    assert not idle, "allowed but never needed (remove, or list in UNRECORDED with a reason):\n" + "\n".join(idle)


@pytest.mark.after_all
def test_the_bundle_keeps_the_model_of_every_service_called(calls):
    """infra/package.py leaves out botocore's models of services the functions never call: none
    may be one the run called (the functions would fail to build that client in Lambda)."""
    from infra.package import BOTOCORE_SERVICES
    assert {call["service"] for call in calls} <= set(BOTOCORE_SERVICES)
