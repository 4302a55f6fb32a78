"""Document type, ids, times, names and namespace (translation.md §3-§7, test-cases.md §1)."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, SpanKind

from otel_xray.translate import TranslateOptions, span_to_documents
from otel_xray.translate.segment import InvalidTraceIdError
from tests.translate.spans import (
    BASIC_RESOURCE,
    DEFAULT_RESOURCE,
    PARENT_ID,
    SPAN_ID,
    context,
    make_span,
    one,
    translate,
)

PARENT_HEX = f"{PARENT_ID:016x}"
SPAN_HEX = f"{SPAN_ID:016x}"


def test_ids_and_times_use_xray_formats() -> None:
    doc = one(make_span(kind=SpanKind.SERVER, parent=None))
    assert doc["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert doc["id"] == SPAN_HEX
    assert doc["start_time"] == 1700000000.1234567
    assert doc["end_time"] == 1700000000.2234569


def test_span_without_end_time_gets_zero_end() -> None:
    assert one(make_span(kind=SpanKind.SERVER, end=None))["end_time"] == 0


def test_every_document_carries_the_three_flags() -> None:
    doc = one(make_span(kind=SpanKind.INTERNAL))
    assert (doc["fault"], doc["error"], doc["throttle"]) == (False, False, False)


@pytest.mark.parametrize("parent", ["local", "remote", None])
def test_server_span_is_a_segment_whatever_its_parent(parent: str | None) -> None:
    doc = one(make_span(kind=SpanKind.SERVER, parent=parent))
    assert "type" not in doc
    assert "namespace" not in doc
    assert doc.get("parent_id") == (PARENT_HEX if parent else None)


def test_client_child_is_an_independent_subsegment_of_its_parent() -> None:
    doc = one(make_span(kind=SpanKind.CLIENT, parent="local"))
    assert doc["type"] == "subsegment"
    assert doc["parent_id"] == PARENT_HEX
    assert doc["namespace"] == "remote"


def test_internal_child_is_a_local_subsegment() -> None:
    doc = one(make_span(kind=SpanKind.INTERNAL, parent="local"))
    assert doc["type"] == "subsegment"
    assert "namespace" not in doc


@pytest.mark.parametrize("kind", [SpanKind.INTERNAL, SpanKind.CONSUMER])
def test_remote_parent_makes_internal_and_consumer_spans_segments(kind: SpanKind) -> None:
    # A queue consumer or a Lambda handler continuing a trace: the parent is in another
    # process, so this process needs its own segment (its own node in the service map).
    doc = one(make_span(kind=kind, parent="remote"))
    assert "type" not in doc
    assert doc["parent_id"] == PARENT_HEX
    assert doc["name"] == "checkout"


@pytest.mark.parametrize("kind", [SpanKind.INTERNAL, SpanKind.CONSUMER])
def test_root_internal_and_consumer_spans_are_segments_without_parent(kind: SpanKind) -> None:
    doc = one(make_span(kind=kind, parent=None))
    assert "type" not in doc and "parent_id" not in doc


@pytest.mark.parametrize("kind", [SpanKind.CLIENT, SpanKind.PRODUCER])
@pytest.mark.parametrize("parent", [None, "remote"])
def test_root_call_becomes_call_subsegment_inside_service_segment(
    kind: SpanKind, parent: str | None
) -> None:
    span = make_span(
        "GET",
        kind=kind,
        parent=parent,
        attributes={"url.full": "https://api.example.com/x", "http.request.method": "GET"},
        links=[Link(context(0x99))],
    )
    call, service = translate(span)
    assert call["type"] == "subsegment"
    assert call["id"] == SPAN_HEX
    assert call["parent_id"] == service["id"]
    assert call["name"] == "api.example.com"
    assert call["namespace"] == "remote"
    assert call["http"]["request"]["url"] == "https://api.example.com/x"
    assert len(call["links"]) == 1
    assert service["name"] == "checkout"
    assert "type" not in service and "namespace" not in service and "http" not in service
    assert "links" not in service
    assert service.get("parent_id") == (PARENT_HEX if parent else None)
    assert service["trace_id"] == call["trace_id"]
    assert (service["start_time"], service["end_time"]) == (call["start_time"], call["end_time"])


def test_tracing_name_names_segments_but_not_subsegments() -> None:
    options = TranslateOptions.build(tracing_name="my-app", environ={})
    server = span_to_documents(make_span(kind=SpanKind.SERVER), options)[0]
    client = span_to_documents(
        make_span(kind=SpanKind.CLIENT, attributes={"server.address": "db.internal"}), options
    )[0]
    assert server["name"] == "my-app"
    assert client["name"] == "db.internal"


def test_tracing_name_is_read_from_the_environment() -> None:
    options = TranslateOptions.build(environ={"AWS_XRAY_TRACING_NAME": "from-env"})
    assert span_to_documents(make_span(kind=SpanKind.SERVER), options)[0]["name"] == "from-env"


def test_segment_name_is_service_name_even_with_peer_service() -> None:
    doc = one(make_span(kind=SpanKind.SERVER, attributes={"peer.service": "caller"}))
    assert doc["name"] == "checkout"


def test_segment_without_service_name_falls_back_to_span_name() -> None:
    doc = one(make_span("GET /<id>", kind=SpanKind.SERVER, resource=Resource.get_empty()))
    assert doc["name"] == "GET /id"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"http.host": "foo.com", "net.peer.name": "bar.com", "net.peer.port": 9443}, "foo.com"),
        ({"net.peer.name": "bar.com", "net.peer.ip": "2001:db8::1"}, "bar.com"),
        (
            {"rpc.service": "com.foo.AnimalService", "net.peer.name": "bar.com"},
            "com.foo.AnimalService",
        ),
        ({"peer.service": "cats-table", "aws.service": "DynamoDB"}, "cats-table"),
        ({"aws.remote.service": "PaymentService", "rpc.service": "ABC"}, "PaymentService"),
        ({"server.address": "api.example.com", "url.full": "https://other/x"}, "api.example.com"),
        ({"http.url": "http://127.0.0.1:8080/p?q=1"}, "127.0.0.1"),
        ({"url.full": "https://api.example.com:8443/p"}, "api.example.com"),
        (
            {
                "db.name": "customers",
                "db.connection_string": "jdbc:mysql://db.dev.example.com:3306",
            },
            "customers@db.dev.example.com",
        ),
        (
            {"db.system.name": "postgresql", "db.namespace": "orders", "server.address": "pg"},
            "orders@pg",
        ),
        ({"db.system": "sqlite", "db.statement": "select 1"}, "sqlite"),
        ({}, "GET /id"),
    ],
)
def test_client_subsegment_names_what_it_calls(
    attributes: dict[str, object], expected: str
) -> None:
    doc = one(make_span("GET /<id>", kind=SpanKind.CLIENT, attributes=attributes))
    assert doc["name"] == expected


@pytest.mark.parametrize(
    ("remote_service", "expected"),
    [("AWS.SDK.DynamoDb", "DynamoDb"), ("AWS::DynamoDB", "DynamoDB")],
)
def test_aws_sdk_remote_service_prefix_is_trimmed(remote_service: str, expected: str) -> None:
    attributes = {
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDb",
        "aws.remote.service": remote_service,
    }
    doc = one(make_span("DynamoDb.PutItem", kind=SpanKind.CLIENT, attributes=attributes))
    assert doc["name"] == expected
    assert doc["namespace"] == "aws"


def test_remote_service_prefix_is_kept_outside_aws_sdk_spans() -> None:
    doc = one(make_span(kind=SpanKind.CLIENT, attributes={"aws.remote.service": "AWS::DynamoDB"}))
    assert doc["name"] == "AWS::DynamoDB"


def test_aws_service_attribute_gives_aws_namespace() -> None:
    attributes = {"aws.service": "DynamoDB", "aws.operation": "GetItem", "rpc.method": "Wrong"}
    doc = one(make_span(kind=SpanKind.CLIENT, attributes=attributes))
    assert (doc["name"], doc["namespace"], doc["aws"]["operation"]) == (
        "DynamoDB",
        "aws",
        "GetItem",
    )


def test_producer_child_with_remote_service_is_remote() -> None:
    doc = one(
        make_span(kind=SpanKind.PRODUCER, attributes={"aws.remote.service": "ProducerService"})
    )
    assert (doc["name"], doc["type"], doc["namespace"]) == (
        "ProducerService",
        "subsegment",
        "remote",
    )


def test_producer_child_without_hints_has_no_namespace() -> None:
    assert "namespace" not in one(make_span(kind=SpanKind.PRODUCER))


def test_attribute_names_are_sanitised_too() -> None:
    # X-Ray drops a whole document whose name has characters it does not accept.
    doc = one(make_span(kind=SpanKind.CLIENT, attributes={"peer.service": "cats (prod)?"}))
    assert doc["name"] == "cats prod"


# --- aws.span.kind = LOCAL_ROOT (test-cases.md §1 "Local root") ---------------------------------

LOCAL_ROOT_ATTRIBUTES = {
    "http.method": "POST",
    "messaging.operation": "receive",
    "otel.resource.attributes": "service.name=myTest",
    "aws.span.kind": "LOCAL_ROOT",
    "aws.remote.service": "myRemoteService",
    "aws.remote.operation": "myRemoteOperation",
    "remoteTarget": "myTarget",
    "K8s.RemoteNamespace": "k8sRemoteNamespace",
    "aws.local.service": "myLocalService",
    "aws.local.operation": "awsLocalOperation",
    "myAnnotationKey": "myAnnotationValue",
    "aws.operation": "UpdateItem",
    "aws.account_id": "AWSAccountAttribute",
    "aws.region": "AWSRegionAttribute",
    "aws.request_id": "AWSRequestIDAttribute",
    "aws.queue_url": "AWSQueueURLAttribute",
    "aws.table_name": "TableName",
}
LOCAL_ROOT_INDEXED = ["aws.remote.service", "myAnnotationKey"]


def _local_root(kind: SpanKind, **extra: object) -> list[dict[str, object]]:
    span = make_span(
        "destination operation",
        kind=kind,
        attributes={**LOCAL_ROOT_ATTRIBUTES, **extra},
        resource=BASIC_RESOURCE,
        links=[Link(context(0x77))],
    )
    return translate(span, indexed_attributes=LOCAL_ROOT_INDEXED, allow_dot=False)


def test_local_root_consumer_splits_into_dependency_and_service() -> None:
    dependency, service = _local_root(SpanKind.CONSUMER)
    assert dependency["type"] == "subsegment"
    assert dependency["name"] == "myRemoteService"
    assert dependency["id"] == SPAN_HEX
    assert dependency["parent_id"] == service["id"]
    assert dependency["namespace"] == "remote"
    assert dependency["http"]["request"]["method"] == "POST"
    assert dependency["annotations"] == {
        "aws_remote_service": "myRemoteService",
        "myAnnotationKey": "myAnnotationValue",
    }
    assert set(dependency["metadata"]["default"]) == {
        "messaging.operation",
        "aws.span.kind",
        "aws.remote.operation",
        "remoteTarget",
        "K8s.RemoteNamespace",
        "aws.local.service",
        "aws.local.operation",
        "otel.resource.attributes",
    }
    aws = dependency["aws"]
    assert aws["xray"]["auto_instrumentation"] is True
    assert (aws["operation"], aws["account_id"], aws["region"]) == (
        "UpdateItem",
        "AWSAccountAttribute",
        "AWSRegionAttribute",
    )
    assert (aws["request_id"], aws["queue_url"], aws["table_name"]) == (
        "AWSRequestIDAttribute",
        "AWSQueueURLAttribute",
        "TableName",
    )
    assert "links" not in dependency

    assert "type" not in service and "namespace" not in service and "http" not in service
    assert service["name"] == "myLocalService"
    assert service["parent_id"] == PARENT_HEX
    assert service["annotations"] == {"myAnnotationKey": "myAnnotationValue"}
    assert all(key.startswith("otel.resource.") for key in service["metadata"]["default"])
    assert service["metadata"]["default"]["otel.resource.service.name"] == "signup_aggregator"
    for field in ("operation", "region", "request_id", "queue_url", "table_name"):
        assert field not in service["aws"]
    assert service["aws"]["xray"]["auto_instrumentation"] is True
    assert len(service["links"]) == 1


def test_local_root_consumer_keeps_aws_namespace_for_aws_sdk_calls() -> None:
    dependency, _ = _local_root(SpanKind.CONSUMER, **{"rpc.system": "aws-api"})
    assert dependency["namespace"] == "aws"


@pytest.mark.parametrize("kind", [SpanKind.CLIENT, SpanKind.PRODUCER])
def test_local_root_client_and_producer_keep_links_on_the_call(kind: SpanKind) -> None:
    dependency, service = _local_root(kind)
    assert len(dependency["links"]) == 1
    assert "links" not in service


def test_local_root_aws_sdk_client_names_the_service() -> None:
    extra = {"rpc.system": "aws-api", "rpc.service": "SQS", "aws.remote.service": "AWS.SDK.SQS"}
    dependency, _ = _local_root(SpanKind.CLIENT, **extra)
    assert (dependency["name"], dependency["namespace"]) == ("SQS", "aws")


@pytest.mark.parametrize("kind", [SpanKind.SERVER, SpanKind.INTERNAL])
def test_local_root_server_and_internal_are_forced_segments(kind: SpanKind) -> None:
    (doc,) = _local_root(kind)
    assert "type" not in doc and "namespace" not in doc
    assert doc["name"] == "myLocalService"
    assert doc["parent_id"] == PARENT_HEX
    assert len(doc["links"]) == 1
    assert set(doc["annotations"]) == {"aws_remote_service", "myAnnotationKey"}
    metadata = doc["metadata"]["default"]
    for key, value in BASIC_RESOURCE.attributes.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert metadata["otel.resource." + key] == expected
    assert metadata["otel.resource.attributes"] == "service.name=myTest"  # a span attribute
    assert doc["aws"]["operation"] == "UpdateItem"


def test_not_local_root_consumer_is_a_plain_subsegment() -> None:
    attributes = dict(LOCAL_ROOT_ATTRIBUTES, **{"aws.span.kind": "Consumer"})
    del attributes["aws.remote.service"], attributes["aws.remote.operation"]
    doc = one(make_span("destination operation", kind=SpanKind.CONSUMER, attributes=attributes))
    assert (doc["type"], doc["name"]) == ("subsegment", "destination operation")
    assert "namespace" not in doc


@pytest.mark.parametrize("kind", [SpanKind.CONSUMER, SpanKind.CLIENT, SpanKind.PRODUCER])
def test_not_local_root_calls_with_remote_service_are_remote(kind: SpanKind) -> None:
    attributes = dict(LOCAL_ROOT_ATTRIBUTES, **{"aws.span.kind": "Client"})
    doc = one(make_span(kind=kind, attributes=attributes))
    assert (doc["type"], doc["namespace"], doc["name"]) == (
        "subsegment",
        "remote",
        "myRemoteService",
    )


# --- trace id validation (off by default, like the Collector) ----------------------------------


def test_random_w3c_trace_ids_are_accepted_by_default() -> None:
    span = make_span(kind=SpanKind.SERVER, trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736)
    assert one(span)["trace_id"] == "1-4bf92f35-77b34da6a3ce929d0e0e4736"


def test_trace_id_validation_rejects_old_epochs_when_enabled() -> None:
    options = TranslateOptions.build(environ={}, validate_trace_id_timestamp=True)
    old = make_span(kind=SpanKind.SERVER, trace_id=0x11000000 << 96 | 1)
    with pytest.raises(InvalidTraceIdError):
        span_to_documents(old, options)
    expired_epoch = int(time.time()) - 30 * 24 * 3600 - 1
    expired_link = make_span(
        kind=SpanKind.SERVER, links=[Link(context(trace_id=expired_epoch << 96 | 1))]
    )
    fresh = make_span(kind=SpanKind.SERVER, trace_id=int(time.time()) << 96 | 5)
    with pytest.raises(InvalidTraceIdError):
        span_to_documents(expired_link, options)
    assert span_to_documents(fresh, options)[0]["trace_id"].startswith("1-")


def test_default_resource_segment_is_valid_and_named_after_service() -> None:
    doc = one(make_span(kind=SpanKind.SERVER, resource=DEFAULT_RESOURCE))
    assert doc["name"] == "signup_aggregator"
    assert doc["origin"] == "AWS::EKS::Container"
