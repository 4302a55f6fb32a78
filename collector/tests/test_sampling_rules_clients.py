"""A rule created through the API reaches real pollers: the library's ``XRayRemoteSampler`` and
aws-xray-sdk's centralized sampler (its rule and target pollers, in their own process) both
refetch after ``LastRuleModification`` moves and apply the new rule. The AWS CLI drives the same
operations as a user would type them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

from opentelemetry.sdk.resources import Resource
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address

from otel_xray.sampling import XRayRemoteSampler

from .test_awscli import aws_xray
from .test_remote_sampler_collector import _decide

NEVER_PAY = {
    "RuleName": "never-pay",
    "ResourceARN": "*",
    "Priority": 1,
    "FixedRate": 0.0,
    "ReservoirSize": 0,
    "ServiceName": "*",
    "ServiceType": "*",
    "Host": "*",
    "HTTPMethod": "*",
    "URLPath": "/pay*",
    "Version": 1,
}


def test_remote_sampler_applies_a_rule_created_through_the_api(
    collector: Collector, xray_client: Any
) -> None:
    xray_client.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 1.0}
    )  # before the new rule, every request is sampled
    offset = [0.0]
    host, port = collector.tcp_address
    sampler = XRayRemoteSampler(
        resource=Resource({"service.name": "shop"}),
        daemon_address=f"{host}:{port}",
        clock=lambda: time.time() + offset[0],
        autostart=False,
    )
    try:
        assert sampler.refresh_rules()
        assert all(_decide(sampler, "/pay/1") for _ in range(5))

        xray_client.create_sampling_rule(SamplingRule=NEVER_PAY)
        offset[0] += 10.0  # the next statistics report is due
        assert sampler.report_statistics()  # its answer says the rules changed: refetched

        assert not any(_decide(sampler, "/pay/2") for _ in range(20))
        assert _decide(sampler, "/cart")  # other requests still go to Default
        offset[0] += 10.0
        assert sampler.report_statistics()
        assert collector.status()["sampling"]["never-pay"]["RequestCount"] == 20
    finally:
        sampler.shutdown()


SDK_POLLER = textwrap.dedent(
    """
    import json, sys, time
    from aws_xray_sdk.core.context import Context
    from aws_xray_sdk.core.daemon_config import DaemonConfig
    from aws_xray_sdk.core.sampling.sampler import DefaultSampler

    sampler = DefaultSampler()
    sampler.load_settings(DaemonConfig(), Context())  # AWS_XRAY_DAEMON_ADDRESS
    sampler.start()
    request = {"host": "shop", "method": "GET", "path": "/pay/1"}

    def decide_until(wanted, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            decision = sampler.should_trace(request)
            if decision == wanted:
                return decision
            time.sleep(0.05)
        return decision

    # Default samples everything (FixedRate 1): a decision naming it means the collector's rules.
    print(json.dumps({"before": decide_until("Default", 30)}), flush=True)
    sys.stdin.readline()  # the test creates the rule, then says go
    print(json.dumps({"after": decide_until("pay-always", 60)}), flush=True)
    """
)


def test_xray_sdk_pollers_pick_up_a_rule_created_through_the_api(
    collector: Collector, xray_client: Any
) -> None:
    xray_client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 1.0})
    env = {
        **os.environ,
        "AWS_XRAY_DAEMON_ADDRESS": (
            f"tcp:{format_address(collector.tcp_address)} "
            f"udp:{format_address(collector.udp_address)}"
        ),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    probe = subprocess.Popen(
        [sys.executable, "-c", SDK_POLLER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert probe.stdout is not None and probe.stdin is not None
        assert json.loads(probe.stdout.readline()) == {"before": "Default"}

        xray_client.create_sampling_rule(
            SamplingRule={**NEVER_PAY, "RuleName": "pay-always", "FixedRate": 1.0}
        )
        probe.stdin.write("go\n")
        probe.stdin.flush()

        # The SDK's target poller reports, sees LastRuleModification move, wakes its rule
        # poller, and the next decision names the new rule.
        assert json.loads(probe.stdout.readline()) == {"after": "pay-always"}
    finally:
        probe.kill()
        _, errors = probe.communicate(timeout=30)
    assert "Encountered an issue" not in errors


def test_aws_cli_creates_and_lists_rules_and_groups(collector: Collector) -> None:
    created = aws_xray(collector, "create-sampling-rule", "--sampling-rule", json.dumps(NEVER_PAY))
    assert created["SamplingRuleRecord"]["SamplingRule"]["RuleName"] == "never-pay"
    listed = aws_xray(collector, "get-sampling-rules")
    assert [r["SamplingRule"]["RuleName"] for r in listed["SamplingRuleRecords"]] == [
        "never-pay",
        "Default",
    ]
    aws_xray(
        collector,
        "update-sampling-rule",
        "--sampling-rule-update",
        "RuleName=never-pay,FixedRate=0.5",
    )
    summaries = aws_xray(collector, "get-sampling-statistic-summaries")
    assert summaries["SamplingStatisticSummaries"] == []

    group = aws_xray(
        collector, "create-group", "--group-name", "faults", "--filter-expression", "fault"
    )["Group"]
    assert group["GroupARN"].startswith("arn:aws:xray:local:000000000000:group/faults/")
    groups = aws_xray(collector, "get-groups")["Groups"]
    assert [g["GroupName"] for g in groups] == ["Default", "faults"]
    assert aws_xray(collector, "get-group", "--group-name", "faults")["Group"] == group
    aws_xray(collector, "delete-group", "--group-name", "faults")
    deleted = aws_xray(collector, "delete-sampling-rule", "--rule-name", "never-pay")
    assert deleted["SamplingRuleRecord"]["SamplingRule"]["FixedRate"] == 0.5
