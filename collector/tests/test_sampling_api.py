"""SamplingService: local rules served as X-Ray centralized rules, quotas, input validation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from otel_xray_collector.api.errors import ApiError
from otel_xray_collector.api.fields import parse_timestamp
from otel_xray_collector.api.sampling import (
    ACTIVE_WINDOW,
    QUOTA_TTL,
    TARGET_INTERVAL,
    SamplingService,
    rule_name,
)

from tests.support.rules import HEALTHCHECK_V1

CLIENT_A = "a" * 24
CLIENT_B = "b" * 24
NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_rules(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def stats(rule: str, client: str, requests: int = 10, sampled: int = 1, **extra: Any) -> dict:
    doc = {
        "RuleName": rule,
        "ClientID": client,
        "Timestamp": int(NOW),
        "RequestCount": requests,
        "SampledCount": sampled,
        "BorrowCount": 0,
    }
    doc.update(extra)
    return doc


def rules_by_name(service: SamplingService) -> dict[str, dict[str, Any]]:
    records = service.get_sampling_rules({})["SamplingRuleRecords"]
    return {record["SamplingRule"]["RuleName"]: record for record in records}


def test_v1_healthcheck_file_becomes_centralized_rules(tmp_path: Path) -> None:
    clock = FakeClock()
    service = SamplingService(write_rules(tmp_path / "rules.json", HEALTHCHECK_V1), clock)

    records = service.get_sampling_rules({})["SamplingRuleRecords"]

    assert [record["SamplingRule"] for record in records] == [
        {
            "RuleName": "Healthy-check",
            "RuleARN": "arn:aws:xray:local:000000000000:sampling-rule/Healthy-check",
            "ResourceARN": "*",
            "Priority": 1,
            "FixedRate": 0.0,
            "ReservoirSize": 0,
            "ServiceName": "*",
            "ServiceType": "*",
            "Host": "*",  # v1 service_name is matched against the host
            "HTTPMethod": "GET",
            "URLPath": "/healthcheck",
            "Version": 1,
            "Attributes": {},
        },
        {
            "RuleName": "Default",
            "RuleARN": "arn:aws:xray:local:000000000000:sampling-rule/Default",
            "ResourceARN": "*",
            "Priority": 10000,
            "FixedRate": 1.0,
            "ReservoirSize": 1,
            "ServiceName": "*",
            "ServiceType": "*",
            "Host": "*",
            "HTTPMethod": "*",
            "URLPath": "*",
            "Version": 1,
            "Attributes": {},
        },
    ]
    for record in records:
        assert record["CreatedAt"] == NOW and record["ModifiedAt"] == NOW
    assert "NextToken" not in service.get_sampling_rules({})


def test_no_rules_file_serves_the_xray_default_rule() -> None:
    service = SamplingService(None, FakeClock())

    rules = rules_by_name(service)

    assert list(rules) == ["Default"]
    default = rules["Default"]["SamplingRule"]
    assert (default["ReservoirSize"], default["FixedRate"], default["Priority"]) == (1, 0.05, 10000)
    assert (default["Host"], default["HTTPMethod"], default["URLPath"]) == ("*", "*", "*")


def test_v2_rules_keep_file_order_as_priority(tmp_path: Path) -> None:
    document = {
        "version": 2,
        "rules": [
            {
                "description": "api",
                "host": "api.example.com",
                "http_method": "*",
                "url_path": "/v1/*",
                "fixed_target": 5,
                "rate": 0.5,
            },
            {
                "description": "",
                "host": "*",
                "http_method": "POST",
                "url_path": "*",
                "fixed_target": 2,
                "rate": 0.1,
            },
        ],
        "default": {"fixed_target": 3, "rate": 0.2},
    }
    service = SamplingService(write_rules(tmp_path / "rules.json", document), FakeClock())

    rules = [r["SamplingRule"] for r in service.get_sampling_rules({})["SamplingRuleRecords"]]

    assert [(r["RuleName"], r["Priority"]) for r in rules] == [
        ("api", 1),
        ("rule-2", 2),
        ("Default", 10000),
    ]
    assert (rules[0]["Host"], rules[0]["URLPath"], rules[0]["ReservoirSize"]) == (
        "api.example.com",
        "/v1/*",
        5,
    )
    assert (rules[1]["HTTPMethod"], rules[1]["FixedRate"]) == ("POST", 0.1)


def test_rule_names_are_sanitised_short_and_unique() -> None:
    long = "Orders API: checkout / payment (critical path) v2"
    first = rule_name(long, [], "rule-1")
    second = rule_name(long, [first], "rule-2")

    assert first == "Orders-API-checkout-payment-crit"
    assert len(first) == 32 and len(second) <= 32
    assert second == "Orders-API-checkout-payment-cr-2"
    assert rule_name("default", [], "rule-1") == "default-2"  # "Default" is reserved
    assert rule_name("!!!", [], "rule-7") == "rule-7"


def test_reservoir_is_split_between_the_active_clients(tmp_path: Path) -> None:
    document = {
        "version": 2,
        "rules": [
            {
                "description": "busy",
                "host": "*",
                "http_method": "*",
                "url_path": "/busy",
                "fixed_target": 10,
                "rate": 0.25,
            }
        ],
        "default": {"fixed_target": 1, "rate": 0.05},
    }
    clock = FakeClock()
    service = SamplingService(write_rules(tmp_path / "rules.json", document), clock)

    alone = service.sampling_targets({"SamplingStatisticsDocuments": [stats("busy", CLIENT_A)]})
    clock.now += 1
    with_b = service.sampling_targets({"SamplingStatisticsDocuments": [stats("busy", CLIENT_B)]})
    clock.now += 1
    a_again = service.sampling_targets({"SamplingStatisticsDocuments": [stats("busy", CLIENT_A)]})

    assert alone["SamplingTargetDocuments"][0]["ReservoirQuota"] == 10
    assert with_b["SamplingTargetDocuments"][0]["ReservoirQuota"] == 5
    assert a_again["SamplingTargetDocuments"][0]["ReservoirQuota"] == 5
    assert a_again["SamplingTargetDocuments"][0]["FixedRate"] == 0.25
    assert service.statistics()["busy"] == {
        "RequestCount": 30,
        "SampledCount": 3,
        "BorrowCount": 0,
        "ActiveClients": 2,
    }


def test_odd_reservoir_adds_up_and_rotates_between_clients() -> None:
    clock = FakeClock()
    service = SamplingService(None, clock)  # Default: ReservoirSize 1

    def quotas() -> tuple[int, int]:
        body = {"SamplingStatisticsDocuments": [stats("Default", CLIENT_A)]}
        a = service.sampling_targets(body)["SamplingTargetDocuments"][0]["ReservoirQuota"]
        body = {"SamplingStatisticsDocuments": [stats("Default", CLIENT_B)]}
        b = service.sampling_targets(body)["SamplingTargetDocuments"][0]["ReservoirQuota"]
        return a, b

    quotas()  # both clients become active
    first = quotas()
    clock.now += TARGET_INTERVAL
    second = quotas()

    assert sum(first) == 1 and sum(second) == 1
    assert first != second  # the one spare trace per second goes to each client in turn


def test_client_that_stopped_reporting_no_longer_shares_the_reservoir() -> None:
    clock = FakeClock()
    service = SamplingService(None, clock)
    service.sampling_targets({"SamplingStatisticsDocuments": [stats("Default", CLIENT_B)]})
    clock.now += ACTIVE_WINDOW + 1

    answer = service.sampling_targets({"SamplingStatisticsDocuments": [stats("Default", CLIENT_A)]})

    assert answer["SamplingTargetDocuments"][0]["ReservoirQuota"] == 1
    assert service.statistics()["Default"]["ActiveClients"] == 1


def test_target_ttl_interval_and_last_modification_are_epoch_seconds() -> None:
    clock = FakeClock(NOW)
    service = SamplingService(None, clock)
    clock.now += 0.75  # rules created at NOW, answered at NOW + 0.75: TTL counts whole seconds

    answer = service.sampling_targets({"SamplingStatisticsDocuments": [stats("Default", CLIENT_A)]})

    target = answer["SamplingTargetDocuments"][0]
    assert target == {
        "RuleName": "Default",
        "FixedRate": 0.05,
        "ReservoirQuota": 1,
        "ReservoirQuotaTTL": NOW + QUOTA_TTL,
        "Interval": 10,
    }
    assert answer["LastRuleModification"] == NOW
    assert answer["UnprocessedStatistics"] == []


def test_unknown_rule_goes_to_unprocessed_statistics() -> None:
    service = SamplingService(None, FakeClock())

    answer = service.sampling_targets(
        {"SamplingStatisticsDocuments": [stats("Nope", CLIENT_A), stats("Default", CLIENT_A)]}
    )

    assert [t["RuleName"] for t in answer["SamplingTargetDocuments"]] == ["Default"]
    assert answer["UnprocessedStatistics"] == [
        {"RuleName": "Nope", "ErrorCode": "UnknownRule", "Message": "no sampling rule named 'Nope'"}
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "SamplingStatisticsDocuments is required"),
        ({"SamplingStatisticsDocuments": {}}, "SamplingStatisticsDocuments must be a list"),
        ({"SamplingStatisticsDocuments": ["x"]}, "[0] must be an object"),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "ClientID": None}]},
            "ClientID must be a string of 24 characters",
        ),
        (
            {
                "SamplingStatisticsDocuments": [
                    {k: v for k, v in stats("Default", CLIENT_A).items() if k != "ClientID"}
                ]
            },
            "ClientID must be a string of 24 characters",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "ClientID": "abc"}]},
            "ClientID must be a string of 24 characters",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "RuleName": ""}]},
            "RuleName must be a string of 1 to 32 characters",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "RequestCount": "10"}]},
            "RequestCount must be a non-negative integer",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "SampledCount": True}]},
            "SampledCount must be a non-negative integer",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "BorrowCount": -1}]},
            "BorrowCount must be a non-negative integer",
        ),
        (
            {"SamplingStatisticsDocuments": [{**stats("Default", CLIENT_A), "Timestamp": "soon"}]},
            "Timestamp must be epoch seconds or an ISO-8601 time",
        ),
        (
            {
                "SamplingStatisticsDocuments": [
                    {k: v for k, v in stats("Default", CLIENT_A).items() if k != "Timestamp"}
                ]
            },
            "Timestamp is required",
        ),
        (
            {"SamplingStatisticsDocuments": [], "SamplingBoostStatisticsDocuments": "x"},
            "SamplingBoostStatisticsDocuments must be a list of objects",
        ),
        ([], "the request body must be a JSON object"),
    ],
)
def test_bad_targets_request_is_invalid_request(body: Any, message: str) -> None:
    service = SamplingService(None, FakeClock())

    with pytest.raises(ApiError) as raised:
        service.sampling_targets(body)

    assert raised.value.status == 400
    assert raised.value.error_type == "InvalidRequestException"
    assert message in raised.value.message
    assert service.statistics()["Default"]["RequestCount"] == 0  # nothing half-recorded


def test_bad_rules_request_is_invalid_request() -> None:
    service = SamplingService(None, FakeClock())

    for body, message in (
        ([], "JSON object"),
        ({"NextToken": 5}, "NextToken must be a string"),
        ({"NextToken": "abc"}, "NextToken is not valid"),
    ):
        with pytest.raises(ApiError) as raised:
            service.get_sampling_rules(body)
        assert raised.value.error_type == "InvalidRequestException"
        assert message in raised.value.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.5, 1_700_000_000.5),
        ("1700000000", 1_700_000_000.0),
        (1_700_000_000_000, 1_700_000_000.0),  # Java's Jackson mapper sends milliseconds
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T22:13:20", 1_700_000_000.0),
    ],
)
def test_timestamps_are_read_leniently(value: Any, seconds: float) -> None:
    assert parse_timestamp(value, "Timestamp", millis=True) == seconds


def test_missing_or_invalid_rules_file_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read sampling rules"):
        SamplingService(str(tmp_path / "missing.json"))
    bad = write_rules(tmp_path / "bad.json", {"version": 3, "default": {}})
    with pytest.raises(ValueError, match="version"):
        SamplingService(bad)


def test_edited_rules_file_is_reloaded_with_a_newer_modification_time(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write_rules(tmp_path / "rules.json", HEALTHCHECK_V1)
    service = SamplingService(path, clock)
    service.sampling_targets({"SamplingStatisticsDocuments": [stats("Default", CLIENT_A)]})

    edited = {**HEALTHCHECK_V1, "default": {"fixed_target": 4, "rate": 0.5}}
    write_rules(tmp_path / "rules.json", edited)
    os.utime(path, (NOW + 30, NOW + 30))
    clock.now += 30
    answer = service.sampling_targets({"SamplingStatisticsDocuments": [stats("Default", CLIENT_A)]})

    assert answer["LastRuleModification"] == NOW + 30
    assert answer["SamplingTargetDocuments"][0]["FixedRate"] == 0.5
    assert answer["SamplingTargetDocuments"][0]["ReservoirQuota"] == 4
    default = rules_by_name(service)["Default"]
    assert default["ModifiedAt"] == NOW + 30 and default["CreatedAt"] == NOW
    assert service.statistics()["Default"]["RequestCount"] == 20  # totals survive the reload

    # A broken save keeps the rules that work.
    (tmp_path / "rules.json").write_text("{not json", encoding="utf-8")
    os.utime(path, (NOW + 60, NOW + 60))
    clock.now += 30
    assert rules_by_name(service)["Default"]["SamplingRule"]["FixedRate"] == 0.5
