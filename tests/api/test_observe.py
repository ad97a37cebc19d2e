"""The per-request record: every AWS call with its resources, presigned URLs, consumed capacity,
the principal, and the embedded-metric-format block CloudWatch reads."""
import json
import logging


def records(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "dockless.request"]


def test_a_push_and_pull_record_calls_units_presigned_urls_and_metrics(client, push, caplog, tmp_path, monkeypatch):
    call_log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("DOCKLESS_AWS_CALL_LOG", str(call_log))
    caplog.set_level(logging.INFO, logger="dockless.request")
    _, digest = push.image("team/app", "1", layers=(b"layer",))
    layer = "sha256:" + __import__("hashlib").sha256(b"layer").hexdigest()
    assert client.get(f"/v2/team/app/blobs/{layer}").status_code == 307
    put, get = [r for r in records(caplog) if r["route"].startswith("/v2/{name}/manifests") or r["route"].startswith("/v2/{name}/blobs/{digest}")][-2:]
    assert put["method"] == "PUT" and "dynamodb:TransactWriteItems" in put["aws_calls"]
    assert put["dynamodb_write_units"] > 0 and put["principal"] == "admin"
    assert get["presigned_urls"] == ["s3:GetObject"] and get["aws_calls"] == ["dynamodb:BatchGetItem"]
    assert get["dynamodb_read_units"] > 0 and get["invocations"] == 1
    metrics = get["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == "dockless" and metrics["Dimensions"] == [[]]  # one series, not one a route
    assert {m["Name"] for m in metrics["Metrics"]} >= {"Requests", "ServerErrors", "Latency", "DynamoDBUnits"}
    assert all(isinstance(get[m["Name"]], (int, float)) for m in metrics["Metrics"])
    logged = [json.loads(line) for line in call_log.read_text().splitlines()]
    assert {"service": "s3", "operation": "GetObject", "presigned": True,
            "resources": [["bucket", "test-bucket", f"blobs/sha256/{layer[7:]}"]]} in logged
    transactions = [c for c in logged if c["operation"] == "TransactWriteItems"]
    assert any(["table", "test-tags", "Put"] in c["resources"] for c in transactions)


def test_the_record_names_who_called_an_authenticated_ping_and_no_one_for_a_challenge(client, anonymous, caplog):
    caplog.set_level(logging.INFO, logger="dockless.request")
    assert client.get("/v2/").status_code == 200
    assert anonymous.get("/v2/").status_code == 401
    assert [(r["route"], r["status"], r["principal"]) for r in records(caplog)] == [("/v2/", 200, "admin"),
                                                                                   ("/v2/", 401, None)]
