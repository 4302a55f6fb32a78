"""Segment documents -> OTLP spans (forwarding over OTLP), checked as the inverse of the library's
translator: span -> segment (translator) -> OTLP span (converter) -> segment (translator again)
keeps every key field, and the OTLP spans say what the upstream awsxrayreceiver would say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from otel_xray_collector.forward.otlp_convert import (
    MAX_SPAN_BYTES,
    InvalidDocument,
    ServiceDirectory,
    build_requests,
    convert_document,
    is_in_progress,
    resolve_services,
    trace_id_bytes,
    trim_span,
)
from otel_xray_collector.ingest.otlp import readable_spans

from collector.tests.test_otlp_receiver import record_scenario
from otel_xray.translate import span_to_documents
from otel_xray.translate.origin import (
    ORIGIN_APP_RUNNER,
    ORIGIN_BEANSTALK,
    ORIGIN_EC2,
    ORIGIN_ECS,
    ORIGIN_ECS_EC2,
    ORIGIN_ECS_FARGATE,
    ORIGIN_EKS,
    ORIGIN_LAMBDA,
    ORIGIN_PLATFORMS,
)


def _attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        value = getattr(kv.value, which)
        if which == "array_value":
            value = [getattr(v, v.WhichOneof("value")) for v in value.values]
        out[kv.key] = value
    return out


@pytest.fixture
def recorded() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "orders",
                "service.version": "1.2.3",
                "cloud.provider": "aws",
                "cloud.platform": "aws_ec2",
                "host.id": "i-0123456789abcdef0",
                "deployment.environment": "prod",
            }
        ),
        id_generator=AwsXRayIdGenerator(),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _record_request(tracer: Any) -> None:
    with tracer.start_as_current_span(
        "GET /orders",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.full": "http://shop.example.com/orders",
            "http.response.status_code": 500,
            "client.address": "10.0.0.1",
            "user_agent.original": "curl/8",
            "customer": "c-42",
            "aws.xray.annotations": ("customer",),
            "cart.items": 3,
        },
    ) as server:
        with tracer.start_as_current_span(
            "SELECT shop",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.name": "shop",
                "server.address": "db.local",
                "db.statement": "SELECT * FROM orders WHERE id = ?",
                "db.user": "app",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "DynamoDB.GetItem",
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system": "aws-api",
                "rpc.service": "DynamoDB",
                "rpc.method": "GetItem",
                "aws.table_name": "carts",
                "aws.request_id": "REQ1",
            },
        ):
            pass
        with tracer.start_as_current_span("compute", kind=SpanKind.INTERNAL):
            pass
        try:
            raise ValueError("boom")
        except ValueError as exc:
            server.record_exception(exc)
        server.set_status(Status(StatusCode.ERROR, "boom"))


def _round_trip(
    spans: list[ReadableSpan],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    documents = [doc for span in spans for doc in span_to_documents(span)]
    converted = [convert_document(json.loads(json.dumps(doc))) for doc in documents]
    assert resolve_services(converted, ServiceDirectory()) == []
    requests = list(
        build_requests(
            (index, item.resource, span)
            for index, item in enumerate(converted)
            for span in item.spans
        )
    )
    assert len(requests) == 1
    message = requests[0].message
    readable, problems = readable_spans(message.resource_spans)
    assert problems == []
    again = [doc for span in readable for doc in span_to_documents(span)]
    return documents, again, list(message.resource_spans)


KEY_FIELDS = (
    "name",
    "id",
    "trace_id",
    "parent_id",
    "type",
    "namespace",
    "fault",
    "error",
    "throttle",
    "http",
    "sql",
    "annotations",
    "origin",
)


def test_span_to_segment_to_otlp_to_segment_keeps_every_key_field(recorded: Any) -> None:
    tracer, exporter = recorded
    _record_request(tracer)
    before, after, _ = _round_trip(list(exporter.get_finished_spans()))
    assert len(after) == len(before) == 4
    by_id = {doc["id"]: doc for doc in after}
    for original in before:
        echoed = by_id[original["id"]]
        for key in KEY_FIELDS:
            assert echoed.get(key) == original.get(key), key
        assert echoed["start_time"] == pytest.approx(original["start_time"], abs=1e-6)
        assert echoed["end_time"] == pytest.approx(original["end_time"], abs=1e-6)
        for key in ("operation", "table_name", "request_id", "ec2"):
            assert echoed.get("aws", {}).get(key) == original.get("aws", {}).get(key), key
        original_cause = original.get("cause", {}).get("exceptions", [])
        echoed_cause = echoed.get("cause", {}).get("exceptions", [])
        assert [(e["type"], e["message"]) for e in echoed_cause] == [
            (e["type"], e["message"]) for e in original_cause
        ]
        # Leftover attributes and the resource come back as the same metadata, plus the
        # ``peer.service`` / ``aws.service`` that name a subsegment's callee for OTLP readers.
        metadata = echoed.get("metadata")
        naming = {"remote": "peer.service", "aws": "aws.service"}.get(original.get("namespace"))
        if naming:
            assert metadata["default"].pop(naming) == original["name"]
        assert metadata == original.get("metadata")


def test_the_otlp_receivers_scenario_survives_the_round_trip_whole() -> None:
    """Remote parent, links, arrays, a client fault with a Python stack, a split producer root:
    the documents made again from the forwarded spans are the originals, but for the random
    exception ids and the attribute that names each subsegment's callee."""
    before, after, _ = _round_trip(list(record_scenario()))
    assert len(after) == len(before) == 5

    def comparable(doc: dict[str, Any]) -> dict[str, Any]:
        doc = json.loads(json.dumps(doc))
        for exception in doc.get("cause", {}).get("exceptions", []):
            exception.pop("id")
        default = doc.get("metadata", {}).get("default", {})
        default.pop("peer.service", None)
        if doc.get("metadata") == {"default": {}}:
            del doc["metadata"]
        return doc

    by_id = {doc["id"]: comparable(doc) for doc in after}
    for original in before:
        assert by_id[original["id"]] == comparable(original)


