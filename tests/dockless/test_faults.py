"""Faults as AWS answers them (dockless/local/faults.py), and what the registry does with them
(chalicelib/runtime/retries.py): a conflicted write is sent again, throttling is left to
botocore, and what stays busy is a 503 with Retry-After, never a 500. The faults tier
(tests/e2e/test_faults.py) drives docker and skopeo through a busy stack."""
import json
import time

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


def test_a_transaction_that_conflicted_past_its_retries_is_busy_as_pynamodb_raises_it(busy_aws, monkeypatch):
    """pynamodb wraps botocore's cancellation in errors of its own whose answer keeps the code but
    not the reasons: what dispatch asks (`retries.busy`) finds them in botocore's, behind."""
    from pynamodb.connection import Connection
    from pynamodb.exceptions import TransactWriteError
    monkeypatch.setattr(retries, "CONFLICT_ATTEMPTS", 1)
    connection = Connection(region="us-east-1", host=busy_aws.internal_url, max_retry_attempts=0,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key="local-secret")
    with pytest.raises(TransactWriteError) as raised:
        connection.transact_write_items(condition_check_items=[], delete_items=[], update_items=[],
                                        put_items=[{"TableName": "t", "Item": {"k": {"S": "1"}}}])
    assert raised.value.cause.response["Error"]["Code"] == "TransactionCanceledException"
    assert retries.busy(raised.value)


def _create(faults, table="t"):
    with faults.holding("DynamoDB_20120810.CreateTable", json.dumps(
            {"TableName": table, "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}]}).encode()):
        pass


def _transaction(*keys, get=False):
    part = "Get" if get else "Put"
    items = [{part: {"TableName": "t", **({"Key": {"k": {"S": k}}} if get else {"Item": {"k": {"S": k}, "v": {"N": "1"}}})}}
             for k in keys]
    return ("DynamoDB_20120810.TransactGetItems" if get else "DynamoDB_20120810.TransactWriteItems",
            json.dumps({"TransactItems": items}).encode())


def _update(key):
    return "DynamoDB_20120810.UpdateItem", json.dumps({"TableName": "t", "Key": {"k": {"S": key}}}).encode()


def _answered(answer):
    status, _, body = answer
    return status, json.loads(body)


def test_writes_that_overlap_conflict_as_dynamodb_answers_them():
    """dynamodb.Contention: what AWS does when two writes hold one item at once, by the item's key
    (a Put's key read from the table's CreateTable), while they are carried out."""
    faults = Faults.parse("dynamodb.Contention")
    faults.transaction_hold_seconds = 0
    _create(faults)
    faults.arm()
    with faults.holding(*_transaction("a", "b")) as first:
        assert first is None  # nothing held: it goes through, holding a and b
        with faults.holding(*_transaction("c", "b", "d")) as second:
            status, answer = _answered(second)
            assert status == 400 and answer["__type"].endswith("#TransactionCanceledException")
            assert [r["Code"] for r in answer["CancellationReasons"]] == ["None", "TransactionConflict", "None"]
        with faults.holding(*_update("a")) as single:
            assert _answered(single)[1]["__type"].endswith("#TransactionConflictException")
        with faults.holding(*_transaction("a", get=True)) as read:
            assert _answered(read)[1]["CancellationReasons"][0]["Code"] == "TransactionConflict"
        with faults.holding(*_transaction("c")) as elsewhere:
            assert elsewhere is None  # another item: no conflict
    with faults.holding(*_transaction("c", "b", "d")) as after:
        assert after is None  # answered, the first holds nothing
    with faults.holding(*_update("x")) as one, faults.holding(*_update("x")) as two:
        assert one is None and two is None  # single writes of one item queue; they do not conflict
        with faults.holding(*_transaction("x")) as behind:
            assert _answered(behind)[1]["CancellationReasons"][0]["Code"] == "TransactionConflict"
    assert faults.injected["dynamodb.Contention"] == 4


def test_contention_waits_for_the_stack_to_be_armed():
    faults = Faults.parse("dynamodb.Contention")
    _create(faults)
    with faults.holding(*_transaction("a")) as first, faults.holding(*_transaction("a")) as second:
        assert first is None and second is None


def test_a_transaction_holds_its_items_a_moment_after_its_answer():
    """DynamoDB takes tens of milliseconds to commit a transaction, the local one none: a
    transaction carried out just after another that named the same item conflicts with it."""
    faults = Faults.parse("dynamodb.Contention")
    faults.transaction_hold_seconds = 0.2
    _create(faults)
    faults.arm()
    with faults.holding(*_transaction("a")) as first:
        assert first is None
    with faults.holding(*_transaction("a")) as soon:
        assert _answered(soon)[1]["CancellationReasons"][0]["Code"] == "TransactionConflict"
    with faults.holding(*_update("a")) as single:
        assert single is not None  # a single write too
    time.sleep(0.25)
    with faults.holding(*_transaction("a")) as later:
        assert later is None
    time.sleep(0.25)
    with faults.holding(*_update("b")):
        # What ended is forgotten: a long-running stack keeps only the items held now.
        assert list(faults._held) == [("t", '{"k": {"S": "b"}}')]
