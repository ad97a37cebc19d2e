"""`dockless deploy` and `dockless destroy`: one team's registry in its own AWS account.

deploy, with the credentials in the environment (safe to re-run: it updates in place and never
deletes anything):
  1. package: `chalice package --merge-template` (infra/package.py) -> sam.json + deployment.zip
  2. artifacts bucket `dockless-artifacts-<account>-<region>` (private, encrypted), created once;
     the code and template go there (CloudFormation reads templates over 51,200 bytes from S3)
  3. stack `dockless-<stage>-<region>-edge` in us-east-1 (Lambda@Edge lives there only): its version ARN
  4. stack `dockless-<stage>`: create, or update (an update with no change is not an error)
  5. the first admin: a token generated here, printed once, stored only as its hash; skipped
     when the stage already has an admin
  6. the registry's GPG signing key (automatic signing), generated here and stored in its secret,
     once, when gpg is installed; otherwise later with `dockless key rotate-registry`
  7. a warning when the account's Lambda concurrency is below CONCURRENCY_FLOOR
  8. `dockless check` against the new registry with the admin token just made (dockless/deploy/check.py)

destroy deletes both stacks. The bucket, tables and secrets are retained by their deletion
policy; they go too only with `--delete-data <stage>` (the stage named a second time).
"""
import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

from chalicelib.signing import cosign
from infra import stack

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]  # the role; SAM's transform
NO_UPDATES = "No updates are to be performed"
# Concurrent Lambda executions below which parallel pulls throttle: `docker pull` of a 20-layer
# image makes about 26 requests, some in parallel, and a CI fleet pulls at once. New accounts
# start far lower (10); the default quota is 1,000.
CONCURRENCY_FLOOR = 100
RAISE_CONCURRENCY = ("ask for more in Service Quotas: AWS Lambda > Concurrent executions "
                     "(https://console.aws.amazon.com/servicequotas/home/services/lambda/quotas)")


class DeployError(Exception):
    pass



@dataclasses.dataclass
class Target:
    stage: str
    region: str
    domain: str = ""
    certificate_arn: str = ""
    gpg_layer_arn: str = ""
    alarm_email: str = ""
    door: str = stack.API_GATEWAY_DOOR
    # Single sign-on for people (docs/access.md): the provider's issuer, the registry's client id
    # there, GROUP=TEAM pairs; the client's secret goes to the stack's SsoClientSecret secret.
    sso_issuer: str = ""
    sso_client_id: str = ""
    sso_teams: str = ""
    sso_client_secret: Optional[str] = None
    sso_scopes: str = "openid profile email"
    # https URLs of OSV advisories the registry imports daily (docs/scanning.md).
    advisory_feeds: str = ""
    # How long the functions' log groups keep each request's record (one of CloudWatch's periods).
    log_retention_days: int = stack.LOG_RETENTION_DAYS

    @property
    def stack(self) -> str:
        return stack.stack_name(self.stage)

    @property
    def edge_stack(self) -> str:
        """In us-east-1 whatever the registry's region: named for both, so that one stage in two
        regions keeps two edge stacks."""
        return f"{self.stack}-{self.region}-edge"


def _missing(error) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in ("404", "NoSuchBucket", "NotFound", "ResourceNotFoundException") or "does not exist" in message