def test_otlp_spans_carry_ids_kinds_status_resource_and_attributes(recorded: Any) -> None:
    tracer, exporter = recorded
    _record_request(tracer)
    spans = list(exporter.get_finished_spans())
    _, _, resource_spans = _round_trip(spans)
    by_name = {}
    for group in resource_spans:
        resource = _attributes(group.resource)
        for scope_spans in group.scope_spans:
            assert scope_spans.scope.name == "otel-xray-collector"
            for span in scope_spans.spans:
                by_name[span.name] = (resource, span)
    server_resource, server = by_name["orders"]
    original = next(s for s in spans if s.name == "GET /orders")
    assert server.trace_id == original.context.trace_id.to_bytes(16, "big")
    assert server.span_id == original.context.span_id.to_bytes(8, "big")
    assert server.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert server.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert server.status.message == "boom"
    assert server.start_time_unix_nano == pytest.approx(original.start_time, abs=1000)
    attrs = _attributes(server)
    assert attrs["http.request.method"] == "GET"
    assert attrs["http.response.status_code"] == 500
    assert attrs["url.full"] == "http://shop.example.com/orders"
    assert attrs["customer"] == "c-42"
    assert attrs["aws.xray.annotations"] == ["customer"]
    assert attrs["cart.items"] == 3
    assert [event.name for event in server.events] == ["exception"]
    event_attrs = _attributes(server.events[0])
    assert (event_attrs["exception.type"], event_attrs["exception.message"]) == (
        "ValueError",
        "boom",
    )
    # A Python SDK's frames come back as a Python traceback (what its readers parse).
    assert event_attrs["exception.stacktrace"].startswith("Traceback (most recent call last):")
    assert "in _record_request\nValueError: boom" in event_attrs["exception.stacktrace"]
    assert server_resource["service.name"] == "orders"
    assert server_resource["service.version"] == "1.2.3"
    assert server_resource["host.id"] == "i-0123456789abcdef0"
    assert server_resource["deployment.environment"] == "prod"

    # Independent subsegments are sent under their segment's resource, as children of it.
    db_resource, db = by_name["shop@db.local"]
    assert db_resource == server_resource
    assert len(resource_spans) == 1  # so they share one ResourceSpans
    assert db.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert db.parent_span_id == server.span_id
    db_attrs = _attributes(db)
    assert db_attrs["db.system"] == "postgresql"
    assert db_attrs["db.query.text"] == "SELECT * FROM orders WHERE id = ?"
    assert db_attrs["peer.service"] == "shop@db.local"
    _, dynamo = by_name["DynamoDB"]
    assert _attributes(dynamo)["aws.service"] == "DynamoDB"
    assert _attributes(dynamo)["aws.table_name"] == "carts"
    _, compute = by_name["compute"]
    assert compute.kind == trace_pb2.Span.SPAN_KIND_INTERNAL


