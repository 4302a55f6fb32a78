"""Fuzz: whatever a span's attributes hold (surrogates, huge values, thousands of them, NaN), the
exporter sends only datagrams of at most 65,507 bytes whose documents are strict UTF-8 JSON that
the collector's validation accepts; nothing is dropped, nothing raises (issue 15 cases 10, 12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from otel_xray_collector.documents import Accepted
from otel_xray_collector.ingest.validate import parse_body, split_datagram

from otel_xray.exporter import XRayUdpSpanExporter
from otel_xray.wire import MAX_DATAGRAM_BYTES
from tests.support.udp import UdpDaemon

pytestmark = pytest.mark.fuzz

CHARACTERS = st.characters(exclude_categories=()) | st.sampled_from(
    ["\ud800", "\udbff", "\udc80", "\udcff", "\udfff", "\x00", "\ufffd", "\U0001f600", '"', "\\"]
)
TEXT = st.text(CHARACTERS, max_size=40)
HUGE = st.builds(lambda piece, n: piece * n, st.text(CHARACTERS, min_size=1, max_size=3),
                 st.integers(1_000, 60_000))  # fmt: skip
SCALAR = (
    TEXT
    | HUGE
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
)
SEQUENCE = st.lists(TEXT, max_size=5) | st.lists(st.integers(-5, 5), max_size=5)
ATTRIBUTES = st.dictionaries(TEXT.map(lambda k: "fuzz." + k), SCALAR | SEQUENCE, max_size=20)
MANY = st.integers(0, 4000).map(lambda n: {f"many.{i}": f"v{i}" for i in range(n)})
SEMANTIC = st.fixed_dictionaries(
    {},
    optional={
        "http.method": TEXT,
        "http.url": TEXT,
        "http.status_code": st.integers(-1000, 1000),
        "db.system": TEXT,
        "db.statement": TEXT | HUGE,
        "exception.message": TEXT | HUGE,
        "aws.operation": TEXT,
    },
)


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, XRayUdpSpanExporter, UdpDaemon]]:
    daemon = UdpDaemon()
    exporter = XRayUdpSpanExporter(daemon.address)
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "fuzz"}),
        span_limits=SpanLimits(max_span_attributes=10_000, max_attribute_length=None),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield provider, memory, exporter, daemon
    finally:
        exporter.shutdown()
        provider.shutdown()
        daemon.close()


@given(
    name=TEXT,
    kind=st.sampled_from(list(SpanKind)),
    attributes=ATTRIBUTES,
    many=MANY,
    semantic=SEMANTIC,
    event=st.none() | ATTRIBUTES,
)
def test_every_datagram_is_strict_json_the_collector_accepts(
    rig: tuple[TracerProvider, InMemorySpanExporter, XRayUdpSpanExporter, UdpDaemon],
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any],
    many: dict[str, str],
    semantic: dict[str, Any],
    event: dict[str, Any] | None,
) -> None:
    provider, memory, exporter, daemon = rig
    memory.clear()
    tracer = provider.get_tracer("fuzz")
    with tracer.start_as_current_span(
        "parent", kind=SpanKind.SERVER, attributes={**semantic, **many}
    ):
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
            if event is not None:
                span.add_event("exception", event)
    spans: list[ReadableSpan] = list(memory.get_finished_spans())
    before = exporter.counters
    already = len(daemon.datagrams)
    exporter.export(spans)
    after = exporter.counters
    assert after.dropped == before.dropped and after.translate_errors == before.translate_errors
    sent = after.datagrams_sent - before.datagrams_sent
    assert sent >= 1
    for datagram in daemon.wait_for(already + sent)[already:]:
        assert len(datagram) <= MAX_DATAGRAM_BYTES
        body = split_datagram(datagram)
        assert isinstance(body, bytes), body
        body.decode("utf-8")  # strict: no surrogates, no invalid bytes
        orjson.loads(body)
        outcomes = parse_body(body)
        assert all(isinstance(o, Accepted) for o in outcomes), outcomes