class Deployer:
    """The plan, against injected clients: `clients(service, region)` returns a boto3 client."""

    def __init__(self, target: Target, clients: Callable, say: Callable[[str], None],
                 packager: Callable = None, bootstrap_admin: Callable = None, signing_key: Callable = None,
                 checker: Callable = None):
        from botocore.exceptions import ClientError
        self.target, self._clients, self.say = target, clients, say
        self._client_error = ClientError
        self._packager = packager or _package
        self._bootstrap_admin = bootstrap_admin or _bootstrap_admin
        self._signing_key = signing_key or _new_signing_key
        self._checker = checker or _check

    def client(self, service: str, region: Optional[str] = None):
        return self._clients(service, region or self.target.region)

    # --- deploy ------------------------------------------------------------------------------

    def deploy(self) -> dict:
        target = self.target
        account = self.client("sts").get_caller_identity()["Account"]
        with tempfile.TemporaryDirectory(prefix="dockless-package-") as out:
            self.say(f"packaging stage {target.stage} for {target.region}")
            template = json.loads(Path(self._packager(target.stage, Path(out), target.region)).read_text())
            bucket = self._artifacts_bucket(account)
            code_key = self._upload(bucket, Path(out) / "deployment.zip")
            for resource in template["Resources"].values():
                if resource.get("Type") == "AWS::Serverless::Function":
                    resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": code_key}
            template_path = Path(out) / "template.json"
            template_path.write_text(json.dumps(template))
            template_key = self._upload(bucket, template_path)
        edge = self._apply(target.edge_stack, stack.EDGE_REGION,
                           TemplateBody=json.dumps(stack.edge_template()))
        parameters = {"EdgeFunctionVersionArn": edge["VersionArn"], "DomainName": target.domain,
                      "CertificateArn": target.certificate_arn, "GpgLayerArn": target.gpg_layer_arn,
                      "AlarmEmail": target.alarm_email, "Door": target.door, "SsoIssuer": target.sso_issuer,
                      "SsoClientId": target.sso_client_id, "SsoTeams": target.sso_teams, "SsoScopes": target.sso_scopes,
                      "AdvisoryFeeds": target.advisory_feeds, "LogRetentionDays": str(target.log_retention_days)}
        outputs = self._apply(target.stack, target.region,
                              TemplateURL=f"https://{bucket}.s3.{target.region}.amazonaws.com/{template_key}",
                              Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
        token = self._bootstrap_admin(target, outputs)
        if token:
            self.say(f"admin token (shown once; user admin): {token}")
        else:
            self.say("the stage already has an admin; no token created")
        self._ensure_registry_key(outputs["RegistrySigningKeySecret"])
        if target.sso_client_secret is not None:
            self.say("storing the single sign-on client's secret")
            self.client("secretsmanager").put_secret_value(SecretId=outputs["SsoClientSecret"],
                                                           SecretString=target.sso_client_secret or " ")
        self._check_concurrency()
        if token:
            self.say("checking the deployment (dockless check)")
            outputs["CheckPassed"] = self._checker(outputs, token, self.say)
        else:
            self.say(f"prove it: DOCKLESS_USERNAME=admin DOCKLESS_PASSWORD=<its token> dockless check "
                     f"{outputs['PublicUrl']} --origin {outputs.get('OriginUrl', '')}")
        return outputs

    def _check_concurrency(self) -> None:
        limit = self.client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
        if limit < CONCURRENCY_FLOOR:
            self.say(f"warning: this account runs at most {limit} Lambda functions at once; parallel pulls "
                     f"beyond that are throttled (5xx). {RAISE_CONCURRENCY[0].upper()}{RAISE_CONCURRENCY[1:]}.")

    def _artifacts_bucket(self, account: str) -> str:
        s3, name = self.client("s3"), f"dockless-artifacts-{account}-{self.target.region}"
        try:
            s3.head_bucket(Bucket=name)
            return name
        except self._client_error as error:
            if not _missing(error):
                raise
        self.say(f"creating artifacts bucket {name}")
        location = ({} if self.target.region == "us-east-1"
                    else {"CreateBucketConfiguration": {"LocationConstraint": self.target.region}})
        s3.create_bucket(Bucket=name, **location)
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        return name

    def _upload(self, bucket: str, path: Path) -> str:
        """Content-addressed, so a re-run with the same code changes nothing."""
        data = path.read_bytes()
        key = f"{self.target.stage}/{hashlib.sha256(data).hexdigest()}{path.suffix}"
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
        return key

    def _apply(self, name: str, region: str, **template) -> Dict[str, str]:
        """Create or update one stack and wait; returns its outputs."""
        cloudformation = self.client("cloudformation", region)
        exists = self._stack(cloudformation, name) is not None
        arguments = dict(StackName=name, Capabilities=CAPABILITIES, **template)
        try:
            if exists:
                self.say(f"updating stack {name} ({region})")
                cloudformation.update_stack(**arguments)
                cloudformation.get_waiter("stack_update_complete").wait(StackName=name)
            else:
                self.say(f"creating stack {name} ({region})")
                cloudformation.create_stack(**arguments, OnFailure="ROLLBACK")
                cloudformation.get_waiter("stack_create_complete").wait(StackName=name)
        except self._client_error as error:
            if NO_UPDATES not in str(error):
                raise
            self.say(f"stack {name}: no changes")
        return {o["OutputKey"]: o["OutputValue"] for o in self._stack(cloudformation, name).get("Outputs", [])}

    def _stack(self, cloudformation, name: str) -> Optional[dict]:
        try:
            (found,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except self._client_error as error:
            if _missing(error):
                return None
            raise
        if found["StackStatus"] == "ROLLBACK_COMPLETE":
            raise DeployError(f"stack {name} failed to create (ROLLBACK_COMPLETE); see its events, then "
                              f"`dockless destroy --stage {self.target.stage}` and deploy again")
        return found

    def _ensure_registry_key(self, secret_id: str) -> None:
        secrets = self.client("secretsmanager")
        held = secrets.get_secret_value(SecretId=secret_id)["SecretString"].strip()
        if not held:
            self.rotate_registry_key(secret_id)
        elif not cosign.PRIVATE_BLOCK.search(held):
            # A registry deployed before it signed in cosign's format: its GPG key stays, a cosign key joins it.
            self.say("adding the registry's cosign key (automatic signing in cosign's format)")
            secrets.put_secret_value(SecretId=secret_id, SecretString=held + "\n" + cosign.generate_private_key())

    def rotate_registry_key(self, secret_id: Optional[str] = None) -> bool:
        """A new signing key for the registry in its secret (the old one's signatures still verify:
        its public key stays under /keys/_registry). False, with advice, where gpg is missing."""
        if secret_id is None:
            outputs = self._stack(self.client("cloudformation"), self.target.stack)
            if outputs is None:
                raise DeployError(f"no stack {self.target.stack} in {self.target.region}: deploy it first")
            secret_id = next(o["OutputValue"] for o in outputs["Outputs"] if o["OutputKey"] == "RegistrySigningKeySecret")
        try:
            armored = self._signing_key(self.target)
        except (OSError, RuntimeError) as missing:
            self.say(f"no registry signing key made ({missing}): automatic signing stays off. Install gpg "
                     f"(apt-get install gnupg), then run: dockless key rotate-registry --stage {self.target.stage} "
                     f"--region {self.target.region}")
            return False
        self.say("generating the registry's signing key (for automatic signing)")
        self.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=armored)
        return True

    # --- destroy -----------------------------------------------------------------------------

    def destroy(self, delete_data: Optional[str] = None) -> None:
        target = self.target
        if delete_data is not None and delete_data != target.stage:
            raise DeployError(f"--delete-data must name the stage again ({target.stage!r}) to delete its data")
        cloudformation = self.client("cloudformation")
        retained = []
        if self._stack(cloudformation, target.stack) is not None:
            retained = [r for r in cloudformation.describe_stack_resources(StackName=target.stack)["StackResources"]
                        if r["ResourceType"] in stack.DATA_TYPES]
            self.say(f"deleting stack {target.stack} ({target.region})")
            cloudformation.delete_stack(StackName=target.stack)
            cloudformation.get_waiter("stack_delete_complete").wait(StackName=target.stack)
        edge = self.client("cloudformation", stack.EDGE_REGION)
        if self._stack(edge, target.edge_stack) is not None:
            # Lambda@Edge replicas are removed by CloudFront some hours after the distribution;
            # until then this delete fails and can be repeated.
            self.say(f"deleting stack {target.edge_stack} ({stack.EDGE_REGION})")
            edge.delete_stack(StackName=target.edge_stack)
        if delete_data is None:
            for resource in retained:
                self.say(f"kept {resource['ResourceType']} {resource['PhysicalResourceId']}")
            if retained:
                self.say(f"data kept; to delete it too: dockless destroy --stage {target.stage} "
                         f"--delete-data {target.stage}")
            return
        for resource in retained:
            self._delete(resource["ResourceType"], resource["PhysicalResourceId"])

    def _delete(self, kind: str, name: str) -> None:
        self.say(f"deleting {kind} {name}")
        if kind == "AWS::S3::Bucket":
            s3 = self.client("s3")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=name, Delete={"Objects": keys})
            s3.delete_bucket(Bucket=name)
        elif kind == "AWS::DynamoDB::Table":
            self.client("dynamodb").delete_table(TableName=name)
        elif kind == "AWS::SecretsManager::Secret":
            self.client("secretsmanager").delete_secret(SecretId=name)