def test_embedded_subsegments_become_child_spans_of_the_document() -> None:
    doc = {
        "name": "legacy",
        "id": "0000000000000001",
        "trace_id": "1-5f84c7a1-e7d1852db8c4fd35d88bf49a",
        "start_time": 100.0,
        "end_time": 101.0,
        "error": True,
        "http": {"request": {"method": "POST"}, "response": {"status": 404}},
        "subsegments": [
            {
                "name": "api.example.com",
                "id": "0000000000000002",
                "start_time": 100.1,
                "end_time": 100.9,
                "namespace": "remote",
                "throttle": True,
                "error": True,
                "http": {"response": {"status": 429}},
                "cause": {
                    "exceptions": [
                        {
                            "id": "00000000000000e1",
                            "type": "TooManyRequests",
                            "message": "slow down",
                            "stack": [{"path": "Client.java", "line": 42, "label": "Client.call"}],
                        }
                    ]
                },
                "subsegments": [
                    {
                        "name": "inner",
                        "id": "0000000000000003",
                        "start_time": 100.2,
                        "end_time": 100.3,
                    }
                ],
            }
        ],
    }
    converted = convert_document(doc)
    assert [span.name for span in converted.spans] == ["legacy", "api.example.com", "inner"]
    assert {span.trace_id for span in converted.spans} == {
        bytes.fromhex("5f84c7a1e7d1852db8c4fd35d88bf49a")
    }
    segment, remote, inner = converted.spans
    assert segment.parent_span_id == b""
    assert remote.parent_span_id == segment.span_id
    assert inner.parent_span_id == remote.span_id
    # A server answering 404 did nothing wrong (OTel HTTP conventions); a client getting 429 did.
    assert segment.status.code == trace_pb2.Status.STATUS_CODE_UNSET
    assert remote.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert converted.resource == {"service.name": "legacy"}
    # No language known: the Java-style frames the upstream receiver writes.
    (event,) = remote.events
    assert _attributes(event)["exception.stacktrace"] == (
        "TooManyRequests: slow down\n\tat Client.call(Client.java:42)"
    )
    assert remote.status.message == "slow down"


def test_trace_id_conversion_and_bad_ids() -> None:
    assert trace_id_bytes("1-5f84c7a1-e7d1852db8c4fd35d88bf49a").hex() == (
        "5f84c7a1e7d1852db8c4fd35d88bf49a"
    )
    for bad in ("5f84c7a1e7d1852db8c4fd35d88bf49a", "1-5f84c7a1-zzd1852db8c4fd35d88bf49a", None):
        with pytest.raises(InvalidDocument):
            trace_id_bytes(bad)
    with pytest.raises(InvalidDocument):
        convert_document(
            {"name": "x", "id": "12", "trace_id": "1-5f84c7a1-e7d1852db8c4fd35d88bf49a"}
        )


def test_an_oversized_span_is_trimmed_metadata_first_and_a_hopeless_one_refused() -> None:
    doc = {
        "name": "big",
        "id": "0000000000000001",
        "trace_id": "1-5f84c7a1-e7d1852db8c4fd35d88bf49a",
        "start_time": 100.0,
        "end_time": 101.0,
        "annotations": {"keep": "me"},
        "metadata": {"debug": {"dump": "x" * 300_000}},
    }
    span = convert_document(doc).spans[0]
    assert span.ByteSize() > MAX_SPAN_BYTES
    assert trim_span(span)
    assert span.ByteSize() <= MAX_SPAN_BYTES
    assert _attributes(span)["keep"] == "me"
    assert "aws.xray.metadata.debug" not in _attributes(span)

    many = dict(doc, metadata={}, annotations={f"k{i}": "y" * 900 for i in range(400)})
    hopeless = convert_document(many).spans[0]
    assert not trim_span(hopeless)


CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "corpus"
WEIRD_VALUES: tuple[Any, ...] = (None, "", "x", -1, 0, 1e300, float("nan"), True, [], {}, [1, "a"])


