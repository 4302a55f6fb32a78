"""XRaySpanProcessor: segments leave when their root ends, stragglers and streams on their own,
a bounded queue that drops without blocking, the SpanProcessor contract, fork and Lambda.

Real UDP to the ``udp_daemon`` fixture; every wait is for a datagram or an event.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import SpanKind

from otel_xray import XRaySpanProcessor
from otel_xray.exporter import XRayUdpSpanExporter
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon


@pytest.fixture
def made() -> Iterator[list[TracerProvider]]:
    providers: list[TracerProvider] = []
    yield providers
    for provider in providers:
        provider.shutdown()


def tracing(
    made: list[TracerProvider], exporter: SpanExporter, **options: object
) -> tuple[TracerProvider, XRaySpanProcessor]:
    processor = XRaySpanProcessor(exporter, **options)  # type: ignore[arg-type]
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(processor)
    made.append(provider)
    return provider, processor


def test_root_end_sends_the_segment_with_its_children_embedded_without_a_flush(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, processor = tracing(made, XRayUdpSpanExporter(udp_daemon.address))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
            pass
        with tracer.start_as_current_span("render"):
            pass
    (segment,) = udp_daemon.documents(1)  # awaited, no force_flush
    assert_valid(segment)
    assert "type" not in segment
    assert sorted(s["name"] for s in segment["subsegments"]) == ["SELECT", "render"]
    assert provider.force_flush()  # the sender's round is over: its counters are final
    counters = processor.counters
    assert counters.spans_received == 3 and counters.exports == 1
    assert counters.dropped_queue_full == 0 and counters.spans_streamed == 0


def test_a_child_ending_after_its_root_goes_out_on_its_own_when_it_ends(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, _ = tracing(made, XRayUdpSpanExporter(udp_daemon.address))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("POST /jobs", kind=SpanKind.SERVER) as root:
        background = tracer.start_span("background work")  # handed to a thread, ends later
    (segment,) = udp_daemon.documents(1)
    assert "subsegments" not in segment
    background.end()
    _, straggler = udp_daemon.documents(2)
    assert_valid(straggler)
    assert straggler["type"] == "subsegment" and straggler["name"] == "background work"
    assert straggler["parent_id"] == span_id(root)
    assert straggler["trace_id"] == segment["trace_id"]


def test_a_long_open_root_streams_its_finished_subsegments(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, processor = tracing(
        made, XRayUdpSpanExporter(udp_daemon.address), streaming_threshold=3
    )
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("websocket", kind=SpanKind.SERVER):
        for index in range(4):  # one more than the threshold: all four are streamed
            with tracer.start_as_current_span(f"message {index}"):
                pass
        streamed = udp_daemon.documents(4)  # while the root is still open
        assert sorted(d["name"] for d in streamed) == [f"message {i}" for i in range(4)]
        assert all(d["type"] == "subsegment" for d in streamed)
        assert processor.counters.spans_streamed == 4
        with tracer.start_as_current_span("message 4"):
            pass
    documents = udp_daemon.documents(5)
    segment = documents[4]
    assert "type" not in segment and segment["name"] != "message 4"
    assert [s["name"] for s in segment["subsegments"]] == ["message 4"]
    assert processor.counters.spans_streamed == 4


def test_children_held_across_many_open_roots_stay_within_the_queue_bound(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    """Each open root holds fewer children than the threshold, but together they reach the
    queue's bound: they are streamed all the same. (Synchronous, so the sender's rounds happen
    at known points: every second queued span here.)"""
    exporter = XRayUdpSpanExporter(udp_daemon.address)
    provider, processor = tracing(made, exporter, max_queue_size=4, synchronous=True)
    tracer = provider.get_tracer("t")
    roots = [tracer.start_span(f"stream {i}", kind=SpanKind.SERVER) for i in range(4)]
    for root in roots[:3]:
        tracer.start_span("chunk", context=trace.set_span_in_context(root)).end()
    assert processor.counters.spans_streamed == 0  # held: 3 of at most 4
    tracer.start_span("chunk", context=trace.set_span_in_context(roots[3])).end()
    assert processor.counters.spans_streamed == 4
    assert exporter.counters.datagrams_sent == 4
    documents = udp_daemon.documents(4)
    assert [d["name"] for d in documents] == ["chunk"] * 4
    for root in roots:
        root.end()
    assert len(udp_daemon.documents(8)) == 8


class GatedExporter(SpanExporter):
    """The real exporter behind a gate: ``export`` waits until the test opens it, standing in
    for a sender stalled by a slow machine."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.gate.wait()
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.gate.set()
        self.inner.shutdown()


