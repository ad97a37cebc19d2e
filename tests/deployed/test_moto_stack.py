"""The stack's data resources (infra/stack.py data_template) deployed to the moto server's
CloudFormation, and the registry run against what that stack created, with settings from its
outputs: `dockless push` and `dockless pull` round trip. Then each promised property that moto
reports is read back with Describe calls (the rest is asserted on the template in
tests/infra/test_stack.py, and listed in README as needing a real account)."""
import json

import boto3
import pytest

from chalicelib.metadata.models import TABLES
from dockless.images import sources
from dockless.images import transfer
from dockless.client.registry import RegistryClient
from dockless.local.stack import LocalStack
from chalicelib.oci.reference import Reference
from dockless.ui import UI
from infra import stack as infra_stack
from tests.e2e.images import OciLayout

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse")
STAGE = "smoke"
STACK = infra_stack.stack_name(STAGE)
# Resource types of the data stack that moto's CloudFormation does not create (it warns and goes
# on); their properties are checked on the template alone.
MOTO_SKIPS = {"AWS::S3::BucketPolicy", "AWS::SecretsManager::Secret"}


def aws(service, moto_url):
    """A client of the local stack's AWS, signing with the run's credentials (a new session reads
    them; boto3's default one keeps the first it saw)."""
    return boto3.session.Session().client(service, endpoint_url=moto_url, region_name="us-east-1")


def deploy_data_stack(moto_url):
    cloudformation = aws("cloudformation", moto_url)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(infra_stack.data_template(STAGE)))
    cloudformation.get_waiter("stack_create_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    # moto's CloudFormation skips secrets (MOTO_SKIPS): the token key stays the local stack's own.
    return {"DOCKLESS_BUCKET": outputs["Bucket"], "DOCKLESS_TABLE_PREFIX": outputs["TablePrefix"]}


@pytest.fixture(scope="module")
def deployed():
    local = LocalStack(port=0, provision=deploy_data_stack)
    local.start()
    yield local
    local.stop()


def test_push_and_pull_against_the_resources_the_stack_created(deployed, tmp_path):
    layout = OciLayout(tmp_path / "in")
    layout.tag(layout.add_image([300_000, 1_000]), "v1")
    client = RegistryClient(f"http://localhost:{deployed.port}", username="admin", password=deployed.admin_token)
    image = sources.read_oci_layout(layout.path, "v1")
    pushed = transfer.push(image, Reference.parse(f"localhost:{deployed.port}/team/app:1"), client, UI())
    pulled = transfer.pull(Reference.parse(f"localhost:{deployed.port}/team/app:1"), tmp_path / "out", client, UI())
    assert pushed.digest == image.top.digest == pulled
    bucket = aws("cloudformation", deployed.moto_url).describe_stack_resource(
        StackName=STACK, LogicalResourceId="Blobs")["StackResourceDetail"]["PhysicalResourceId"]
    keys = [o["Key"] for o in aws("s3", deployed.moto_url).list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(key.startswith("manifests/sha256/") for key in keys)
    tags = aws("dynamodb", deployed.moto_url).scan(TableName=f"dockless-{STAGE}-tags")["Items"]
    assert [item["repo"]["S"] for item in tags] == ["team/app"]


def test_moto_created_every_data_resource_but_the_ones_it_skips(deployed):
    created = {r["LogicalResourceId"]: r["ResourceType"] for r in aws("cloudformation", deployed.moto_url)
               .describe_stack_resources(StackName=STACK)["StackResources"] if r.get("PhysicalResourceId")}
    promised = {name: r["Type"] for name, r in infra_stack.data_resources(STAGE).items()}
    assert created == {name: kind for name, kind in promised.items() if kind not in MOTO_SKIPS}


def test_what_moto_reports_of_the_promised_properties(deployed):
    """moto 5.2 applies billing mode, keys, indexes and bucket encryption from the template; it
    creates no TTL, point-in-time recovery, lifecycle rules, public access block, bucket policy or
    secrets. Those are asserted on the template (tests/infra/test_stack.py) and listed in README as
    needing a real account."""
    dynamodb, s3 = aws("dynamodb", deployed.moto_url), aws("s3", deployed.moto_url)
    for model, concern in TABLES.items():
        name = f"dockless-{STAGE}-{concern}"
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {k["AttributeName"] for k in table["KeySchema"]} == {k["AttributeName"] for k in model._get_schema()["key_schema"]}
        assert sorted(i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])) == \
            sorted(i["index_name"] for i in model._get_schema()["global_secondary_indexes"])
    bucket = aws("cloudformation", deployed.moto_url).describe_stack_resource(
        StackName=STACK, LogicalResourceId="Blobs")["StackResourceDetail"]["PhysicalResourceId"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