def _count_embedded(doc: dict[str, Any]) -> int:
    children = [c for c in doc.get("subsegments") or () if isinstance(c, dict)]
    return 1 + sum(_count_embedded(child) for child in children)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replaced(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def test_every_corpus_document_converts_or_is_refused_and_no_field_value_crashes_it() -> None:
    """Real documents from X-Ray SDKs and the Collector's tests: each finished one becomes one
    span per (sub)segment; then every field of each, set to values of every wrong type, gives
    spans or ``InvalidDocument``, never another exception (the forwarder counts those)."""
    documents = []
    for path in sorted(CORPUS.glob("*.txt")):
        try:
            documents.append(json.loads(path.read_text()))
        except ValueError:
            continue
    converted = 0
    for doc in documents:
        if is_in_progress(doc):
            continue
        try:
            spans = convert_document(doc).spans
        except InvalidDocument:
            continue
        converted += 1
        assert len(spans) == _count_embedded(doc)
    assert converted >= 10
    for doc in documents:
        for path in _paths(doc):
            for value in WEIRD_VALUES:
                try:
                    convert_document(_replaced(doc, path, value))
                except InvalidDocument:
                    pass


#: A resource on which the translator writes each origin it can write (all but Lambda's, which
#: only the Lambda service writes). A new origin in the library's table needs a line here.
ORIGIN_RESOURCES: dict[str, dict[str, Any]] = {
    ORIGIN_EC2: {"cloud.platform": "aws_ec2", "host.id": "i-0123456789abcdef0", "host.type": "m5"},
    ORIGIN_ECS: {"cloud.platform": "aws_ecs", "container.name": "web"},
    ORIGIN_ECS_EC2: {"cloud.platform": "aws_ecs", "aws.ecs.launchtype": "ec2"},
    ORIGIN_ECS_FARGATE: {
        "cloud.platform": "aws_ecs",
        "aws.ecs.launchtype": "fargate",
        "aws.ecs.task.arn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc",
    },
    ORIGIN_EKS: {"cloud.platform": "aws_eks", "k8s.cluster.name": "prod", "k8s.pod.name": "p-1"},
    ORIGIN_BEANSTALK: {
        "cloud.platform": "aws_elastic_beanstalk",
        "service.namespace": "shop-env",
        "service.version": "v42",
        "service.instance.id": "17",
    },
    ORIGIN_APP_RUNNER: {"cloud.platform": "aws_app_runner"},
}
RESOURCE_BLOCKS = ("ec2", "ecs", "eks", "elastic_beanstalk")


@pytest.mark.parametrize("with_resource_metadata", [True, False], ids=["library", "sdk-like"])
@pytest.mark.parametrize("origin", sorted(set(ORIGIN_PLATFORMS) - {ORIGIN_LAMBDA}))
def test_every_origin_the_translator_writes_comes_back_through_the_converter(
    origin: str, with_resource_metadata: bool
) -> None:
    """span (resource) -> segment -> OTLP span -> segment: the same origin and resource blocks,
    whether the document carries the library's ``otel.resource.*`` metadata or, like a
    document from an X-Ray SDK, only its ``origin`` and ``aws`` blocks."""
    exporter = InMemorySpanExporter()
    resource = Resource(
        {"service.name": "svc", "cloud.provider": "aws", **ORIGIN_RESOURCES[origin]}
    )
    provider = TracerProvider(resource=resource, id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("GET /", kind=SpanKind.SERVER):
        pass
    provider.shutdown()
    [document] = [d for s in exporter.get_finished_spans() for d in span_to_documents(s)]
    assert document["origin"] == origin
    if not with_resource_metadata:
        document.pop("metadata", None)
    converted = convert_document(json.loads(json.dumps(document)))
    assert converted.resource["cloud.platform"] == ORIGIN_PLATFORMS[origin]
    [request] = build_requests((0, converted.resource, span) for span in converted.spans)
    readable, problems = readable_spans(request.message.resource_spans)
    assert problems == []
    [again] = [d for s in readable for d in span_to_documents(s)]
    assert again["origin"] == origin
    blocks = {name: document["aws"].get(name) for name in RESOURCE_BLOCKS}
    assert {name: again["aws"].get(name) for name in RESOURCE_BLOCKS} == blocks
