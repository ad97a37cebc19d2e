"""`dockless deploy` / `destroy`: what they would call, against stubbed AWS clients (no account is
reachable here). First deploy, re-run, and the refusal to delete data unless told twice."""
import json

import pytest
from botocore.exceptions import ClientError

from chalicelib.signing import cosign

from dockless.deploy.stack import Deployer, DeployError, Target

OUTPUTS = {"Bucket": "dockless-prod-blobs-abc", "TablePrefix": "dockless-prod", "PublicUrl": "https://d1.cloudfront.net",
           "TokenSigningKeySecret": "arn:token", "RegistrySigningKeySecret": "arn:registry-key",
           "SsoClientSecret": "arn:sso-client",
           "OriginUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/api"}


class FakeAWS:
    """Stubbed clients sharing one account's state; every call is recorded as
    (service, region, operation, arguments)."""

    def __init__(self, stacks=(), buckets=(), registry_key=" ", concurrency=1000):
        self.calls = []
        self.concurrency = concurrency
        self.stacks = set(stacks)
        self.buckets = set(buckets)
        self.registry_key = registry_key

    def __call__(self, service, region):
        return FakeClient(self, service, region)

    def operations(self, service=None):
        return [(c[0], c[1], c[2]) for c in self.calls if service in (None, c[0])]


def _error(code, message=""):
    return ClientError({"Error": {"Code": code, "Message": message}}, "operation")


