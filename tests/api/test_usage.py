"""GET /dockless/admin/v1/usage: stored bytes per repository and pushes and pulls from the audit
trail (admins only; the authorisation matrix in test_auth.py covers the refusals)."""
import json

import pytest

from tests.fixtures import error_code


def usage(client, query=""):
    response = client.get(f"/dockless/admin/v1/usage{query}")
    assert response.status_code == 200, response.body
    return {row["repository"]: row for row in json.loads(response.body)["repositories"]}


def test_usage_counts_stored_bytes_pushes_and_pulls_per_repository(client, push):
    body, digest = push.image("team/app", "1", layers=(b"a" * 1000, b"b" * 2000))
    push.image("team/app", "2", layers=(b"a" * 1000,))
    push.image("other/tool", "1", layers=(b"c" * 500,))
    for _ in range(3):
        assert client.get("/v2/team/app/manifests/1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).status_code == 200
    rows = usage(client, "?namespace=team")
    assert list(rows) == ["team/app"]
    app = rows["team/app"]
    manifests = [client.get(f"/v2/team/app/manifests/{tag}").body for tag in ("1", "2")]
    config = len(json.dumps({"architecture": "amd64", "os": "linux"}))
    assert app["stored_bytes"] == 1000 + 2000 + config + sum(len(m) for m in manifests)
    assert (app["blobs"], app["manifests"], app["pushes"], app["pulls"]) == (3, 2, 2, 3)
    assert set(usage(client)) == {"team/app", "other/tool"}


def test_usage_prices_operations_as_the_registrys_door_bills_them(client, push, registry):
    import dataclasses

    from chalicelib.backend import use_backend
    from chalicelib.lifecycle import prices
    push.image("team/app", "1", layers=(b"a" * 1000,))
    for _ in range(5):
        assert client.get("/v2/team/app/manifests/1").status_code == 200
    behind_gateway = usage(client)["team/app"]["estimated_monthly_usd"]
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, door="function-url")))
    behind_url = usage(client)["team/app"]["estimated_monthly_usd"]
    pushes_and_pulls = 1 * prices.push_cost(1) + 5 * prices.pull_cost(1) - (
        1 * prices.push_cost(1, "function-url") + 5 * prices.pull_cost(1, "function-url"))
    assert behind_gateway - behind_url == pytest.approx(pushes_and_pulls, abs=1e-4)  # a 30-day period: one month
    assert behind_url < behind_gateway

def test_usage_prices_the_logs_as_long_as_the_deployment_keeps_them(client, push, registry, monkeypatch):
    """The stack's LogRetentionDays (DOCKLESS_LOG_RETENTION_DAYS) reaches the estimate (each
    repository's is rounded to a hundredth of a cent: the arguments say it)."""
    import dataclasses

    from chalicelib.backend import use_backend
    from chalicelib.lifecycle import prices
    push.image("team/app", "1")
    asked = []
    estimate = prices.monthly_estimate
    monkeypatch.setattr(prices, "monthly_estimate", lambda *args: asked.append(args) or estimate(*args))
    use_backend(dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, log_retention_days=30)))
    usage(client)
    assert asked and all(args[-1] == 30 for args in asked)


def test_usage_names_what_the_registry_bills_whatever_its_traffic(client):
    response = client.get("/dockless/admin/v1/usage")
    fixed = json.loads(response.body)["fixed_monthly_usd"]
    assert fixed["CloudWatch alarms (65)"] == 6.5 and fixed["Secrets Manager secrets (5)"] == 2.0
    assert [item.split(" (")[0] for item in fixed] == [
        "CloudWatch custom metrics", "CloudWatch alarms", "Secrets Manager secrets", "KMS requests for 22 encrypted tables"]


def test_usage_refuses_a_bad_period(client):
    response = client.get("/dockless/admin/v1/usage?since=yesterday")
    assert response.status_code == 400 and error_code(response) == "INVALID"
    response = client.get("/dockless/admin/v1/usage?since=2026-01-01T00:00:00Z&until=2026-06-01T00:00:00Z")
    assert response.status_code == 400 and error_code(response) == "INVALID"
