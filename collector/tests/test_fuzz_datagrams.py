"""Fuzz: any datagram is accepted or counted as a rejection (or, ADOT's unsampled spans, as
noted), by the receiver process's frame builder and by the in-process pipeline alike; nothing
raises and nothing goes uncounted (issue 15: every datagram counted)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_xray_collector.ingest.pipeline import IngestPipeline
from otel_xray_collector.ingest.udp_child import FrameBuilder

from .support.segments import HEADER, new_id, new_trace_id

pytestmark = pytest.mark.fuzz


def _otlp_request() -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "fuzz"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("fuzz")
    with tracer.start_as_current_span("root", attributes={"http.method": "GET"}):
        with tracer.start_as_current_span("child"):
            pass
    return bytes(encode_spans(memory.get_finished_spans()).SerializeToString())


OTLP_REQUEST = _otlp_request()
SEGMENT = {
    "name": "svc",
    "id": new_id(),
    "trace_id": new_trace_id(time.time()),
    "start_time": time.time() - 1,
    "end_time": time.time(),
    "subsegments": [{"name": "db", "id": new_id(), "start_time": time.time() - 1}],
}

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=16,
)


@st.composite
def mangled_segment(draw: Any) -> bytes:
    document = json.loads(json.dumps(SEGMENT))
    target = draw(st.sampled_from([document, document["subsegments"][0]]))
    key = draw(st.sampled_from([*SEGMENT, "type", "parent_id", "in_progress", "x"]))
    target[key] = draw(_JSON)
    body = json.dumps(document).encode()
    if draw(st.booleans()):
        body = draw(st.sampled_from([b"[" + body + b"]", body[: draw(st.integers(0, 40))]]))
    return HEADER + body


@st.composite
def otlp(draw: Any) -> bytes:
    prefix = draw(st.sampled_from([b"T1S", b"T1U", b"M1", b"T1X"]))
    payload = bytearray(OTLP_REQUEST)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(payload)))
        payload[position : position + draw(st.integers(0, 4))] = draw(st.binary(max_size=4))
    text = base64.b64encode(bytes(payload))
    if draw(st.booleans()):
        text = draw(st.sampled_from([text[:-1], text + b"==", b" " + text, text.lower()]))
    return HEADER + prefix + text


DATAGRAMS = (
    st.binary(max_size=256)
    | st.binary(max_size=256).map(lambda b: HEADER + b)
    | _JSON.map(lambda v: HEADER + json.dumps(v).encode())
    | mangled_segment()
    | otlp()
    | st.just(b"")
    | st.integers(60_000, 70_000).map(lambda n: HEADER + b'{"a":"' + b"x" * n + b'"}')
)


@given(DATAGRAMS)
def test_receiver_process_frame_builder(data: bytes) -> None:
    builder = FrameBuilder()
    builder.add(data)
    frame = builder.finish()
    assert frame.datagrams == 1
    outcomes = builder.valid_datagrams + sum(n for n, _ in frame.rejects.values())
    assert outcomes + len(frame.noted) >= 1, (data[:200], frame)
    assert frame.documents.total == 0 or builder.valid_datagrams == 1


@pytest.fixture(scope="module")
def pipeline() -> Iterator[IngestPipeline]:
    """One pipeline (no store) for every example: the thread receiver's parsing path."""
    shared = IngestPipeline(None)
    shared.start()
    try:
        yield shared
    finally:
        shared.stop()


@given(DATAGRAMS)
def test_in_process_pipeline(pipeline: IngestPipeline, data: bytes) -> None:
    before = pipeline.counters()
    pipeline.put_datagrams([data])
    assert pipeline.wait_processed(before["datagrams_processed"] + 1, timeout=30)
    after = pipeline.counters()
    assert after["datagrams_processed"] == before["datagrams_processed"] + 1
    changed = (
        after["accepted"] - before["accepted"]
        + after["rejected_total"] - before["rejected_total"]
        + sum(after["otlp_udp"].values()) - sum(before["otlp_udp"].values())
    )  # fmt: skip
    assert changed >= 1, data[:200]