class FakeClient:
    def __init__(self, aws, service, region):
        self.aws, self.service, self.region = aws, service, region

    def __getattr__(self, operation):
        def call(**arguments):
            self.aws.calls.append((self.service, self.region, operation, arguments))
            answer = getattr(type(self), "_" + operation, None)
            return answer(self, **arguments) if answer else {}
        return call

    def get_waiter(self, name):
        aws, service, region = self.aws, self.service, self.region

        class Waiter:
            def wait(self, **arguments):
                aws.calls.append((service, region, f"wait:{name}", arguments))
        return Waiter()

    def get_paginator(self, name):
        aws = self.aws

        class Paginator:
            def paginate(self, **arguments):
                aws.calls.append(("s3", "-", f"paginate:{name}", arguments))
                return [{"Contents": [{"Key": "blobs/sha256/aa"}, {"Key": "manifests/sha256/bb"}]}]
        return Paginator()

    def _get_caller_identity(self):
        return {"Account": "123456789012"}

    def _head_bucket(self, Bucket):
        if Bucket not in self.aws.buckets:
            raise _error("404", "Not Found")

    def _describe_stacks(self, StackName):
        if StackName not in self.aws.stacks:
            raise _error("ValidationError", f"Stack with id {StackName} does not exist")
        outputs = {"VersionArn": "arn:aws:lambda:us-east-1:123456789012:function:edge:1"} \
            if StackName.endswith("-edge") else OUTPUTS
        return {"Stacks": [{"StackName": StackName, "StackStatus": "CREATE_COMPLETE",
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}

    def _create_stack(self, StackName, **_):
        self.aws.stacks.add(StackName)

    def _update_stack(self, StackName, **_):
        raise _error("ValidationError", "No updates are to be performed.")

    def _get_secret_value(self, SecretId):
        return {"SecretString": self.aws.registry_key}

    def _get_account_settings(self):
        return {"AccountLimit": {"ConcurrentExecutions": self.aws.concurrency}}

    def _describe_stack_resources(self, StackName):
        return {"StackResources": [
            {"ResourceType": "AWS::S3::Bucket", "PhysicalResourceId": "dockless-prod-blobs-abc"},
            {"ResourceType": "AWS::DynamoDB::Table", "PhysicalResourceId": "dockless-prod-tags"},
            {"ResourceType": "AWS::SecretsManager::Secret", "PhysicalResourceId": "arn:token"},
            {"ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "dockless-prod-APIHandler-x"}]}


def fake_package(stage, outdir, region):
    (outdir / "deployment.zip").write_bytes(b"code of " + stage.encode())
    template = {"Resources": {"APIHandler": {"Type": "AWS::Serverless::Function",
                                             "Properties": {"CodeUri": "./deployment.zip"}}}}
    (outdir / "sam.json").write_text(json.dumps(template))
    return outdir / "sam.json"


class Admins:
    def __init__(self, exists=False):
        self.exists, self.created = exists, []

    def __call__(self, target, outputs):
        if self.exists:
            return None
        self.exists = True
        self.created.append(outputs["TablePrefix"])
        return "dkl_0123456789abcdef_secret"


class Checks:
    def __init__(self):
        self.runs = []

    def __call__(self, outputs, token, say):
        self.runs.append((outputs["PublicUrl"], outputs.get("OriginUrl"), token))
        return True


def deployer(aws, admins=None, said=None, signing_key=lambda t: "ARMORED KEY", checks=None, **target):
    target = Target(**{"stage": "prod", "region": "eu-west-1", **target})
    return Deployer(target, aws, (said if said is not None else []).append, packager=fake_package,
                    bootstrap_admin=admins or Admins(), signing_key=signing_key, checker=checks or Checks())


def test_without_gpg_the_admin_is_still_made_and_the_key_is_left_for_later():
    def no_gpg(target):
        raise FileNotFoundError("gpg: command not found")
    aws, admins, said = FakeAWS(), Admins(), []
    deployer(aws, admins, said, signing_key=no_gpg).deploy()
    assert admins.created == ["dockless-prod"]
    assert "admin token (shown once; user admin): dkl_0123456789abcdef_secret" in said
    assert ("secretsmanager", "eu-west-1", "put_secret_value") not in aws.operations()
    advice = next(line for line in said if line.startswith("no registry signing key made"))
    assert "automatic signing stays off" in advice
    assert "dockless key rotate-registry --stage prod --region eu-west-1" in advice


def test_a_low_lambda_concurrency_is_named_with_its_fix():
    said = []
    deployer(FakeAWS(concurrency=10), said=said).deploy()
    warning = next(line for line in said if line.startswith("warning:"))
    assert "at most 10 Lambda functions at once" in warning and "Service Quotas" in warning
    quiet = []
    deployer(FakeAWS(concurrency=1000), said=quiet).deploy()
    assert not [line for line in quiet if line.startswith("warning:")]


def test_first_deploy_creates_bucket_stacks_key_and_admin_checks_it_and_deletes_nothing():
    aws, admins, said, checks = FakeAWS(), Admins(), [], Checks()
    outputs = deployer(aws, admins, said, checks=checks).deploy()
    assert checks.runs == [("https://d1.cloudfront.net", "https://abc.execute-api.eu-west-1.amazonaws.com/api",
                            "dkl_0123456789abcdef_secret")]
    operations = [op for _, _, op in aws.operations()]
    assert operations[:2] == ["get_caller_identity", "head_bucket"]
    assert {"create_bucket", "put_public_access_block", "put_bucket_encryption"} <= set(operations)
    edge, main = [c for c in aws.calls if c[2] == "create_stack"]
    assert edge[1] == "us-east-1" and edge[3]["StackName"] == "dockless-prod-eu-west-1-edge"
    assert main[1] == "eu-west-1" and main[3]["StackName"] == "dockless-prod"
    assert set(main[3]["Capabilities"]) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert main[3]["TemplateURL"].startswith("https://dockless-artifacts-123456789012-eu-west-1.s3.eu-west-1.amazonaws.com/prod/")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in main[3]["Parameters"]}
    assert parameters["EdgeFunctionVersionArn"].endswith(":function:edge:1")
    assert ("cloudformation", "eu-west-1", "wait:stack_create_complete") in aws.operations()
    uploaded = [c[3] for c in aws.calls if c[2] == "put_object"]
    template = json.loads(next(u["Body"] for u in uploaded if u["Key"].endswith(".json")))
    assert template["Resources"]["APIHandler"]["Properties"]["CodeUri"]["Key"].endswith(".zip")
    assert ("secretsmanager", "eu-west-1", "put_secret_value") in aws.operations()
    assert admins.created == ["dockless-prod"]
    assert "admin token (shown once; user admin): dkl_0123456789abcdef_secret" in said
    assert outputs["PublicUrl"] == "https://d1.cloudfront.net"
    assert not [op for op in operations if op.startswith("delete")]


def test_custom_domain_and_certificate_reach_the_stack():
    aws = FakeAWS()
    deployer(aws, domain="registry.example.com",
             certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/x").deploy()
    main = next(c for c in aws.calls if c[2] == "create_stack" and c[1] == "eu-west-1")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in main[3]["Parameters"]}
    assert parameters["DomainName"] == "registry.example.com"
    assert parameters["CertificateArn"].endswith(":certificate/x")
    assert parameters["Door"] == "api-gateway"


def test_single_sign_on_reaches_the_stack_and_its_secret_the_secret():
    aws = FakeAWS()
    deployer(aws, sso_issuer="https://acme.okta.com", sso_client_id="0oa1", sso_teams="eng=devs,ops=platform",
             sso_client_secret="client-secret", sso_scopes="openid profile email groups").deploy()
    main = next(c for c in aws.calls if c[2] == "create_stack" and c[1] == "eu-west-1")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in main[3]["Parameters"]}
    assert (parameters["SsoIssuer"], parameters["SsoClientId"], parameters["SsoTeams"]) == \
        ("https://acme.okta.com", "0oa1", "eng=devs,ops=platform")
    assert parameters["SsoScopes"] == "openid profile email groups"
    stored = [c[3] for c in aws.calls if c[2] == "put_secret_value" and c[3]["SecretId"] == "arn:sso-client"]
    assert stored == [{"SecretId": "arn:sso-client", "SecretString": "client-secret"}]
    again = FakeAWS()
    deployer(again).deploy()  # no --sso-client-secret-stdin: the secret is left as it is
    assert not [c for c in again.calls if c[2] == "put_secret_value" and c[3]["SecretId"] == "arn:sso-client"]


def test_the_door_and_the_log_retention_reach_the_stack():
    aws = FakeAWS()
    deployer(aws, door="function-url", log_retention_days=30).deploy()
    main = next(c for c in aws.calls if c[2] == "create_stack" and c[1] == "eu-west-1")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in main[3]["Parameters"]}
    assert (parameters["Door"], parameters["LogRetentionDays"]) == ("function-url", "30")


HELD_KEYS = "ARMORED KEY\n" + cosign.generate_private_key()


def test_rerun_updates_in_place_keeps_the_key_and_admin_and_deletes_nothing():
    aws = FakeAWS(stacks={"dockless-prod", "dockless-prod-eu-west-1-edge"},
                  buckets={"dockless-artifacts-123456789012-eu-west-1"}, registry_key=HELD_KEYS)
    admins, said = Admins(exists=True), []
    outputs = deployer(aws, admins, said).deploy()
    operations = [op for _, _, op in aws.operations()]
    assert operations.count("update_stack") == 2
    assert not {"create_stack", "create_bucket", "put_secret_value"} & set(operations)
    assert not [op for op in operations if op.startswith("delete")]
    assert admins.created == [] and "the stage already has an admin; no token created" in said
    assert "stack dockless-prod: no changes" in said
    assert any(line.startswith("prove it: DOCKLESS_USERNAME=admin") and "dockless check https://d1.cloudfront.net"
               in line for line in said)
    assert outputs["Bucket"] == OUTPUTS["Bucket"]


def test_destroy_keeps_data_unless_the_stage_is_named_twice():
    aws, said = FakeAWS(stacks={"dockless-prod", "dockless-prod-eu-west-1-edge"}), []
    deployer(aws, said=said).destroy()
    operations = [op for _, _, op in aws.operations()]
    assert operations.count("delete_stack") == 2
    assert not {"delete_bucket", "delete_table", "delete_secret", "delete_objects"} & set(operations)
    assert "kept AWS::DynamoDB::Table dockless-prod-tags" in said
    assert any("--delete-data prod" in line for line in said)


@pytest.mark.parametrize("confirmation", ["yes", "staging", ""])
def test_destroy_refuses_to_delete_data_without_the_stage_named_again(confirmation):
    aws = FakeAWS(stacks={"dockless-prod", "dockless-prod-eu-west-1-edge"})
    with pytest.raises(DeployError, match="name the stage again"):
        deployer(aws).destroy(delete_data=confirmation)
    assert aws.calls == []


def test_destroy_with_the_stage_named_twice_deletes_stacks_then_data():
    aws = FakeAWS(stacks={"dockless-prod", "dockless-prod-eu-west-1-edge"})
    deployer(aws).destroy(delete_data="prod")
    operations = [op for _, _, op in aws.operations()]
    assert operations.index("wait:stack_delete_complete") < operations.index("delete_bucket")
    deleted = {(c[2], json.dumps(c[3], sort_keys=True)) for c in aws.calls}
    assert ("delete_table", json.dumps({"TableName": "dockless-prod-tags"})) in deleted
    assert ("delete_secret", json.dumps({"SecretId": "arn:token"})) in deleted
    objects = next(c[3] for c in aws.calls if c[2] == "delete_objects")
    assert objects["Delete"]["Objects"] == [{"Key": "blobs/sha256/aa"}, {"Key": "manifests/sha256/bb"}]
    assert "dockless-prod-APIHandler-x" not in json.dumps([c[3] for c in aws.calls])


def test_the_command_refuses_a_domain_without_its_certificate(tmp_path):
    from click.testing import CliRunner

    from dockless.cli import main
    result = CliRunner().invoke(main, ["deploy", "--stage", "prod", "--region", "eu-west-1",
                                       "--domain", "registry.example.com"])
    assert result.exit_code == 2
    assert "--domain and --certificate-arn go together" in result.output


def test_rotating_the_registry_key_writes_a_new_one_to_the_stages_secret():
    aws, said = FakeAWS(stacks={"dockless-prod"}, registry_key="OLD KEY"), []
    assert deployer(aws, said=said, signing_key=lambda t: "NEW KEY").rotate_registry_key() is True
    (written,) = [c[3] for c in aws.calls if c[2] == "put_secret_value"]
    assert written == {"SecretId": "arn:registry-key", "SecretString": "NEW KEY"}
    with pytest.raises(DeployError, match="deploy it first"):
        deployer(FakeAWS()).rotate_registry_key()


def test_a_rerun_adds_a_cosign_key_beside_an_older_registrys_gpg_key():
    aws = FakeAWS(stacks={"dockless-prod", "dockless-prod-eu-west-1-edge"},
                  buckets={"dockless-artifacts-123456789012-eu-west-1"}, registry_key="ARMORED KEY")
    said = []
    deployer(aws, Admins(exists=True), said).deploy()
    (written,) = [c[3] for c in aws.calls if c[2] == "put_secret_value"]
    assert written["SecretString"].startswith("ARMORED KEY\n")  # the GPG key stays, first
    key = cosign.private_key(written["SecretString"])
    assert key is not None and key.key.curve.name == "secp256r1"
    assert "adding the registry's cosign key (automatic signing in cosign's format)" in said