def _package(stage: str, outdir: Path, region: str) -> Path:
    from infra.package import package
    return package(stage, outdir, region)


def _check(outputs: Dict[str, str], token: str, say: Callable[[str], None]) -> bool:
    from dockless.deploy.check import Check
    return not [v for v in Check(outputs["PublicUrl"], "admin", token, origin=outputs.get("OriginUrl"),
                                 say=say).run() if v.status == "FAIL"]


def _new_signing_key(target: Target) -> str:
    """The registry's keys, in its one secret: an armoured GPG secret key, then a cosign key (PEM)."""
    from chalicelib.signing import gpg
    return gpg.generate_signing_key(f"dockless registry {target.stage}") + "\n" + cosign.generate_private_key()


def _bootstrap_admin(target: Target, outputs: Dict[str, str]) -> Optional[str]:
    """User `admin` with a new token unless the stage has one; the token is returned to be shown
    once, and only its hash is stored (the same code as the local stack's bootstrap)."""
    from chalicelib.access.service import AuthService
    from chalicelib.runtime.config import Settings
    from chalicelib.metadata.models import Principal
    from chalicelib.backend import build_backend
    backend = build_backend(Settings.from_environ({
        "AWS_DEFAULT_REGION": target.region, "DOCKLESS_BUCKET": outputs["Bucket"],
        "DOCKLESS_TABLE_PREFIX": outputs["TablePrefix"], "DOCKLESS_PUBLIC_URL": outputs.get("PublicUrl", "")}))
    try:
        Principal.get("admin")
        return None
    except Principal.DoesNotExist:
        pass
    return AuthService(backend).bootstrap_admin(description="bootstrap (dockless deploy)")


def boto3_clients(service: str, region: str):
    import boto3
    return boto3.client(service, region_name=region)
