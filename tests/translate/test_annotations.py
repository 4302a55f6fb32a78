"""Annotations, metadata, user, links and name sanitising (translation.md §6.3, §15-§17)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, SpanKind

from otel_xray.translate.names import annotation_key, sanitize_name
from tests.translate.spans import DEFAULT_RESOURCE, SPAN_ID, context, make_span, one, translate

ATTRS = {"attr1@1": "val1", "attr2@2": "val2"}


def server(
    attributes: dict[str, Any] = ATTRS, resource: Resource = DEFAULT_RESOURCE, **options: Any
) -> dict[str, Any]:
    (doc,) = translate(
        make_span(kind=SpanKind.SERVER, attributes=attributes, resource=resource), **options
    )
    return doc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EP @ test_15.testing-dömain.org#GO", "EP @ test_15.testing-dömain.org#GO"),
        ("<subDomain>.example.com,1413", "subDomain.example.com1413"),
        ("<>", "span"),
        ("tab\there", "tabhere"),
    ],
)
def test_name_sanitising(name: str, expected: str) -> None:
    assert sanitize_name(name) == expected


def test_names_are_capped_at_200_without_splitting_characters() -> None:
    assert len(sanitize_name("a" * 300)) == 200
    cut = sanitize_name("é" * 150)
    assert len(cut.encode()) <= 200 and set(cut) == {"é"} and len(cut) == 100


@pytest.mark.parametrize(
    ("key", "allow_dot", "expected"),
    [
        ("Key_1", False, "Key_1"),
        ("Key.1", False, "Key_1"),
        ("Key@1", False, "Key_1"),
        ("Key.1", True, "Key.1"),
        ("Key@1", True, "Key_1"),
        ("ключ", True, "____"),
    ],
)
def test_annotation_key_sanitising(key: str, allow_dot: bool, expected: str) -> None:
    assert annotation_key(key, allow_dot) == expected


def test_attributes_default_to_metadata_with_resource_on_segments() -> None:
    doc = server()
    assert "annotations" not in doc
    default = doc["metadata"]["default"]
    assert (default["attr1@1"], default["attr2@2"]) == ("val1", "val2")
    assert default["otel.resource.string.key"] == "string"
    assert default["otel.resource.int.key"] == 10
    assert default["otel.resource.double.key"] == 5.0
    assert default["otel.resource.bool.key"] is True
    assert default["otel.resource.array.key"] == ["foo", "bar"]


def test_resource_metadata_not_stored_on_subsegments() -> None:
    doc = one(make_span(kind=SpanKind.CLIENT, attributes=ATTRS, resource=DEFAULT_RESOURCE))
    assert doc["metadata"] == {"default": ATTRS}


def test_indexed_attributes_become_annotations() -> None:
    doc = server(indexed_attributes=["attr1@1", "not_exist"])
    assert doc["annotations"] == {"attr1_1": "val1"}
    assert doc["metadata"]["default"]["attr2@2"] == "val2"


def test_span_annotation_list_attribute() -> None:
    doc = server({**ATTRS, "aws.xray.annotations": ("attr2@2", "not_exist")})
    assert doc["annotations"] == {"attr2_2": "val2"}
    assert "aws.xray.annotations" not in doc["metadata"]["default"]


def test_index_all_attributes() -> None:
    doc = server(
        index_all_attributes=True, indexed_attributes=["ignored"], resource=Resource.get_empty()
    )
    assert doc["annotations"] == {"attr1_1": "val1", "attr2_2": "val2"}


def test_metadata_namespaces_from_json_attributes() -> None:
    doc = server(
        {
            "attr1@1": "val1",
            "aws.xray.metadata.default": '{"custom_key": "custom_value"}',
            "aws.xray.metadata.http": '{"connection":{"reused":false,"was_idle":false}}',
            "aws.xray.metadata.non-xray-sdk": "retain-value",
            "aws.xray.metadata.array": "[1,2]",
        },
        resource=Resource.get_empty(),
    )
    assert "annotations" not in doc
    assert set(doc["metadata"]) == {"default", "http"}
    assert doc["metadata"]["default"] == {
        "attr1@1": "val1",
        "custom_key": "custom_value",
        "aws.xray.metadata.non-xray-sdk": "retain-value",
        "aws.xray.metadata.array": "[1,2]",
    }
    assert doc["metadata"]["http"] == {"connection": {"reused": False, "was_idle": False}}


def test_metadata_namespaces_stay_metadata_in_index_all_mode() -> None:
    doc = server(
        {"aws.xray.metadata.app": '{"k": 1}', "n": 5},
        resource=Resource.get_empty(),
        index_all_attributes=True,
    )
    assert doc["metadata"] == {"app": {"k": 1}}
    assert doc["annotations"] == {"n": 5}


@pytest.mark.parametrize("allow_dot", [False, True])
def test_resource_attributes_can_be_indexed(allow_dot: bool) -> None:
    keys = [f"otel.resource.{name}.key" for name in ("string", "int", "double", "bool", "array")]
    doc = server({}, indexed_attributes=keys, allow_dot=allow_dot)
    dot = "." if allow_dot else "_"
    assert doc["annotations"] == {
        f"otel{dot}resource{dot}string{dot}key": "string",
        f"otel{dot}resource{dot}int{dot}key": 10,
        f"otel{dot}resource{dot}double{dot}key": 5.0,
        f"otel{dot}resource{dot}bool{dot}key": True,
    }
    assert doc["metadata"]["default"]["otel.resource.array.key"] == ["foo", "bar"]


def test_resource_annotations_not_on_subsegments() -> None:
    keys = ["otel.resource.string.key"]
    (doc,) = translate(
        make_span(kind=SpanKind.CLIENT, resource=DEFAULT_RESOURCE), indexed_attributes=keys
    )
    assert "annotations" not in doc and "metadata" not in doc


@pytest.mark.parametrize("index_all", [False, True])
def test_consumed_attributes_listed_for_indexing_come_back(index_all: bool) -> None:
    attributes = {
        "aws.operation": "aws_operation_val",
        "rpc.method": "rpc_method_val",
        "rpc.system": "aws-api",
    }
    doc = server(
        attributes,
        indexed_attributes=["aws.operation", "rpc.method"],
        allow_dot=False,
        index_all_attributes=index_all,
    )
    assert doc["annotations"]["aws_operation"] == "aws_operation_val"
    assert doc["annotations"]["rpc_method"] == "rpc_method_val"
    assert doc["aws"]["operation"] == "aws_operation_val"


def test_consumed_attributes_not_listed_stay_consumed_in_index_all_mode() -> None:
    attributes = {"aws.operation": "a", "rpc.method": "b", "rpc.system": "aws-api"}
    doc = server(
        attributes, index_all_attributes=True, allow_dot=False, resource=Resource.get_empty()
    )
    assert "aws_operation" not in doc["annotations"] and "rpc_method" not in doc["annotations"]


def test_metadata_keeps_native_types_and_non_scalar_indexed_values() -> None:
    attributes = {
        "s": "x",
        "i": 123,
        "d": 456.78,
        "b": False,
        "ints": (12, 34, 56),
        "listed": ("a", "b"),
    }
    doc = server(attributes, resource=Resource.get_empty(), indexed_attributes=["listed"])
    assert doc["metadata"]["default"] == {
        "s": "x",
        "i": 123,
        "d": 456.78,
        "b": False,
        "ints": [12, 34, 56],
        "listed": ["a", "b"],
    }


def test_long_annotation_values_are_clipped() -> None:
    doc = server({"big": "x" * 1500}, resource=Resource.get_empty(), indexed_attributes=["big"])
    assert len(doc["annotations"]["big"]) == 1000


def test_user_from_enduser_id_on_segments_and_subsegments() -> None:
    for kind in (SpanKind.SERVER, SpanKind.CLIENT):
        doc = one(make_span(kind=kind, attributes={"enduser.id": "go.tester@example.com"}))
        assert doc["user"] == "go.tester@example.com"
        assert "metadata" not in doc or "enduser.id" not in doc["metadata"].get("default", {})


def test_enduser_id_is_never_an_annotation() -> None:
    doc = server(
        {"enduser.id": "alice"}, resource=Resource.get_empty(), indexed_attributes=["enduser.id"]
    )
    assert doc["user"] == "alice" and "annotations" not in doc


def test_links_keep_order_and_native_attribute_types() -> None:
    links = [
        Link(context(0x1111, 0x5759E988BD862E3FE1BE46A994272794), {"myKey1": "ABC"}),
        Link(context(0x2222), {"myKey2": 1234, "list": (True, False), "floats": (1.5, 2.5)}),
        Link(context(0x3333)),
    ]
    doc = one(make_span(kind=SpanKind.SERVER, links=links))
    assert doc["links"] == [
        {
            "trace_id": "1-5759e988-bd862e3fe1be46a994272794",
            "id": "0000000000001111",
            "attributes": {"myKey1": "ABC"},
        },
        {
            "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "id": "0000000000002222",
            "attributes": {"myKey2": 1234, "list": [True, False], "floats": [1.5, 2.5]},
        },
        {"trace_id": "1-5759e988-bd862e3fe1be46a994272793", "id": "0000000000003333"},
    ]


def test_no_links_no_links_key() -> None:
    assert "links" not in json.dumps(
        one(make_span(kind=SpanKind.SERVER, resource=Resource.get_empty()))
    )
    assert one(make_span(kind=SpanKind.SERVER))["id"] == f"{SPAN_ID:016x}"


def test_recorder_helpers_output_translates() -> None:
    # otel_xray.put_annotation / put_metadata / set_user write span attributes; this is what
    # they must turn into.
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_xray

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer(__name__).start_as_current_span("req", kind=SpanKind.SERVER):
        otel_xray.put_annotation("customer_id", 42)
        otel_xray.put_metadata("order", {"lines": [1, 2]}, namespace="shop")
        otel_xray.put_metadata("note", "v")
        otel_xray.set_user("alice")
    provider.shutdown()
    (doc,) = translate(exporter.get_finished_spans()[0])
    assert doc["annotations"] == {"customer_id": 42}
    assert doc["metadata"]["shop"] == {"order": {"lines": [1, 2]}}
    assert doc["metadata"]["default"]["note"] == "v"
    assert doc["user"] == "alice"
