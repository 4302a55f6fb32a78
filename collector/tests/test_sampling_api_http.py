"""The sampling API over real HTTP: boto3 and the X-Ray SDK's own sampling client parse it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from otel_xray_collector.app import Collector
from otel_xray_collector.config import CollectorConfig, format_address

from tests.support.rules import HEALTHCHECK_RULE_V2

RULES = {
    "version": 2,
    "rules": [
        HEALTHCHECK_RULE_V2,
        {
            "description": "orders api",
            "host": "*",
            "http_method": "*",
            "url_path": "/orders/*",
            "fixed_target": 6,
            "rate": 0.5,
        },
    ],
    "default": {"fixed_target": 1, "rate": 0.1},
}


@pytest.fixture
def rules_collector(tmp_path: Path) -> Iterator[Collector]:
    rules = tmp_path / "sampling-rules.json"
    rules.write_text(json.dumps(RULES), encoding="utf-8")
    collector = Collector(
        CollectorConfig(
            udp="127.0.0.1:0",
            tcp="127.0.0.1:0",
            otlp=None,
            otlp_http=None,
            db=":memory:",
            sampling_rules=str(rules),
        )
    )
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def xray_client(collector: Collector, **config: Any) -> Any:
    return boto3.session.Session().client(
        "xray",
        region_name="us-east-1",
        endpoint_url=collector.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def statistics(rule: str, client_id: str) -> dict[str, Any]:
    return {
        "RuleName": rule,
        "ClientID": client_id,
        "Timestamp": time.time(),
        "RequestCount": 20,
        "SampledCount": 4,
        "BorrowCount": 1,
    }


def test_default_rule_and_targets_parse_in_boto3(xray_client: Any) -> None:
    records = xray_client.get_sampling_rules()["SamplingRuleRecords"]
    targets = xray_client.get_sampling_targets(
        SamplingStatisticsDocuments=[statistics("Default", "c" * 24)]
    )

    assert [r["SamplingRule"]["RuleName"] for r in records] == ["Default"]
    rule = records[0]["SamplingRule"]
    assert (rule["ReservoirSize"], rule["FixedRate"], rule["Priority"]) == (1, 0.05, 10000)
    assert records[0]["ModifiedAt"].timestamp() > 0
    assert targets["SamplingTargetDocuments"] == [
        {
            "RuleName": "Default",
            "FixedRate": 0.05,
            "ReservoirQuota": 1,
            "ReservoirQuotaTTL": targets["SamplingTargetDocuments"][0]["ReservoirQuotaTTL"],
            "Interval": 10,
        }
    ]
    assert targets["UnprocessedStatistics"] == []


def test_boto3_reads_the_rules(rules_collector: Collector) -> None:
    client = xray_client(rules_collector)

    records = client.get_sampling_rules()["SamplingRuleRecords"]

    assert [(r["SamplingRule"]["RuleName"], r["SamplingRule"]["Priority"]) for r in records] == [
        ("Healthy-check", 1),
        ("orders-api", 2),
        ("Default", 10000),
    ]
    orders = records[1]["SamplingRule"]
    assert (orders["URLPath"], orders["ReservoirSize"], orders["FixedRate"]) == (
        "/orders/*",
        6,
        0.5,
    )
    assert abs(records[0]["CreatedAt"].timestamp() - time.time()) < 300  # parsed as a time


def test_boto3_gets_targets_split_between_clients(rules_collector: Collector) -> None:
    client = xray_client(rules_collector)

    first = client.get_sampling_targets(
        SamplingStatisticsDocuments=[statistics("orders-api", "a" * 24)]
    )
    second = client.get_sampling_targets(
        SamplingStatisticsDocuments=[
            statistics("orders-api", "b" * 24),
            statistics("no-such-rule", "b" * 24),
        ]
    )

    assert first["SamplingTargetDocuments"][0]["ReservoirQuota"] == 6
    target = second["SamplingTargetDocuments"][0]
    assert (target["RuleName"], target["ReservoirQuota"], target["FixedRate"]) == (
        "orders-api",
        3,
        0.5,
    )
    assert target["Interval"] == 10
    assert target["ReservoirQuotaTTL"].timestamp() > time.time()
    assert second["LastRuleModification"].timestamp() > 0
    assert second["UnprocessedStatistics"][0]["RuleName"] == "no-such-rule"


def test_bad_statistics_are_an_invalid_request_error(rules_collector: Collector) -> None:
    # Turn botocore's own checks off so the collector's are what answer.
    client = xray_client(rules_collector, parameter_validation=False)

    with pytest.raises(ClientError) as raised:
        client.get_sampling_targets(
            SamplingStatisticsDocuments=[{**statistics("Default", "short"), "RequestCount": -3}]
        )

    error = raised.value.response
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "ClientID" in error["Error"]["Message"]


SDK_PROBE = textwrap.dedent(
    """
    import json, time
    from aws_xray_sdk.core.daemon_config import DaemonConfig
    from aws_xray_sdk.core.sampling.connector import ServiceConnector
    from aws_xray_sdk.core.sampling.sampler import DefaultSampler
    from aws_xray_sdk.core.context import Context

    config = DaemonConfig()  # reads AWS_XRAY_DAEMON_ADDRESS, as an application would
    connector = ServiceConnector()
    connector.setup_xray_client(config.tcp_ip, config.tcp_port, None)
    rules = connector.fetch_sampling_rules()
    for rule in rules:
        rule.increment_request_count()
        rule.increment_sampled_count()
    targets, last_modified = connector.fetch_sampling_target(rules)

    # The SDK's centralized sampler, pollers and all: a decision naming a rule means the rules
    # came from the collector (the local fallback only answers True/False).
    sampler = DefaultSampler()
    sampler.load_settings(config, Context())
    sampler.start()
    deadline = time.time() + 20
    decision = sampler.should_trace({"host": "shop", "method": "GET", "path": "/orders/7"})
    while not isinstance(decision, str) and time.time() < deadline:
        time.sleep(0.05)
        decision = sampler.should_trace({"host": "shop", "method": "GET", "path": "/orders/7"})
    print(json.dumps({
        "rules": [[r.name, r.priority, r.rate, r.can_borrow] for r in rules],
        "healthcheck_matches": [
            r.name for r in rules if r.match({"host": "a", "method": "GET", "path": "/healthcheck"})
        ],
        "targets": targets,
        "last_modified": last_modified,
        "decision": decision,
    }))
    """
)


def test_xray_sdk_sampling_client_uses_the_rules(rules_collector: Collector) -> None:
    udp = format_address(rules_collector.udp_address)
    tcp = format_address(rules_collector.tcp_address)
    env = {
        **os.environ,
        "AWS_XRAY_DAEMON_ADDRESS": f"tcp:{tcp} udp:{udp}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    result = subprocess.run(
        [sys.executable, "-c", SDK_PROBE], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "Encountered an issue" not in result.stderr  # the SDK pollers log parse errors so
    probe = json.loads(result.stdout)
    assert probe["rules"] == [  # none skipped as invalid by the SDK
        ["Healthy-check", 1, 0.0, False],
        ["orders-api", 2, 0.5, True],
        ["Default", 10000, 0.1, True],
    ]
    assert probe["healthcheck_matches"] == ["Healthy-check", "Default"]
    assert probe["targets"]["orders-api"]["quota"] == 6
    assert probe["targets"]["orders-api"]["interval"] == 10
    assert probe["targets"]["orders-api"]["TTL"] > time.time()
    assert probe["last_modified"] > 0
    assert probe["decision"] == "orders-api"
