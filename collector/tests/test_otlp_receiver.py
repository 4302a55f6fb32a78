"""OtlpReceiver: the official OTLP/gRPC exporter -> receiver -> the library's translator."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from otel_xray_collector.ingest.otlp import (
    OTLP_TRANSLATE_OPTIONS,
    OtlpReceiver,
    readable_spans,
)

from otel_xray.translate import TranslateOptions, span_to_documents

_HEX16 = re.compile(r"[0-9a-f]{16}")


class Refusal:
    def __init__(self, message: str) -> None:
        self.message = message


class DocumentSink:
    """The ``submit`` callback: keeps each request's documents, can be told to refuse."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.refuse: Exception | None = None
        self.reject_names: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, documents: list[dict[str, Any]]) -> list[Refusal]:
        if self.refuse is not None:
            raise self.refuse
        with self._lock:
            self.batches.append([d for d in documents if d["name"] not in self.reject_names])
        refused = [d["name"] for d in documents if d["name"] in self.reject_names]
        return [Refusal(f"{name} is refused") for name in refused]

    @property
    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [doc for batch in self.batches for doc in batch]


@pytest.fixture
def sink() -> DocumentSink:
    return DocumentSink()


@pytest.fixture
def receiver(sink: DocumentSink) -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver("127.0.0.1", 0, sink)
    otlp.start()
    try:
        yield otlp
    finally:
        otlp.stop()


@pytest.fixture
def exporters() -> Iterator[list[OTLPSpanExporter]]:
    created: list[OTLPSpanExporter] = []
    yield created
    for exporter in created:
        exporter.shutdown()


def official_exporter(
    created: list[OTLPSpanExporter], port: int, compression: Compression | None = None
) -> OTLPSpanExporter:
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{port}", insecure=True, compression=compression, timeout=10
    )
    created.append(exporter)
    return exporter


