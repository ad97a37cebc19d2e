"""What the functions may do in AWS: the calls the code makes, on this stack's resources only.

`policy()` is the document in `.chalice/policy-<stage>.json` (`autogen_policy` is off): Chalice
puts it in the functions' role, and CloudFormation resolves its references (`Fn::GetAtt`, `Ref`,
`Fn::Sub`) to the stack's own bucket, tables, secrets and parameter. `tests/infra/test_iam.py`
checks it against every AWS call the test suite recorded (chalicelib/runtime/observe.py, including the
operations behind presigned URLs): a recorded call the policy does not allow fails, and so does
an allowed action no recorded call needs unless `UNRECORDED` lists it with its reason.
"""
from typing import Dict, List, Optional, Tuple

from chalicelib.metadata.models import TABLES
from chalicelib.storage import paths

from infra.stack import LOG_GROUP_ARN, public_url_parameter, table_id, table_prefix

# DynamoDB, per table (chalicelib/metadata/models.py): actions on the table, and per index queried.
TABLE_ACTIONS: Dict[str, Dict[Optional[str], List[str]]] = {
    "repositories": {None: ["BatchGetItem", "ConditionCheckItem", "DeleteItem", "GetItem", "Query", "UpdateItem"]},
    "blob-links": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "Scan", "UpdateItem"],
                   "by_digest": ["Query"]},
    "manifests": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "Scan", "UpdateItem"],
                  "by_subject": ["Query"]},
    "tags": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"]},
    "uploads": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Scan", "UpdateItem"]},
    "principals": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Scan", "UpdateItem"]},
    "credentials": {None: ["BatchGetItem", "GetItem", "PutItem", "Scan", "UpdateItem"]},
    "grants": {None: ["BatchGetItem", "DeleteItem", "PutItem", "Query", "Scan"]},
    "audit": {None: ["PutItem", "Query", "Scan"], "by_actor": ["Query"]},
    "settings": {None: ["BatchGetItem", "GetItem", "PutItem", "Scan"]},
    "signing-keys": {None: ["DeleteItem", "PutItem", "Query"]},
    "signatures": {None: ["DeleteItem", "PutItem", "Query"]},
    "tag-history": {None: ["PutItem", "Query"], "by_tag": ["Query"]},
    "gc-candidates": {None: ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Scan", "UpdateItem"]},
    "mirror-rules": {None: ["DeleteItem", "PutItem", "Scan"]},
    "signin-failures": {None: ["BatchGetItem", "DeleteItem", "UpdateItem"]},
    "namespace-storage": {None: ["BatchGetItem", "ConditionCheckItem", "DeleteItem", "PutItem", "UpdateItem"]},
    "jobs": {None: ["GetItem", "UpdateItem"]},
    "webhooks": {None: ["DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"]},
    "webhook-deliveries": {None: ["GetItem", "PutItem", "Query", "UpdateItem"]},
    "advisories": {None: ["BatchWriteItem", "Query"]},
    "scans": {None: ["GetItem", "PutItem", "Query", "Scan", "UpdateItem"]},
}
# S3, per key prefix (chalicelib/storage/paths.py), and on the bucket itself (listing).
OBJECT_ACTIONS: Dict[str, List[str]] = {
    paths.BLOBS_PREFIX: ["DeleteObject", "GetObject", "ListMultipartUploadParts", "PutObject"],
    paths.MANIFESTS_PREFIX: ["DeleteObject", "GetObject", "PutObject"],
    paths.UPLOADS_PREFIX: ["DeleteObject", "GetObject", "PutObject"],
    paths.AUDIT_PREFIX: ["PutObject"],
}
BUCKET_ACTIONS = ["ListBucket"]
SECRETS = ["TokenSigningKey", "RegistrySigningKey", "SsoClientSecret"]
# Pull-through caches' upstream passwords (chalicelib/pullthrough/proxy.py): secrets the API makes and deletes
# itself, named "<table prefix>/cache/<namespace>".
CACHE_SECRET_ACTIONS = ["CreateSecret", "DeleteSecret", "GetSecretValue", "PutSecretValue"]

# The events' queues (chalicelib/events/delivery.py; infra/stack.py QUEUES) and what is done with them.
QUEUE_ACTIONS: Dict[str, List[str]] = {
    "EventsQueue": ["DeleteMessage", "ReceiveMessage", "SendMessage"],
    "DeliveriesQueue": ["ChangeMessageVisibility", "DeleteMessage", "ReceiveMessage", "SendMessage"],
    "DeadLetterQueue": ["SendMessage"],
    "ScansQueue": ["DeleteMessage", "ReceiveMessage", "SendMessage"],
}

