"""Span builders and document checks shared by the translator tests."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otel_xray.translate import TranslateOptions, span_to_documents
from tests.support.schema import assert_valid

TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793
SPAN_ID = 0x53995C3F42CD8AD8
PARENT_ID = 0x1A2B3C4D5E6F7081
START_NS = 1700000000123456789
END_NS = 1700000000223456789

# The Collector tests' "default resource" (test-cases.md §0).
DEFAULT_RESOURCE_ATTRIBUTES: dict[str, Any] = {
    "service.name": "signup_aggregator",
    "service.version": "semver:1.1.4",
    "container.name": "signup_aggregator",
    "container.image.name": "otel/signupaggregator",
    "container.image.tag": "v1",
    "k8s.cluster.name": "production",
    "k8s.namespace.name": "default",
    "k8s.deployment.name": "signup_aggregator",
    "k8s.pod.name": "signup_aggregator-x82ufje83",
    "cloud.provider": "aws",
    "cloud.account_id": "123456789",
    "cloud.region": "us-east-1",
    "cloud.availability_zone": "us-east-1c",
    "string.key": "string",
    "int.key": 10,
    "double.key": 5.0,
    "bool.key": True,
    "array.key": ("foo", "bar"),
}
DEFAULT_RESOURCE = Resource(DEFAULT_RESOURCE_ATTRIBUTES)
BASIC_RESOURCE = Resource(
    {
        **DEFAULT_RESOURCE_ATTRIBUTES,
        "telemetry.sdk.name": "MySDK",
        "telemetry.sdk.version": "1.20.0",
        "telemetry.auto.version": "1.2.3",
    }
)
PYTHON_RESOURCE = Resource(
    {
        "service.name": "checkout",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.45.1",
    }
)

_ANNOTATION_KEY_WITH_DOT = re.compile(r"^[A-Za-z0-9_.]{1,500}$")


def context(span_id: int = SPAN_ID, trace_id: int = TRACE_ID, remote: bool = False) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(1))


def make_span(
    name: str = "operation",
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: str | None = "local",
    resource: Resource = PYTHON_RESOURCE,
    events: Sequence[Event] = (),
    links: Sequence[Link] = (),
    status: Status | None = None,
    start: int = START_NS,
    end: int | None = END_NS,
    trace_id: int = TRACE_ID,
) -> ReadableSpan:
    """A finished span; ``parent`` is "local", "remote" or None (a root)."""
    parent_context = None
    if parent is not None:
        parent_context = context(PARENT_ID, trace_id, remote=parent == "remote")
    return ReadableSpan(
        name=name,
        context=context(trace_id=trace_id),
        parent=parent_context,
        resource=resource,
        attributes=dict(attributes or {}),
        events=tuple(events),
        links=tuple(links),
        kind=kind,
        status=status or Status(StatusCode.UNSET),
        start_time=start,
        end_time=end,
    )


def assert_document_valid(document: dict[str, Any]) -> None:
    """AWS's schema, plus JSON-encodability. The schema predates X-Ray accepting dots in
    annotation keys, so dotted keys are checked against the current rule and then validated
    with the dots replaced."""
    json.dumps(document, allow_nan=False)
    annotations = document.get("annotations")
    if annotations:
        for key in annotations:
            assert _ANNOTATION_KEY_WITH_DOT.match(key), key
        document = {
            **document,
            "annotations": {k.replace(".", "_"): v for k, v in annotations.items()},
        }
    assert_valid(document)


def translate(span: ReadableSpan, **options: Any) -> list[dict[str, Any]]:
    documents = span_to_documents(span, TranslateOptions.build(environ={}, **options))
    for document in documents:
        assert_document_valid(document)
    return documents


def one(span: ReadableSpan, **options: Any) -> dict[str, Any]:
    documents = translate(span, **options)
    assert len(documents) == 1, documents
    return documents[0]


def exception_event(
    exc_type: str, message: str, stacktrace: str = "", timestamp: int = END_NS
) -> Event:
    return Event(
        "exception",
        {
            "exception.type": exc_type,
            "exception.message": message,
            "exception.stacktrace": stacktrace,
        },
        timestamp=timestamp,
    )
