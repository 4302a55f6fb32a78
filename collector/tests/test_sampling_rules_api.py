"""Sampling-rule CRUD and statistic summaries through boto3's xray client, persisted in the store,
and how the ``--sampling-rules`` file and API-created rules live together across restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from otel_xray_collector.app import Collector

from .conftest import make_config, xray_client_for
from .support.postgres import BOTH_STORES

pytestmark = BOTH_STORES

RULE: dict[str, Any] = {
    "RuleName": "checkout",
    "ResourceARN": "*",
    "Priority": 5,
    "FixedRate": 0.25,
    "ReservoirSize": 3,
    "ServiceName": "shop",
    "ServiceType": "*",
    "Host": "*",
    "HTTPMethod": "POST",
    "URLPath": "/checkout*",
    "Version": 1,
}


def unchecked_client(collector: Collector) -> Any:
    """boto3 with its own parameter validation off, so the collector's checks are what answer."""
    import boto3

    return boto3.client(
        "xray",
        endpoint_url=collector.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


def rules(client: Any) -> dict[str, dict[str, Any]]:
    records = client.get_sampling_rules()["SamplingRuleRecords"]
    return {r["SamplingRule"]["RuleName"]: r for r in records}


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_create_update_delete_are_served_at_once(xray_client: Any) -> None:
    rules(xray_client)
    fetched = time.time()  # what a poller remembers as its last fetch

    created = xray_client.create_sampling_rule(
        SamplingRule={**RULE, "Attributes": {"tier": "gold"}},
        Tags=[{"Key": "team", "Value": "payments"}],
    )["SamplingRuleRecord"]

    rule = created["SamplingRule"]
    assert rule["RuleARN"] == "arn:aws:xray:local:000000000000:sampling-rule/checkout"
    assert (rule["Priority"], rule["FixedRate"], rule["ReservoirSize"]) == (5, 0.25, 3)
    assert rule["Attributes"] == {"tier": "gold"}
    assert created["CreatedAt"] == created["ModifiedAt"]
    listed = rules(xray_client)
    assert list(listed) == ["checkout", "Default"]  # priority order
    assert listed["checkout"]["SamplingRule"] == rule
    after = xray_client.get_sampling_targets(
        SamplingStatisticsDocuments=[
            {
                "RuleName": "checkout",
                "ClientID": "a" * 24,
                "Timestamp": time.time(),
                "RequestCount": 4,
                "SampledCount": 2,
            }
        ]
    )
    assert after["LastRuleModification"].timestamp() > fetched  # so pollers refetch the rules
    assert after["SamplingTargetDocuments"][0]["ReservoirQuota"] == 3

    updated = xray_client.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "checkout", "FixedRate": 0.75, "URLPath": "/pay"}
    )["SamplingRuleRecord"]
    assert (updated["SamplingRule"]["FixedRate"], updated["SamplingRule"]["URLPath"]) == (
        0.75,
        "/pay",
    )
    assert updated["SamplingRule"]["HTTPMethod"] == "POST"  # untouched fields are kept
    assert updated["ModifiedAt"] > created["ModifiedAt"]
    assert updated["CreatedAt"] == created["CreatedAt"]
    assert rules(xray_client)["checkout"]["SamplingRule"]["FixedRate"] == 0.75

    by_arn = xray_client.update_sampling_rule(
        SamplingRuleUpdate={"RuleARN": rule["RuleARN"], "ReservoirSize": 0}
    )
    assert by_arn["SamplingRuleRecord"]["SamplingRule"]["ReservoirSize"] == 0

    deleted = xray_client.delete_sampling_rule(RuleARN=rule["RuleARN"])["SamplingRuleRecord"]
    assert deleted["SamplingRule"]["RuleName"] == "checkout"
    assert list(rules(xray_client)) == ["Default"]


def test_default_rule_takes_rate_and_reservoir_only_and_stays(xray_client: Any) -> None:
    updated = xray_client.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.5, "ReservoirSize": 7}
    )["SamplingRuleRecord"]["SamplingRule"]
    assert (updated["FixedRate"], updated["ReservoirSize"], updated["Priority"]) == (0.5, 7, 10000)

    code, message, status = error_of(
        xray_client.update_sampling_rule,
        SamplingRuleUpdate={"RuleName": "Default", "URLPath": "/x"},
    )
    assert (code, status) == ("InvalidRequestException", 400)
    assert "URLPath" in message
    code, message, _ = error_of(xray_client.delete_sampling_rule, RuleName="Default")
    assert code == "InvalidRequestException" and "Default" in message
    code, _, _ = error_of(
        xray_client.create_sampling_rule, SamplingRule={**RULE, "RuleName": "Default"}
    )
    assert code == "InvalidRequestException"