def record_scenario() -> tuple[ReadableSpan, ...]:
    """Spans covering what the translator reads: server, client call with an exception,
    producer root (split in two documents), links, events, arrays, a rich resource."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "checkout",
                "service.version": "1.4.2",
                "cloud.provider": "aws",
                "cloud.platform": "aws_ec2",
                "cloud.region": "eu-west-1",
                "cloud.availability_zone": "eu-west-1a",
                "host.id": "i-0123456789abcdef0",
                "deployment.environment": "test",
            }
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(
        "shop.web", "2.0.0", schema_url="https://opentelemetry.io/schemas/1.21.0"
    )
    remote_parent = SpanContext(
        0x6568E0C1A2B3C4D5E6F708192A3B4C5D,
        0x1122334455667788,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with tracer.start_as_current_span(
        "GET /cart",
        context=trace.set_span_in_context(NonRecordingSpan(remote_parent)),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.full": "http://shop.example.com/cart?id=7",
            "url.path": "/cart",
            "http.route": "/cart",
            "http.response.status_code": 200,
            "client.address": "203.0.113.9",
            "user_agent.original": "curl/8.0",
            "enduser.id": "alice",
            "cart.items": ["apple", "pear"],
            "cart.total": 12.5,
            "cart.express": True,
        },
    ) as server:
        server.add_event("cache.miss", {"cache.key": "cart:7", "attempt": 2})
        with tracer.start_as_current_span(
            "POST",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.full": "http://payments.internal:8080/charge",
                "server.address": "payments.internal",
                "http.response.status_code": 503,
            },
        ) as call:
            try:
                raise ConnectionError("payments unavailable")
            except ConnectionError as exc:
                call.record_exception(exc)
                call.set_status(trace.Status(trace.StatusCode.ERROR, "payments unavailable"))
        with tracer.start_as_current_span(
            "price cart", links=[trace.Link(remote_parent, {"link.reason": "batch"})]
        ) as internal:
            internal.set_attribute("prices.ids", [3, 5, 8])
    with tracer.start_as_current_span(
        "orders publish",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "aws_sqs", "messaging.destination.name": "orders"},
    ):
        pass
    spans = memory.get_finished_spans()
    provider.shutdown()
    return spans


def translated(spans: tuple[ReadableSpan, ...], options: TranslateOptions) -> list[dict[str, Any]]:
    return [doc for span in spans for doc in span_to_documents(span, options)]


def normalised(documents: list[dict[str, Any]], span_ids: set[str]) -> list[str]:
    """Documents as sorted JSON, with ids the translator makes up at random blanked out."""

    def scrub(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v, key) for v in value]
        if key in ("id", "parent_id") and isinstance(value, str) and _HEX16.fullmatch(value):
            return value if value in span_ids else "<generated>"
        return value

    return sorted(json.dumps(scrub(doc), sort_keys=True) for doc in documents)


def span_id_set(spans: tuple[ReadableSpan, ...]) -> set[str]:
    ids = {f"{s.context.span_id:016x}" for s in spans}
    ids |= {f"{s.parent.span_id:016x}" for s in spans if s.parent is not None}
    return ids


def test_official_exporter_spans_translate_like_in_process(
    receiver: OtlpReceiver, sink: DocumentSink, exporters: list[OTLPSpanExporter]
) -> None:
    spans = record_scenario()
    exporter = official_exporter(exporters, receiver.port)

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    expected = translated(spans, OTLP_TRANSLATE_OPTIONS)
    assert len(expected) == len(spans) + 1  # the producer root splits into call + segment
    assert normalised(sink.documents, span_id_set(spans)) == normalised(
        expected, span_id_set(spans)
    )
    counters = receiver.counters()
    assert counters == {
        "requests": 1,
        "spans_received": len(spans),
        "documents_submitted": len(expected),
        "translate_errors": 0,
        "submit_errors": 0,
    }


def test_gzip_compressed_export_is_accepted(
    receiver: OtlpReceiver,
    sink: DocumentSink,
    exporters: list[OTLPSpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    spans = record_scenario()
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True, timeout=10)
    exporters.append(exporter)
    assert exporter._compression is Compression.Gzip  # the setting users make, as the SDK read it

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    ids = span_id_set(spans)
    assert normalised(sink.documents, ids) == normalised(
        translated(spans, OTLP_TRANSLATE_OPTIONS), ids
    )


def link_summary(span: ReadableSpan) -> list[tuple[int, bool, dict[str, Any]]]:
    return [(k.context.span_id, k.context.is_remote, dict(k.attributes)) for k in span.links]


def test_received_spans_keep_what_the_sdk_recorded() -> None:
    spans = record_scenario()

    rebuilt, problems = readable_spans(encode_spans(spans).resource_spans)

    assert problems == []
    by_id = {span.context.span_id: span for span in rebuilt}
    for original in spans:
        copy = by_id[original.context.span_id]
        assert (copy.name, copy.kind, copy.start_time, copy.end_time) == (
            original.name,
            original.kind,
            original.start_time,
            original.end_time,
        )
        assert copy.context.trace_id == original.context.trace_id
        assert copy.parent == original.parent or (
            (copy.parent.span_id, copy.parent.is_remote)
            == (original.parent.span_id, original.parent.is_remote)
        )
        assert dict(copy.attributes) == dict(original.attributes)
        assert copy.resource == original.resource
        assert copy.instrumentation_scope == original.instrumentation_scope
        assert (copy.status.status_code, copy.status.description) == (
            original.status.status_code,
            original.status.description,
        )
        assert [(e.name, dict(e.attributes), e.timestamp) for e in copy.events] == [
            (e.name, dict(e.attributes), e.timestamp) for e in original.events
        ]
        assert link_summary(copy) == link_summary(original)
    server = next(s for s in rebuilt if s.kind is SpanKind.SERVER)
    assert server.parent.is_remote  # the SERVER span's parent came from another process


def _key_value(key: str, value: common_pb2.AnyValue) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=value)


def _request(*spans: trace_pb2.Span, resource: list[common_pb2.KeyValue] | None = None) -> Any:
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=resource or []),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="other-lang"), spans=spans
                    )
                ],
            )
        ]
    )


def _span(name: str, span_id: bytes = b"\x01" * 8, **fields: Any) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=bytes.fromhex("6568e0c1a2b3c4d5e6f708192a3b4c5d"),
        span_id=span_id,
        name=name,
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_250_000_000,
        **fields,
    )


@pytest.fixture
def stub(receiver: OtlpReceiver) -> Iterator[Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{receiver.port}")
    try:
        yield trace_service_pb2_grpc.TraceServiceStub(channel)
    finally:
        channel.close()


def test_unreadable_spans_are_a_partial_success(
    stub: Any, receiver: OtlpReceiver, sink: DocumentSink
) -> None:
    request = _request(
        _span("good"), _span("bad id", span_id=b"\x01\x02"), _span("zero", b"\0" * 8)
    )

    response = stub.Export(request, timeout=10)

    assert response.partial_success.rejected_spans == 2
    assert "span_id must be 8 bytes" in response.partial_success.error_message
    assert [doc["name"] for doc in sink.documents] == ["good"]
    assert receiver.counters()["spans_received"] == 3


def test_a_full_pipeline_answers_unavailable_so_exporters_retry(
    stub: Any, receiver: OtlpReceiver, sink: DocumentSink
) -> None:
    sink.refuse = RuntimeError("queue full")

    with pytest.raises(grpc.RpcError) as raised:
        stub.Export(_request(_span("x")), timeout=10)

    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "queue full" in raised.value.details()
    assert receiver.counters()["submit_errors"] == 1
    assert receiver.counters()["documents_submitted"] == 0


def test_documents_the_pipeline_refuses_are_a_partial_success(
    stub: Any, receiver: OtlpReceiver, sink: DocumentSink
) -> None:
    sink.reject_names = {"refused"}

    response = stub.Export(_request(_span("kept"), _span("refused", b"\x02" * 8)), timeout=10)

    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == "document refused: refused is refused"
    assert [doc["name"] for doc in sink.documents] == ["kept"]
    assert receiver.counters()["documents_submitted"] == 1


def test_values_other_sdks_send_become_json_friendly_attributes(
    stub: Any, sink: DocumentSink
) -> None:
    kvlist = common_pb2.AnyValue(
        kvlist_value=common_pb2.KeyValueList(
            values=[
                _key_value("region", common_pb2.AnyValue(string_value="eu")),
                _key_value("tries", common_pb2.AnyValue(int_value=3)),
            ]
        )
    )
    attributes = [
        _key_value("payload", common_pb2.AnyValue(bytes_value=b"\xff\x00")),
        _key_value("text.bytes", common_pb2.AnyValue(bytes_value=b"hello")),
        _key_value("details", kvlist),
        _key_value("empty", common_pb2.AnyValue()),
    ]
    span = _span(
        "other",
        attributes=attributes,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK, message="ignored"),
    )
    resource = [
        _key_value("service.name", common_pb2.AnyValue(string_value="legacy")),
        _key_value("k8s", kvlist),
    ]

    stub.Export(_request(span, resource=resource), timeout=10)
    rebuilt, _ = readable_spans(_request(span, resource=resource).resource_spans)

    assert dict(rebuilt[0].attributes) == {
        "payload": "/wA=",
        "text.bytes": "hello",
        "details": {"region": "eu", "tries": 3},
    }
    assert dict(rebuilt[0].resource.attributes) == {
        "service.name": "legacy",
        "k8s.region": "eu",
        "k8s.tries": 3,
    }
    assert rebuilt[0].status.description is None  # only ERROR keeps a description, as in the SDK
    documents = sink.documents
    assert len(documents) == 1 and documents[0]["name"] == "legacy"
    json.dumps(documents)  # whatever arrived, the document encodes


def test_port_in_use_is_a_clear_error(receiver: OtlpReceiver, sink: DocumentSink) -> None:
    second = OtlpReceiver("127.0.0.1", receiver.port, sink)

    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{receiver.port}"):
        second.start()


def test_stop_releases_the_port(sink: DocumentSink) -> None:
    otlp = OtlpReceiver("127.0.0.1", 0, sink)
    otlp.start()
    port = otlp.port
    otlp.stop()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again
