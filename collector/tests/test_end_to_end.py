"""Real senders to the collector, read back through boto3: aws-xray-sdk and our UDP exporter."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address

from otel_xray.exporter import XRayUdpSpanExporter

from .support.postgres import BOTH_STORES

pytestmark = BOTH_STORES

SDK_APP = Path(__file__).parent / "support" / "xray_sdk_app.py"


def run_sdk_app(daemon_address: str) -> dict[str, Any]:
    """Run the aws-xray-sdk app in its own interpreter; the ids it printed."""
    run = subprocess.run(
        [sys.executable, str(SDK_APP), daemon_address],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ids: dict[str, Any] = json.loads(run.stdout)
    return ids


def services_by_name(services: list[dict[str, Any]]) -> dict[tuple[str, Any], dict[str, Any]]:
    return {(s["Name"], s.get("Type")): s for s in services}


def edge_targets(service: dict[str, Any], services: list[dict[str, Any]]) -> dict[str, Any]:
    by_ref = {s["ReferenceId"]: s for s in services}
    return {by_ref[e["ReferenceId"]]["Name"]: e for e in service["Edges"]}


def test_aws_xray_sdk_segments_come_back_through_boto3(
    collector: Collector, xray_client: Any
) -> None:
    ids = run_sdk_app(format_address(collector.udp_address))
    assert collector.wait_for_datagrams(ids["datagrams"])
    assert collector.status()["rejected"] == {}
    now = time.time()

    [summary] = xray_client.get_trace_summaries(StartTime=now - 300, EndTime=now + 5)[
        "TraceSummaries"
    ]
    assert summary["Id"] == ids["trace_id"]
    assert summary["HasFault"] is True and summary["IsPartial"] is False
    assert summary["Http"] == {
        "HttpURL": "http://shop.example/cart",
        "HttpMethod": "POST",
        "HttpStatus": 502,
        "UserAgent": "pytest",
        "ClientIp": "127.0.0.1",
    }
    assert summary["Users"][0]["UserName"] == "alice"
    assert summary["Annotations"]["tier"][0]["AnnotationValue"] == {"StringValue": "gold"}
    filtered = xray_client.get_trace_summaries(
        StartTime=now - 300,
        EndTime=now + 5,
        FilterExpression='service("inventory") { error } AND user = "alice"',
    )
    assert [t["Id"] for t in filtered["TraceSummaries"]] == [ids["trace_id"]]

    [trace] = xray_client.batch_get_traces(TraceIds=[ids["trace_id"]])["Traces"]
    documents = {
        json.loads(s["Document"])["name"]: json.loads(s["Document"]) for s in trace["Segments"]
    }
    assert set(documents) == {"checkout", "inventory", "payments.example", "orders@db.example"}
    checkout = documents["checkout"]
    # streamed subsegments are folded back under their parent
    assert {s["id"] for s in checkout["subsegments"]} >= {
        ids["payments"],
        ids["database"],
        ids["inventory_call"],
        ids["charge"],
    }
    [charge] = [s for s in checkout["subsegments"] if s["id"] == ids["charge"]]
    assert charge["cause"]["exceptions"][0]["message"] == "card declined"
    assert documents["inventory"]["id"] == ids["inventory"]
    assert documents["payments.example"]["inferred"] is True
    assert documents["payments.example"]["origin"] == "remote"
    assert documents["orders@db.example"]["origin"] == "Database::SQL"

    services = xray_client.get_service_graph(StartTime=now - 300, EndTime=now + 5)["Services"]
    nodes = services_by_name(services)
    assert set(nodes) == {
        ("checkout", "client"),
        ("checkout", None),
        ("inventory", None),
        ("payments.example", "remote"),
        ("orders@db.example", "Database::SQL"),
    }
    root = nodes[("checkout", None)]
    assert root["Root"] is True
    assert root["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    edges = edge_targets(root, services)
    assert set(edges) == {"inventory", "payments.example", "orders@db.example"}
    assert edges["payments.example"]["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    assert edges["inventory"]["SummaryStatistics"]["ErrorStatistics"]["OtherCount"] == 1
    assert edges["orders@db.example"]["SummaryStatistics"]["OkCount"] == 1
    inventory = nodes[("inventory", None)]
    assert inventory["State"] == "active" and inventory["Root"] is False
    assert inventory["SummaryStatistics"]["ErrorStatistics"]["TotalCount"] == 1
    assert nodes[("payments.example", "remote")]["State"] == "unknown"
    for service in services:
        for edge in service["Edges"]:
            assert edge["SummaryStatistics"]["TotalResponseTime"] >= 0


def test_our_udp_exporter_spans_come_back_through_boto3(
    collector: Collector, xray_client: Any
) -> None:
    exporter = XRayUdpSpanExporter(format_address(collector.udp_address))
    provider = TracerProvider(
        resource=Resource.create({"service.name": "storefront"}), id_generator=AwsXRayIdGenerator()
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    try:
        with tracer.start_as_current_span(
            "GET /basket",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.full": "http://storefront/basket",
                "http.response.status_code": 500,
            },
        ) as server:
            server.set_status(Status(StatusCode.ERROR))
            with tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "GET",
                    "url.full": "http://prices.example/v1",
                    "server.address": "prices.example",
                    "http.response.status_code": 200,
                },
            ):
                pass
        trace_id = f"1-{server.get_span_context().trace_id:032x}"
        trace_id = f"{trace_id[:10]}-{trace_id[10:]}"
    finally:
        provider.shutdown()
    sent = exporter.counters.datagrams_sent
    assert sent >= 1
    assert collector.wait_for_datagrams(sent)
    assert collector.status()["rejected"] == {}
    now = time.time()
    [summary] = xray_client.get_trace_summaries(StartTime=now - 300, EndTime=now + 5)[
        "TraceSummaries"
    ]
    assert summary["Id"] == trace_id
    assert summary["HasFault"] is True
    assert summary["Http"]["HttpStatus"] == 500
    services = xray_client.get_service_graph(StartTime=now - 300, EndTime=now + 5)["Services"]
    names = {s["Name"] for s in services}
    assert "storefront" in names and "prices.example" in names
    [front] = [s for s in services if s["Name"] == "storefront" and s.get("Type") != "client"]
    assert front["Root"] is True
    assert front["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    assert "prices.example" in edge_targets(front, services)


@pytest.mark.parametrize("range_type", ["TraceId", "Event", "Service"])
def test_exporter_trace_found_by_every_time_range_type(
    collector: Collector, xray_client: Any, range_type: str
) -> None:
    exporter = XRayUdpSpanExporter(format_address(collector.udp_address))
    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("e2e").start_as_current_span("job"):
        pass
    provider.shutdown()
    assert collector.wait_for_datagrams(exporter.counters.datagrams_sent)
    now = time.time()
    found = xray_client.get_trace_summaries(
        StartTime=now - 60, EndTime=now + 5, TimeRangeType=range_type
    )["TraceSummaries"]
    assert len(found) == 1