def test_a_full_queue_drops_counts_and_logs_once_without_blocking(
    udp_daemon: UdpDaemon, made: list[TracerProvider], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = GatedExporter(XRayUdpSpanExporter(udp_daemon.address))
    provider, processor = tracing(made, exporter, max_queue_size=3)
    tracer = provider.get_tracer("t")
    tracer.start_span("first", kind=SpanKind.SERVER).end()
    assert exporter.entered.wait(30)  # the sender is now stuck in export
    with caplog.at_level(logging.WARNING, logger="otel_xray.processor"):
        for index in range(10):  # returns although nothing can leave: 3 queued, 7 dropped
            tracer.start_span(f"request {index}", kind=SpanKind.SERVER).end()
    assert processor.counters.dropped_queue_full == 7
    warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(warnings) == 1
    exporter.gate.set()
    assert provider.force_flush(30_000)
    names = sorted(d["name"] for d in udp_daemon.documents(4))
    assert len(names) == 4 and processor.counters.spans_received == 4


def test_force_flush_sends_children_held_for_an_open_root(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, processor = tracing(made, XRayUdpSpanExporter(udp_daemon.address))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("job", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("step"):
            pass
        assert udp_daemon.datagrams == []  # held for the root
        assert processor.force_flush()
        (step,) = udp_daemon.documents(1)
        assert step["name"] == "step" and step["type"] == "subsegment"
    assert udp_daemon.documents(2)[1]["name"] != "step"


def test_shutdown_sends_what_is_held_and_counts_later_spans(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, processor = tracing(made, XRayUdpSpanExporter(udp_daemon.address))
    tracer = provider.get_tracer("t")
    root = tracer.start_span("job", kind=SpanKind.SERVER)
    tracer.start_span("held", context=trace.set_span_in_context(root)).end()
    provider.shutdown()
    (held,) = udp_daemon.documents(1)  # sent by shutdown itself, not by a timer
    assert held["name"] == "held"
    root.end()
    assert processor.counters.dropped_after_shutdown == 1
    assert processor._sender is not None and not processor._sender.is_alive()


def test_unsampled_spans_are_never_queued(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    processor = XRaySpanProcessor(XRayUdpSpanExporter(udp_daemon.address))
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(processor)
    made.append(provider)
    provider.get_tracer("t").start_span("GET /", kind=SpanKind.SERVER).end()
    assert provider.force_flush()
    assert processor.counters.spans_received == 0 and udp_daemon.datagrams == []


def test_synchronous_mode_sends_before_the_root_end_returns(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    """Lambda: the process is frozen once the handler returns, so no thread may be relied on."""
    exporter = XRayUdpSpanExporter(udp_daemon.address)
    provider, processor = tracing(made, exporter, synchronous=True)
    assert processor._sender is None
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("handler", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("s3"):
            pass
        assert exporter.counters.datagrams_sent == 0
    assert exporter.counters.datagrams_sent == 1  # already handed to the kernel
    (segment,) = udp_daemon.documents(1)
    assert [s["name"] for s in segment["subsegments"]] == ["s3"]


def span_id(span: trace.Span) -> str:
    return f"{span.get_span_context().span_id:016x}"


def test_a_forked_child_has_its_own_queue_and_sender(
    udp_daemon: UdpDaemon, made: list[TracerProvider]
) -> None:
    provider, processor = tracing(made, XRayUdpSpanExporter(udp_daemon.address))
    tracer = provider.get_tracer("t")
    parent_root = tracer.start_span("parent request", kind=SpanKind.SERVER)
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: trace a request, let its own sender send it, wait to be told
        try:
            os.close(go_write)
            worker = {"worker": "child"}
            tracer.start_span("child request", kind=SpanKind.SERVER, attributes=worker).end()
            os.read(go_read, 1)
        finally:
            os._exit(0)
    os.close(go_read)
    try:
        (document,) = udp_daemon.documents(1)  # sent by the child's sender: nobody flushed
        assert document["metadata"]["default"]["worker"] == "child"
    finally:
        os.write(go_write, b"x")
        os.close(go_write)
        os.waitpid(pid, 0)
    parent_root.end()  # the parent's sender still works, and the child never sent this one
    documents = udp_daemon.documents(2)
    assert documents[1]["id"] == span_id(parent_root) != documents[0]["id"]
    assert processor.counters.spans_received == 1
