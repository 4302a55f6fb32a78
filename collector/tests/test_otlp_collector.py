"""OTLP end to end: the official exporter -> the collector -> boto3's X-Ray client reads it back."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address


def test_spans_sent_over_otlp_are_queryable_with_boto3(
    collector: Collector, xray_client: Any
) -> None:
    otlp = collector.otlp_address
    assert otlp is not None
    exporter = OTLPSpanExporter(endpoint=format_address(otlp), insecure=True, timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "web-otlp"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    started = time.time()
    with tracer.start_as_current_span(
        "GET /items",
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.full": "http://web/items",
            "http.response.status_code": 500,
        },
    ) as server:
        with tracer.start_as_current_span("load items"):
            pass
    provider.shutdown()  # SimpleSpanProcessor exported each span synchronously before this
    otel_id = f"{server.get_span_context().trace_id:032x}"
    trace_id = f"1-{otel_id[:8]}-{otel_id[8:]}"
    assert collector.wait_for_datagrams(0)  # everything committed is indexed

    summaries = xray_client.get_trace_summaries(
        StartTime=started - 300, EndTime=time.time() + 300, TimeRangeType="Event"
    )["TraceSummaries"]
    traces = xray_client.batch_get_traces(TraceIds=[trace_id])["Traces"]

    summary = next(s for s in summaries if s["Id"] == trace_id)
    assert summary["HasFault"] is True
    assert summary["Http"]["HttpStatus"] == 500
    assert [s["Name"] for s in summary["ServiceIds"]] == ["web-otlp"]
    segment = json.loads(traces[0]["Segments"][0]["Document"])
    assert segment["name"] == "web-otlp"
    assert [sub["name"] for sub in segment["subsegments"]] == ["load items"]
    assert collector.status()["otlp"]["documents_submitted"] == 2