def test_duplicate_unknown_and_limit_errors(xray_client: Any) -> None:
    xray_client.create_sampling_rule(SamplingRule=RULE)

    code, message, _ = error_of(xray_client.create_sampling_rule, SamplingRule=RULE)
    assert code == "InvalidRequestException" and "already exists" in message
    code, message, _ = error_of(
        xray_client.update_sampling_rule, SamplingRuleUpdate={"RuleName": "nope", "FixedRate": 1}
    )
    assert code == "InvalidRequestException" and "nope" in message
    code, _, _ = error_of(xray_client.delete_sampling_rule, RuleName="nope")
    assert code == "InvalidRequestException"
    code, message, _ = error_of(
        xray_client.delete_sampling_rule, RuleName="checkout", RuleARN="arn:x"
    )
    assert code == "InvalidRequestException" and "not both" in message

    for number in range(24):
        xray_client.create_sampling_rule(SamplingRule={**RULE, "RuleName": f"r{number}"})
    code, _, status = error_of(
        xray_client.create_sampling_rule, SamplingRule={**RULE, "RuleName": "one-too-many"}
    )
    assert (code, status) == ("RuleLimitExceededException", 400)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"RuleName": "x" * 33}, "RuleName"),
        ({"RuleName": ""}, "RuleName"),
        ({"Priority": 0}, "Priority"),
        ({"Priority": 10000}, "Priority"),
        ({"Priority": "high"}, "Priority"),
        ({"FixedRate": 1.5}, "FixedRate"),
        ({"FixedRate": -0.1}, "FixedRate"),
        ({"ReservoirSize": -1}, "ReservoirSize"),
        ({"ReservoirSize": 2.5}, "ReservoirSize"),
        ({"Host": "h" * 65}, "Host"),
        ({"HTTPMethod": "PROPPATCHXX"}, "HTTPMethod"),
        ({"URLPath": "/" * 129}, "URLPath"),
        ({"ServiceName": "s" * 65}, "ServiceName"),
        ({"ServiceType": "t" * 65}, "ServiceType"),
        ({"ResourceARN": "a" * 501}, "ResourceARN"),
        ({"Version": 2}, "Version"),
        ({"Attributes": {str(i): "v" for i in range(6)}}, "Attributes"),
        ({"Attributes": {"k": "v" * 33}}, "Attributes"),
        ({"URLPath": None}, "URLPath"),
    ],
)
def test_rule_field_limits_are_invalid_requests(
    collector: Collector, change: dict[str, Any], field: str
) -> None:
    client = unchecked_client(collector)
    rule = {k: v for k, v in {**RULE, **change}.items() if v is not None}

    code, message, status = error_of(client.create_sampling_rule, SamplingRule=rule)

    assert (code, status) == ("InvalidRequestException", 400)
    assert field in message
    assert list(rules(client)) == ["Default"]


def test_update_field_limits_and_tags_are_checked(collector: Collector) -> None:
    client = unchecked_client(collector)
    client.create_sampling_rule(SamplingRule=RULE)

    code, message, _ = error_of(
        client.update_sampling_rule, SamplingRuleUpdate={"RuleName": "checkout", "Priority": 0}
    )
    assert code == "InvalidRequestException" and "Priority" in message
    code, message, _ = error_of(
        client.create_sampling_rule,
        SamplingRule={**RULE, "RuleName": "tagged"},
        Tags=[{"Key": "aws:reserved", "Value": "x"}],
    )
    assert code == "InvalidRequestException" and "Tags" in message
    code, message, _ = error_of(client.update_sampling_rule)
    assert code == "InvalidRequestException" and "SamplingRuleUpdate" in message


def test_statistic_summaries_add_up_each_clients_last_report(xray_client: Any) -> None:
    xray_client.create_sampling_rule(SamplingRule=RULE)
    now = time.time()

    def report(client_id: str, requests: int, sampled: int, borrowed: int, at: float) -> None:
        xray_client.get_sampling_targets(
            SamplingStatisticsDocuments=[
                {
                    "RuleName": "checkout",
                    "ClientID": client_id * 24,
                    "Timestamp": at,
                    "RequestCount": requests,
                    "SampledCount": sampled,
                    "BorrowCount": borrowed,
                }
            ]
        )

    report("a", 10, 4, 1, now - 15)
    report("a", 12, 5, 0, now - 5)  # replaces a's earlier interval
    report("b", 8, 3, 1, now - 4)

    summaries = xray_client.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]

    assert [s["RuleName"] for s in summaries] == ["checkout"]  # nobody reported on Default
    summary = summaries[0]
    assert (summary["RequestCount"], summary["SampledCount"], summary["BorrowCount"]) == (
        20,
        8,
        1,
    )
    assert summary["Timestamp"].timestamp() == pytest.approx(now - 5, abs=1)
    code, message, _ = error_of(xray_client.get_sampling_statistic_summaries, NextToken="x")
    assert code == "InvalidRequestException" and "NextToken" in message


