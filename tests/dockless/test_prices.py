"""The cost arithmetic of chalicelib/lifecycle/prices.py on known records."""
import pytest

from chalicelib.lifecycle import prices


def test_a_records_cost_adds_request_units_and_s3_requests():
    record = {"latency_ms": 100.0, "dynamodb_read_units": 2.0, "dynamodb_write_units": 1.0,
              "aws_calls": ["dynamodb:GetItem", "s3:PutObject", "s3:HeadObject"], "presigned_urls": ["s3:GetObject"]}
    expected = (prices.CLOUDFRONT_HTTPS_PER_REQUEST + prices.API_GATEWAY_REST_PER_REQUEST + prices.LAMBDA_PER_REQUEST
                + prices.LAMBDA_PER_GB_SECOND * 0.1 + 2 * prices.DYNAMODB_PER_READ_UNIT + prices.DYNAMODB_PER_WRITE_UNIT
                + prices.S3_PER_PUT + 2 * prices.S3_PER_GET)
    assert prices.records_cost([record]) == pytest.approx(expected)


def test_monthly_estimate_is_storage_plus_scaled_operations():
    storage_only = prices.monthly_estimate(prices.GiB, 0, 0, days=30, layers_per_image=3)
    assert storage_only == pytest.approx(prices.S3_STORAGE_PER_GB_MONTH)
    a_week = prices.monthly_estimate(0, pushes=1, pulls=10, days=7, layers_per_image=3)
    assert a_week == pytest.approx(30 / 7 * (10 * prices.pull_cost(3) + prices.push_cost(3)))
    assert prices.pull_cost(20) > prices.pull_cost(1) > 0
