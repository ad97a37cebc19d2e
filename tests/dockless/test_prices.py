"""The cost arithmetic of chalicelib/lifecycle/prices.py on known records."""
import json

import pytest

from chalicelib.lifecycle import prices


def test_a_records_cost_adds_every_item_a_request_bills():
    record = {"latency_ms": 100.0, "dynamodb_read_units": 2.0, "dynamodb_write_units": 1.0,
              "aws_calls": ["dynamodb:GetItem", "s3:PutObject", "s3:HeadObject"], "presigned_urls": ["s3:GetObject"]}
    logged = (len(json.dumps(record, sort_keys=True, separators=(",", ":"))) + prices.LAMBDA_REPORT_BYTES) / prices.GiB
    expected = {
        "CloudFront": prices.CLOUDFRONT_HTTPS_PER_REQUEST,
        "CloudFront Functions": prices.CLOUDFRONT_FUNCTION_PER_INVOCATION,
        "Lambda@Edge": prices.EDGE_PER_REQUEST + prices.EDGE_PER_GB_SECOND * 0.125 * prices.EDGE_DURATION_MS / 1000,
        "API Gateway": prices.API_GATEWAY_REST_PER_REQUEST,
        "Lambda": prices.LAMBDA_PER_REQUEST + 0.0000133334 * 0.1,  # arm64's GB-second
        "CloudWatch Logs": logged * (0.50 + 0.03 * 400 / 30),
        "DynamoDB": 2 * prices.DYNAMODB_PER_READ_UNIT + prices.DYNAMODB_PER_WRITE_UNIT,
        "S3 requests": prices.S3_PER_PUT + 2 * prices.S3_PER_GET}
    items = prices.records_items([record])
    assert items == pytest.approx(expected)
    assert prices.records_cost([record, record]) == pytest.approx(2 * sum(expected.values()))
    # Behind the function URL door: the same, but no API Gateway fee.
    assert prices.records_items([record], "function-url") == pytest.approx(dict(expected, **{"API Gateway": 0.0}))


def test_a_pull_and_a_push_cost_less_behind_the_function_url_door_by_the_gateways_fee():
    """And a pull's blobs at the edge by the Lambda@Edge that API Gateway's blob behaviour keeps."""
    edge = prices.EDGE_PER_REQUEST + prices.EDGE_PER_GB_SECOND * prices.EDGE_MEMORY_GB * prices.EDGE_DURATION_MS / 1000
    for cost, requests, at_the_edge in ((prices.pull_cost, prices.PULL_REQUESTS, 21),
                                        (prices.push_cost, prices.PUSH_REQUESTS, 0)):
        saved = cost(20) - cost(20, "function-url")
        assert saved == pytest.approx((requests[0] * 20 + requests[1]) * prices.API_GATEWAY_REST_PER_REQUEST
                                      + at_the_edge * edge)


def test_a_blob_the_edge_serves_bills_cloudfront_its_gate_and_s3_alone():
    record = {"served_by": "edge", "invocations": 0, "latency_ms": 1.0, "dynamodb_read_units": 0,
              "dynamodb_write_units": 0, "aws_calls": [], "presigned_urls": ["s3:GetObject"], "query": {"x": "y" * 5000}}
    edge = prices.EDGE_PER_REQUEST + prices.EDGE_PER_GB_SECOND * prices.EDGE_MEMORY_GB * prices.EDGE_DURATION_MS / 1000
    expected = {"CloudFront": prices.CLOUDFRONT_HTTPS_PER_REQUEST,
                "CloudFront Functions": prices.CLOUDFRONT_FUNCTION_PER_INVOCATION,
                "DynamoDB": 0.0, "S3 requests": prices.S3_PER_GET}
    assert prices.records_items([record], "function-url") == pytest.approx(dict(expected, **{"Lambda@Edge": 0.0}))
    assert prices.records_items([record]) == pytest.approx(dict(expected, **{"Lambda@Edge": edge}))


def test_logs_kept_a_shorter_time_cost_their_storage_less():
    """The LogRetentionDays lever: ingestion stays, storage scales with the days kept."""
    kept = {days: prices.api_request(100, 1000, log_days=days)["CloudWatch Logs"] for days in (30, 400)}
    per_gb = (1000 + prices.LAMBDA_REPORT_BYTES) / prices.GiB
    assert kept[400] - kept[30] == pytest.approx(per_gb * prices.LOGS_STORAGE_PER_GB_MONTH * 370 / 30)
    assert prices.pull_cost(20, log_days=30) < prices.pull_cost(20) and prices.push_cost(20, log_days=30) < prices.push_cost(20)


def test_a_bigger_record_costs_more_to_log():
    small = {"latency_ms": 10.0, "dynamodb_read_units": 0, "dynamodb_write_units": 0, "aws_calls": [], "presigned_urls": []}
    big = {**small, "query": {"n": "x" * 10_000}}
    difference = prices.records_items([big])["CloudWatch Logs"] - prices.records_items([small])["CloudWatch Logs"]
    compact = {"separators": (",", ":")}  # as records are logged (observe.record_line)
    assert difference == pytest.approx((len(json.dumps(big, **compact)) - len(json.dumps(small, **compact))) / prices.GiB
                                       * (0.50 + 0.03 * 400 / 30))


def test_the_fixed_monthly_items_are_metrics_alarms_secrets_and_kms():
    fixed = prices.fixed_monthly()
    assert fixed == pytest.approx({
        "CloudWatch custom metrics (12)": 12 * 0.30,  # 5 request metrics, JobFailures x 5 jobs, 2 quota levels
        "CloudWatch alarms (65)": 6.50,
        "Secrets Manager secrets (5)": 2.00,
        "KMS requests for 22 encrypted tables (at most)": 22 * 12 * 730 * 0.03 / 10_000})


def test_monthly_estimate_is_storage_plus_scaled_operations():
    storage_only = prices.monthly_estimate(prices.GiB, 0, 0, days=30, layers_per_image=3)
    assert storage_only == pytest.approx(prices.S3_STORAGE_PER_GB_MONTH)
    a_week = prices.monthly_estimate(0, pushes=1, pulls=10, days=7, layers_per_image=3)
    assert a_week == pytest.approx(30 / 7 * (10 * prices.pull_cost(3) + prices.push_cost(3)))
    assert prices.pull_cost(20) > prices.pull_cost(1) > 0
    per_request = sum(prices.api_request(prices.MEASURED_LATENCY_MS).values())
    assert prices.pull_cost(1) > 4 * per_request > 4 * (prices.API_GATEWAY_REST_PER_REQUEST + prices.EDGE_PER_REQUEST)
