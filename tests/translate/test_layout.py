"""Per-key-layout plans: spans with the same attribute keys but different values each get their
own outcome, and translating never changes the span it reads."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_xray.translate import TranslateOptions, span_to_documents
from tests.translate.spans import DEFAULT_RESOURCE, context, make_span, one


def metadata_of(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc.get("metadata", {}).get("default", {}))


def test_address_key_is_taken_per_span_by_its_value() -> None:
    keys_in_order = {"http.request.method": "GET", "network.peer.address": ""}
    ip_span = make_span(
        kind=SpanKind.SERVER, attributes={**keys_in_order, "network.peer.address": "10.1.2.3"}
    )
    host_span = make_span(
        kind=SpanKind.SERVER, attributes={**keys_in_order, "network.peer.address": "lb.internal"}
    )
    for _ in range(2):  # the second round runs on cached plans
        ip_doc, host_doc = one(ip_span), one(host_span)
        assert ip_doc["http"]["request"]["client_ip"] == "10.1.2.3"
        assert "network.peer.address" not in metadata_of(ip_doc)
        assert "client_ip" not in host_doc["http"]["request"]
        assert metadata_of(host_doc)["network.peer.address"] == "lb.internal"


def test_db_keys_feed_sql_only_for_sql_systems_with_the_same_layout() -> None:
    def span(system: str) -> Any:
        return make_span(
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "db.name": "shop", "db.statement": "SELECT 1"},
        )

    for _ in range(2):
        mysql, redis = one(span("mysql")), one(span("redis"))
        assert mysql["sql"]["sanitized_query"] == "SELECT 1"
        assert "db.statement" not in metadata_of(mysql)
        assert "sql" not in redis
        assert metadata_of(redis)["db.statement"] == "SELECT 1"


def test_aws_sdk_keys_are_taken_only_on_aws_sdk_spans_with_the_same_layout() -> None:
    def span(system: str) -> Any:
        return make_span(
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": system, "rpc.method": "GetItem", "aws.region": "eu-west-1"},
            resource=DEFAULT_RESOURCE,
        )

    for _ in range(2):
        aws_call, grpc_call = one(span("aws-api")), one(span("grpc"))
        assert aws_call["aws"]["operation"] == "GetItem"
        assert "rpc.method" not in metadata_of(aws_call)
        assert "operation" not in grpc_call["aws"]
        assert metadata_of(grpc_call)["rpc.method"] == "GetItem"
        assert grpc_call["aws"]["region"] == "eu-west-1"


def test_status_text_is_the_cause_only_for_failed_spans_with_the_same_layout() -> None:
    attributes = {"http.method": "GET", "http.status_text": "Gateway Timeout"}
    failed = make_span(kind=SpanKind.SERVER, attributes=attributes, status=Status(StatusCode.ERROR))
    fine = make_span(kind=SpanKind.SERVER, attributes=attributes)
    for _ in range(2):
        failed_doc, fine_doc = one(failed), one(fine)
        assert failed_doc["cause"]["exceptions"][0]["message"] == "Gateway Timeout"
        assert "http.status_text" not in metadata_of(failed_doc)
        assert "cause" not in fine_doc
        assert metadata_of(fine_doc)["http.status_text"] == "Gateway Timeout"


def test_convertible_values_are_converted_whatever_the_layout_saw_before() -> None:
    plain = make_span(attributes={"tags": "a"})
    listed = make_span(attributes={"tags": ("a", "b")})
    raw = make_span(attributes={"tags": b"\x00\x01"})
    assert metadata_of(one(plain))["tags"] == "a"
    assert metadata_of(one(listed))["tags"] == ["a", "b"]
    assert metadata_of(one(raw))["tags"] == "AAE="


def test_live_sdk_span_with_events_and_links_is_read_without_change() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    linked = context(span_id=0x1111)
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER):
        with tracer.start_as_current_span(
            "work", links=[Link(linked, {"batch": 3})], attributes={"job": "resize"}
        ) as span:
            span.record_exception(ValueError("bad size"))
            span.set_status(Status(StatusCode.ERROR))
    work = exporter.get_finished_spans()[0]
    before = dict(work.attributes or {})
    options = TranslateOptions.build(environ={})
    first = span_to_documents(work, options)
    second = span_to_documents(work, options)
    doc = first[0]
    assert doc["links"] == [
        {
            "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "id": "0000000000001111",
            "attributes": {"batch": 3},
        }
    ]
    assert doc["cause"]["exceptions"][0]["type"] == "ValueError"
    assert doc["fault"] is True
    assert metadata_of(doc) == {"job": "resize"}
    assert dict(work.attributes or {}) == before
    assert second[0]["metadata"] == doc["metadata"]
    assert len(work.events) == 1 and len(work.links) == 1
    provider.shutdown()
