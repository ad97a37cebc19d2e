"""Faults as AWS answers them (dockless/local/faults.py), and what the registry does with them
(chalicelib/runtime/retries.py): a conflicted write is sent again, throttling is left to
botocore, and what stays busy is a 503 with Retry-After, never a 500. The faults tier
(tests/e2e/test_faults.py) drives docker and skopeo through a busy stack."""
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.runtime import retries
from dockless.local.aws import ACCESS_KEY_ID, LocalAws
from dockless.local.faults import Faults

ONE_TRY = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.mark.parametrize("spec, said", [
    ("dynamodb.Nope=0.1", "unknown fault 'dynamodb.Nope'"),
    ("s3.SlowDown=2", "between 0 and 1"),
    ("s3.SlowDown=often", "between 0 and 1"),
])
def test_a_wrong_fault_spec_says_what_is_wrong(spec, said):
    with pytest.raises(ValueError, match=said):
        Faults.parse(spec)


def test_a_spec_reads_as_rates():
    assert Faults.parse("dynamodb.TransactionConflict=0.2, s3.SlowDown=0.05").rates == {
        "dynamodb.TransactionConflict": 0.2, "s3.SlowDown": 0.05}
    assert Faults.parse("") is None


@pytest.fixture(scope="module")
def busy_aws():
    faults = Faults.parse("dynamodb.TransactionConflict=1,s3.SlowDown=1", seed=7)
    aws = LocalAws("127.0.0.1", "local-secret", faults=faults)
    aws.start()
    faults.arm()
    yield aws
    aws.stop()


def client(aws, service):
    return boto3.client(service, endpoint_url=aws.internal_url, region_name="us-east-1", config=ONE_TRY,
                        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key="local-secret")


def test_a_transaction_is_cancelled_as_dynamodb_cancels_one_that_another_holds(busy_aws):
    items = [{"Put": {"TableName": "t", "Item": {"k": {"S": str(n)}}}} for n in range(3)]
    with pytest.raises(ClientError) as refused:
        client(busy_aws, "dynamodb").transact_write_items(TransactItems=items)
    answer = refused.value.response
    assert answer["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in answer["CancellationReasons"]]
    assert len(reasons) == 3 and reasons.count("TransactionConflict") == 1 and reasons.count("None") == 2
    with pytest.raises(ClientError) as single:
        client(busy_aws, "dynamodb").put_item(TableName="t", Item={"k": {"S": "x"}})
    assert single.value.response["Error"]["Code"] == "TransactionConflictException"


def test_reads_never_conflict_and_s3_slows_down_with_503(busy_aws):
    with pytest.raises(ClientError) as read:
        client(busy_aws, "dynamodb").get_item(TableName="missing", Key={"k": {"S": "x"}})
    assert read.value.response["Error"]["Code"] == "ResourceNotFoundException"  # moto's own answer
    with pytest.raises(ClientError) as slow:
        client(busy_aws, "s3").list_buckets()
    assert slow.value.response["Error"]["Code"] == "SlowDown"
    assert slow.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def parsed(code, reasons=None):
    answer = {"Error": {"Code": code}}
    if reasons is not None:
        answer["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return None, answer


@pytest.mark.parametrize("answer, retried", [
    (parsed("TransactionCanceledException", ["None", "TransactionConflict"]), True),
    (parsed("TransactionConflictException"), True),
    (parsed("TransactionCanceledException", ["ConditionalCheckFailed", "TransactionConflict"]), False),
    (parsed("TransactionCanceledException", ["None", "ConditionalCheckFailed"]), False),
    (parsed("ValidationException"), False),
])
def test_only_a_write_that_merely_conflicted_is_sent_again(answer, retried):
    delay = retries.on_needs_retry(response=answer, attempts=1)
    assert (delay is not None) == retried
    if retried:
        assert 0 <= delay <= retries.MAX_DELAY_SECONDS
        assert retries.on_needs_retry(response=answer, attempts=retries.CONFLICT_ATTEMPTS) is None