# Allowed although no test records them, each with its reason.
UNRECORDED: List[Tuple[str, str, str]] = [
    ("logs:CreateLogGroup", "logs", "the Lambda runtime writes the functions' logs, not our code"),
    ("sqs:GetQueueAttributes", "queues", "Lambda's event source mappings read the queues' attributes, not our code"),
    ("logs:CreateLogStream", "logs", "the Lambda runtime writes the functions' logs, not our code"),
    ("logs:PutLogEvents", "logs", "the Lambda runtime writes the functions' logs, not our code"),
    ("s3:AbortMultipartUpload", paths.BLOBS_PREFIX,
     "only when a multipart write fails half-way (ObjectStore.abort_multipart, MultipartWriter.abort)"),
]

# The IAM action each recorded operation needs (S3 and DynamoDB transactions differ from their names).
S3_OPERATIONS = {
    "HeadObject": "GetObject", "GetObject": "GetObject", "PutObject": "PutObject",
    "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
    "DeleteObject": "DeleteObject", "DeleteObjects": "DeleteObject", "ListObjectsV2": "ListBucket",
    "ListParts": "ListMultipartUploadParts", "AbortMultipartUpload": "AbortMultipartUpload",
}
TRANSACT_ITEMS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                  "ConditionCheck": "ConditionCheckItem"}


def iam_action(service: str, operation: str, detail: Optional[str]) -> str:
    """The IAM action behind one recorded call (and, for a transaction, one of its items)."""
    if service == "s3":
        return "s3:" + S3_OPERATIONS[operation]
    if service == "dynamodb" and operation == "TransactWriteItems":
        return "dynamodb:" + TRANSACT_ITEMS[detail]
    if service == "sqs" and operation.endswith("Batch"):  # a batch is authorised as its single form
        return "sqs:" + operation[:-len("Batch")]
    return f"{service}:{operation}"


def _arn(table: str, index: Optional[str]) -> dict:
    if index is None:
        return {"Fn::GetAtt": [table, "Arn"]}
    return {"Fn::Sub": f"${{{table}.Arn}}/index/{index}"}


def policy(stage: str) -> dict:
    statements = []
    for concern in TABLES.values():
        for index, actions in TABLE_ACTIONS[concern].items():
            statements.append({"Sid": (table_id(concern) + (index or "")).replace("_", ""), "Effect": "Allow",
                               "Action": [f"dynamodb:{action}" for action in actions],
                               "Resource": _arn(table_id(concern), index)})
    unrecorded_s3 = {prefix: [action] for action, prefix, _ in UNRECORDED if action.startswith("s3:")}
    for prefix, actions in OBJECT_ACTIONS.items():
        statements.append({"Sid": "Objects" + prefix.strip("/").title(), "Effect": "Allow",
                           "Action": sorted([f"s3:{action}" for action in actions] + unrecorded_s3.get(prefix, [])),
                           "Resource": {"Fn::Sub": f"${{Blobs.Arn}}/{prefix}*"}})
    statements.append({"Sid": "Bucket", "Effect": "Allow", "Action": [f"s3:{a}" for a in BUCKET_ACTIONS],
                       "Resource": {"Fn::GetAtt": ["Blobs", "Arn"]}})
    statements.append({"Sid": "Secrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                       "Resource": [{"Ref": secret} for secret in SECRETS]})
    statements.append({"Sid": "CacheSecrets", "Effect": "Allow",
                       "Action": [f"secretsmanager:{action}" for action in CACHE_SECRET_ACTIONS],
                       "Resource": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
                                    f":secret:{table_prefix(stage)}/cache/*"}})
    for queue, actions in QUEUE_ACTIONS.items():
        extra = ["sqs:GetQueueAttributes"] if queue != "DeadLetterQueue" else []
        statements.append({"Sid": queue, "Effect": "Allow", "Action": sorted([f"sqs:{a}" for a in actions] + extra),
                           "Resource": {"Fn::GetAtt": [queue, "Arn"]}})
    statements.append({"Sid": "EventBus", "Effect": "Allow", "Action": ["events:PutEvents"],
                       "Resource": {"Fn::GetAtt": ["EventBus", "Arn"]}})
    statements.append({"Sid": "PublicUrl", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                       # By name, not by reference: the parameter depends on the distribution, which depends
                       # on the API, whose functions use this role.
                       "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                                    + public_url_parameter(stage)}})
    statements.append({"Sid": "Logs", "Effect": "Allow",
                       "Action": [action for action, where, _ in UNRECORDED if where == "logs"],
                       "Resource": {"Fn::Sub": LOG_GROUP_ARN + ":*"}})
    return {"Version": "2012-10-17", "Statement": statements}
