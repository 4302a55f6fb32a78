"""The library's exporter against the collector: what it sends is stored, never silently lost.

Issue 15 cases 10 and 12: a lone surrogate used to make the exporter write ``\\udcff`` escapes
that the collector refused as invalid JSON (while the exporter counted the span as sent), and a
span with thousands of small attributes used to be dropped whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address

from otel_xray.exporter import XRayUdpSpanExporter
from otel_xray.translate.links import xray_trace_id
from otel_xray.wire import MAX_DATAGRAM_BYTES


class Pipeline:
    """An SDK tracer whose spans go through the real exporter to the collector's UDP port."""

    def __init__(self, collector: Collector) -> None:
        self.exporter = XRayUdpSpanExporter(format_address(collector.udp_address))
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "files"}),
            span_limits=SpanLimits(max_span_attributes=10_000),  # the SDK keeps 128 by default
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")


@pytest.fixture
def pipeline(collector: Collector) -> Iterator[Pipeline]:
    made = Pipeline(collector)
    try:
        yield made
    finally:
        made.provider.shutdown()


def stored_document(collector: Collector, xray_client: Any, trace_id: int) -> dict[str, Any]:
    assert collector.wait_for_datagrams(1, timeout=30)
    status = collector.status()
    assert status["rejected"] == {}, status["rejected"]
    assert status["stored"] == 1
    traces = xray_client.batch_get_traces(TraceIds=[xray_trace_id(trace_id)])["Traces"]
    [segment] = traces[0]["Segments"]
    document: dict[str, Any] = json.loads(segment["Document"])
    return document


def test_a_lone_surrogate_is_stored_as_a_replacement_character(
    collector: Collector, xray_client: Any, pipeline: Pipeline
) -> None:
    name = b"report-\xff.csv".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    with pipeline.tracer.start_as_current_span(
        "upload", kind=SpanKind.SERVER, attributes={"file.name": name, "note": "\ud800"}
    ) as span:
        trace_id = span.get_span_context().trace_id
    counters = pipeline.exporter.counters
    assert counters.spans_exported == 1 and counters.dropped == 0
    document = stored_document(collector, xray_client, trace_id)
    values = document["metadata"]["default"]
    assert values["file.name"] == "report-\ufffd.csv"
    assert values["note"] == "\ufffd"


def test_a_span_with_thousands_of_small_attributes_is_trimmed_not_dropped(
    collector: Collector, xray_client: Any, pipeline: Pipeline
) -> None:
    attributes = {f"attr.{i:05d}": f"value-{i}" for i in range(6000)}  # ~150 KB of metadata
    with pipeline.tracer.start_as_current_span(
        "crowded", kind=SpanKind.SERVER, attributes={**attributes, "http.method": "GET"}
    ) as span:
        trace_id = span.get_span_context().trace_id
    counters = pipeline.exporter.counters
    assert counters.dropped == 0 and counters.spans_exported == 1
    assert counters.truncated == 1
    assert counters.bytes_sent <= MAX_DATAGRAM_BYTES
    document = stored_document(collector, xray_client, trace_id)
    kept = document["metadata"]["default"]
    assert 0 < len(kept) < 6000
    resource_entries = 5  # otel.resource.service.name, .telemetry.sdk.* ... (metadata too)
    assert counters.attributes_dropped == 6000 + resource_entries - len(kept)
    assert document["http"]["request"]["method"] == "GET"  # blocks other than metadata intact
    assert all(kept[key] == attributes[key] for key in kept)


def test_the_first_trim_is_logged_once(
    collector: Collector, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    attributes = {f"attr.{i:05d}": f"value-{i}" for i in range(6000)}
    for _ in range(2):
        with pipeline.tracer.start_as_current_span("crowded", attributes=attributes):
            pass
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_xray.exporter"]
    assert len(messages) == 1 and "attributes dropped whole" in messages[0]
    assert pipeline.exporter.counters.truncated == 2
    assert collector.wait_for_datagrams(2, timeout=30)
    assert collector.status()["stored"] == 2