def test_api_rules_persist_and_file_rules_are_reapplied_at_start(tmp_path: Path, db: str) -> None:
    rules_file = tmp_path / "rules.json"
    document = {
        "version": 2,
        "rules": [
            {
                "description": "health",
                "host": "*",
                "http_method": "GET",
                "url_path": "/health",
                "fixed_target": 0,
                "rate": 0,
            }
        ],
        "default": {"fixed_target": 2, "rate": 0.2},
    }
    rules_file.write_text(json.dumps(document), encoding="utf-8")
    config = make_config(db, sampling_rules=str(rules_file), otlp=None)

    with Collector(config) as first:
        client = xray_client_for(first.endpoint_url)
        client.create_sampling_rule(SamplingRule=RULE)
        client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "health", "FixedRate": 1.0})
        client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.9})
        created_at = rules(client)["checkout"]["CreatedAt"]

    document["rules"][0]["description"] = "liveness"  # the file changes between runs
    rules_file.write_text(json.dumps(document), encoding="utf-8")
    with Collector(config) as second:
        after = rules(xray_client_for(second.endpoint_url))

    assert list(after) == ["liveness", "checkout", "Default"]
    assert after["checkout"]["CreatedAt"] == created_at  # API rule persisted as it was
    assert after["liveness"]["SamplingRule"]["FixedRate"] == 0.0  # the file's version
    default = after["Default"]["SamplingRule"]
    assert (default["ReservoirSize"], default["FixedRate"]) == (2, 0.2)  # API edit replaced

    # Without the file, its rules go; API rules and an API-edited Default stay.
    no_file = make_config(db, otlp=None)
    with Collector(no_file) as third:
        client = xray_client_for(third.endpoint_url)
        assert list(rules(client)) == ["checkout", "Default"]
        assert rules(client)["Default"]["SamplingRule"]["ReservoirSize"] == 1  # X-Ray's default
        client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.9})
    with Collector(no_file) as fourth:
        default = rules(xray_client_for(fourth.endpoint_url))["Default"]["SamplingRule"]
        assert default["FixedRate"] == 0.9


def test_without_a_store_rules_live_in_memory(tmp_path: Path) -> None:
    config = make_config(tmp_path / "x.db", otlp=None, store=False)
    with Collector(config) as collector:
        client = xray_client_for(collector.endpoint_url)
        client.create_sampling_rule(SamplingRule=RULE)
        assert list(rules(client)) == ["checkout", "Default"]


def test_restarts_without_a_file_keep_serving_the_default_rule(db: str) -> None:
    config = make_config(db, otlp=None)
    for _ in range(2):
        with Collector(config) as collector:
            assert list(rules(xray_client_for(collector.endpoint_url))) == ["Default"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"FixedRate": 2}, "FixedRate"),
        ({"ReservoirSize": -5}, "ReservoirSize"),
        ({"Priority": 10000}, "Priority"),
        ({"Host": "h" * 65}, "Host"),
        ({"HTTPMethod": "x" * 11}, "HTTPMethod"),
        ({"URLPath": "/" * 129}, "URLPath"),
        ({"ServiceName": 7}, "ServiceName"),
        ({"ServiceType": "t" * 65}, "ServiceType"),
        ({"ResourceARN": "a" * 501}, "ResourceARN"),
        ({"Attributes": {"": "v"}}, "Attributes"),
        ({"SamplingRateBoost": {"MaxRate": 3, "CooldownWindowMinutes": 1}}, "MaxRate"),
        ({"RuleName": None, "RuleARN": "arn:aws:xray:local:1:group/x"}, "RuleARN"),
    ],
)
def test_update_field_limits_are_invalid_requests(
    collector: Collector, change: dict[str, Any], field: str
) -> None:
    client = unchecked_client(collector)
    client.create_sampling_rule(SamplingRule=RULE)
    update = {k: v for k, v in {"RuleName": "checkout", **change}.items() if v is not None}

    code, message, status = error_of(client.update_sampling_rule, SamplingRuleUpdate=update)

    assert (code, status) == ("InvalidRequestException", 400)
    assert field in message
    assert rules(client)["checkout"]["SamplingRule"]["FixedRate"] == RULE["FixedRate"]
