"""The span half of the aws block (translation.md §11.2, test-cases.md §4)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

from otel_xray.sampling import SAMPLING_RULE_ATTRIBUTE as REMOTE_SAMPLER_RULE_ATTRIBUTE
from otel_xray.translate.layout import SAMPLING_RULE_ATTRIBUTE
from tests.translate.spans import make_span, one, translate

AWS_RESOURCE = Resource(
    {"service.name": "svc", "cloud.provider": "aws", "cloud.account_id": "123456789"}
)


def aws_of(attributes: dict[str, Any], resource: Resource = AWS_RESOURCE) -> dict[str, Any]:
    return one(make_span(kind=SpanKind.CLIENT, attributes=attributes, resource=resource))["aws"]


def test_sqs_attributes() -> None:
    aws = aws_of(
        {
            "aws.operation": "SendMessage",
            "aws.account_id": "987654321",
            "aws.region": "us-east-2",
            "aws.queue_url": "https://sqs.us-east-2.amazonaws.com/987654321/q",
            "employee.id": "XB477",
        }
    )
    assert aws["operation"] == "SendMessage"
    assert aws["account_id"] == "987654321"  # the span's account beats the resource's
    assert aws["region"] == "us-east-2"
    assert aws["queue_url"] == "https://sqs.us-east-2.amazonaws.com/987654321/q"


@pytest.mark.parametrize(
    ("attributes", "field", "value"),
    [
        ({"aws.queue.url": "u1"}, "queue_url", "u1"),
        ({"aws.table.name": "T"}, "table_name", "T"),
        ({"aws.requestId": "r-1"}, "request_id", "r-1"),
        ({"aws.dynamodb.table_names": ["MyTable"]}, "table_name", "MyTable"),
        ({"aws.dynamodb.table_names": "MyTable"}, "table_name", "MyTable"),
        (
            {
                "aws.operation": "PutItem",
                "rpc.method": "IncorrectAWSSDKOperation",
                "rpc.system": "aws-api",
            },
            "operation",
            "PutItem",
        ),
        ({"rpc.system": "aws-api", "rpc.method": "ListBuckets"}, "operation", "ListBuckets"),
    ],
)
def test_alternate_attribute_names(attributes: dict[str, Any], field: str, value: Any) -> None:
    assert aws_of(attributes)[field] == value


def test_messaging_url_sets_queue_url_and_stays_metadata() -> None:
    doc = one(
        make_span(
            kind=SpanKind.CLIENT, attributes={"messaging.url": "https://q"}, resource=AWS_RESOURCE
        )
    )
    assert doc["aws"]["queue_url"] == "https://q"
    assert doc["metadata"]["default"]["messaging.url"] == "https://q"


def test_two_dynamodb_tables_give_table_names() -> None:
    doc = one(
        make_span(kind=SpanKind.CLIENT, attributes={"aws.dynamodb.table_names": ("t1", "t2")})
    )
    assert doc["aws"]["table_names"] == ["t1", "t2"]
    assert "table_name" not in doc["aws"]
    assert doc["metadata"]["default"]["aws.dynamodb.table_names"] == ["t1", "t2"]


def test_rpc_method_of_a_grpc_call_is_not_an_aws_operation() -> None:
    attributes = {
        "rpc.system": "grpc",
        "rpc.service": "helloworld.Greeter",
        "rpc.method": "SayHello",
    }
    doc = one(make_span(kind=SpanKind.CLIENT, attributes=attributes))
    assert "operation" not in doc["aws"]
    assert doc["metadata"]["default"]["rpc.method"] == "SayHello"
    assert doc["name"] == "helloworld.Greeter"
    assert doc["namespace"] == "remote"


def test_botocore_span_attributes_map_like_the_xray_sdk() -> None:
    # What opentelemetry-instrumentation-botocore 0.66b1 sets on an SQS SendMessage call.
    attributes = {
        "rpc.system": "aws-api",
        "rpc.service": "SQS",
        "rpc.method": "SendMessage",
        "cloud.region": "us-east-1",
        "server.address": "sqs.us-east-1.amazonaws.com",
        "server.port": 443,
        "aws.queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
        "messaging.system": "aws.sqs",
        "messaging.url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
        "messaging.destination": "orders",
        "aws.request_id": "c8a3a0cc-1a1c-5a8e-9d66-6c5a1f1d0c11",
        "retry_attempts": 0,
        "http.status_code": 200,
    }
    doc = one(
        make_span(
            "SQS.SendMessage", kind=SpanKind.CLIENT, attributes=attributes, resource=AWS_RESOURCE
        )
    )
    assert (doc["name"], doc["namespace"], doc["type"]) == ("SQS", "aws", "subsegment")
    aws = doc["aws"]
    assert aws["operation"] == "SendMessage"
    assert aws["region"] == "us-east-1"
    assert aws["request_id"] == "c8a3a0cc-1a1c-5a8e-9d66-6c5a1f1d0c11"
    assert aws["queue_url"] == "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
    assert aws["retries"] == 0
    assert doc["http"] == {"request": {}, "response": {"status": 200}}
    metadata = doc["metadata"]["default"]
    for consumed in ("rpc.method", "cloud.region", "aws.request_id", "retry_attempts"):
        assert consumed not in metadata
    assert metadata["messaging.destination"] == "orders"


def test_other_cloud_has_no_aws_block_and_keeps_span_keys() -> None:
    gcp = Resource({"service.name": "svc", "cloud.provider": "gcp"})
    doc = one(
        make_span(
            kind=SpanKind.CLIENT,
            attributes={"aws.operation": "GetItem", "aws.region": "r"},
            resource=gcp,
        )
    )
    assert "aws" not in doc and "origin" not in doc
    assert doc["metadata"]["default"] == {"aws.operation": "GetItem", "aws.region": "r"}


def test_every_document_says_which_sdk_made_it() -> None:
    import otel_xray

    xray = one(make_span(resource=Resource.get_empty()))["aws"]["xray"]
    assert xray == {
        "sdk": "otel-xray for Python",
        "sdk_version": otel_xray.__version__,
        "auto_instrumentation": False,
    }


# -- aws.xray.sampling_rule_name: the centralized rule XRayRemoteSampler matched ---------------

RULE = {SAMPLING_RULE_ATTRIBUTE: "checkout-gets", "http.method": "GET"}


def test_sampling_rule_constant_is_the_remote_samplers() -> None:
    assert SAMPLING_RULE_ATTRIBUTE == REMOTE_SAMPLER_RULE_ATTRIBUTE


def test_sampling_rule_moves_into_the_segments_aws_xray() -> None:
    segment = one(make_span(kind=SpanKind.SERVER, attributes=RULE, resource=AWS_RESOURCE))
    assert segment["aws"]["xray"]["sampling_rule_name"] == "checkout-gets"
    assert segment["aws"]["xray"]["sdk"]  # the rest of aws.xray is kept
    assert SAMPLING_RULE_ATTRIBUTE not in segment.get("metadata", {}).get("default", {})


def test_sampling_rule_is_never_an_annotation() -> None:
    span = make_span(kind=SpanKind.SERVER, attributes=RULE, resource=AWS_RESOURCE)
    segment = one(span, index_all_attributes=True)
    assert segment["aws"]["xray"]["sampling_rule_name"] == "checkout-gets"
    assert segment["annotations"]  # index_all_attributes is on ...
    assert not [key for key in segment["annotations"] if "sampling_rule" in key]  # ... but not this


def test_sampling_rule_without_an_aws_resource_still_reaches_the_segment() -> None:
    gcp = Resource({"service.name": "svc", "cloud.provider": "gcp"})
    segment = one(make_span(kind=SpanKind.SERVER, attributes=RULE, resource=gcp))
    assert segment["aws"] == {"xray": {"sampling_rule_name": "checkout-gets"}}


def test_sampling_rule_is_left_out_of_subsegments() -> None:
    subsegment = one(make_span(kind=SpanKind.INTERNAL, attributes=RULE, resource=AWS_RESOURCE))
    assert "sampling_rule_name" not in subsegment["aws"]["xray"]
    assert SAMPLING_RULE_ATTRIBUTE not in subsegment.get("metadata", {}).get("default", {})


def test_sampling_rule_of_a_root_call_goes_to_its_service_segment() -> None:
    span = make_span(kind=SpanKind.CLIENT, attributes=RULE, resource=AWS_RESOURCE, parent=None)
    call, service = translate(span)
    assert service["aws"]["xray"]["sampling_rule_name"] == "checkout-gets"
    assert "sampling_rule_name" not in call["aws"]["xray"]
    assert SAMPLING_RULE_ATTRIBUTE not in call.get("metadata", {}).get("default", {})


def test_sampling_rule_does_not_leak_into_the_next_segment() -> None:
    """The resource's aws block is shared between documents: the rule is added to a copy."""
    one(make_span(kind=SpanKind.SERVER, attributes=RULE, resource=AWS_RESOURCE))
    later = one(make_span(kind=SpanKind.SERVER, resource=AWS_RESOURCE))
    assert "sampling_rule_name" not in later["aws"]["xray"]
