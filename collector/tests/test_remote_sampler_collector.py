"""The library's centralized sampler against the collector's sampling API: the two halves of
X-Ray centralized sampling, with the migrating team's rules file served by the collector."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind
from otel_xray_collector.app import Collector

from otel_xray.sampling import XRayRemoteSampler

from .conftest import make_config

RULES = Path(__file__).resolve().parents[2] / "examples" / "microservices" / "sampling-rules.json"


def _decide(sampler: XRayRemoteSampler, path: str) -> bool:
    result = sampler.should_sample(
        None,
        0x5759E988BD862E3FE1BE46A994272793,
        "GET",
        SpanKind.SERVER,
        {"http.request.method": "GET", "url.path": path, "server.address": "shop.local"},
    )
    return result.decision is Decision.RECORD_AND_SAMPLE


def test_rules_and_quotas_come_from_the_collector(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    with Collector(make_config(tmp_path / "x.db", sampling_rules=str(RULES))).start() as collector:
        host, port = collector.tcp_address
        sampler = XRayRemoteSampler(
            resource=Resource({"service.name": "front"}),
            daemon_address=f"{host}:{port}",
            clock=lambda: clock[0],
            autostart=False,
        )
        try:
            assert sampler.refresh_rules()
            # The "Healthy check" rule (rate 0, reservoir 0): no health check is ever sampled.
            assert not any(_decide(sampler, "/healthcheck") for _ in range(20))
            # The default rule: reservoir 1/s (borrowed until a quota arrives), then 100 %.
            assert all(_decide(sampler, "/order/apple") for _ in range(20))
            clock[0] += 10.0  # statistics are reported every 10 s
            assert sampler.report_statistics()
            # The statistics the sampler reported add up, at the collector, to its decisions.
            reported = collector.status()["sampling"]
            assert sum(rule["RequestCount"] for rule in reported.values()) == 40
            assert sum(rule["SampledCount"] for rule in reported.values()) == 20
            assert reported["Default"]["SampledCount"] == 20
            assert reported["Default"]["BorrowCount"] >= 1
            # With the quota the collector granted, the default rule keeps sampling every
            # order (rate 1), and health checks stay out.
            clock[0] += 1.0
            assert all(_decide(sampler, "/order/pear") for _ in range(5))
            assert not _decide(sampler, "/healthcheck")
        finally:
            sampler.shutdown()
