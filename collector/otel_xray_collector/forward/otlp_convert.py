"""X-Ray segment documents -> OTLP spans: the inverse of the library's translator.

Forwarding to X-Ray's OTLP endpoint needs spans, while the collector stores what arrived as
segment documents (over UDP, PutTraceSegments or already translated from OTLP). This module
reads a document back into the OpenTelemetry shape it came from, using the attribute names the
library's translator reads (``otel_xray.translate``), so that span -> segment -> span keeps the
ids, times, kind, status and the HTTP / SQL / AWS / cause / annotation / metadata facts. It
follows the upstream Collector's ``awsxrayreceiver`` where that is a choice (a segment is a
SERVER span, a ``remote``/``aws`` subsegment a CLIENT span, each embedded subsegment a child
span, each cause exception an ``exception`` event) and goes further where the library's
translator left a trail (``otel.resource.*`` metadata becomes the resource again, annotation
keys are listed in ``aws.xray.annotations`` so they stay annotations).

Pure functions, no I/O: the forwarder (``forward/otlp.py``) batches, encodes and sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otel_xray_collector import __version__

from otel_xray.attributes import (
    ANNOTATIONS_ATTRIBUTE,
    METADATA_ATTRIBUTE_PREFIX,
    SAMPLING_RULE_ATTRIBUTE,
    USER_ATTRIBUTE,
)
from otel_xray.translate.annotations import DEFAULT_NAMESPACE
from otel_xray.translate.aws import AWS_FIELD_ATTRIBUTES
from otel_xray.translate.cause import EXCEPTION_EVENT
from otel_xray.translate.origin import (
    BEANSTALK_DEPLOYMENT,
    BEANSTALK_FIELDS,
    EC2_FIELDS,
    ECS_FIELDS,
    EKS_FIELDS,
    ORIGIN_PLATFORMS,
)
from otel_xray.translate.resource import RESOURCE_PREFIX

#: X-Ray's OTLP endpoint refuses bigger spans (``≤ 200 KB per span``).
MAX_SPAN_BYTES = 200 * 1024
#: ... and bigger requests (``≤ 10,000 spans and ≤ 5 MB per request``).
MAX_SPANS_PER_REQUEST = 10_000
MAX_REQUEST_BYTES = 5 * 1000 * 1000
#: What ``trim_span`` cuts every string attribute to when dropping stack traces and metadata
#: was not enough.
TRIMMED_STRING_CHARS = 1024
UNKNOWN_SERVICE = "unknown_service"

_SCOPE = common_pb2.InstrumentationScope(name="otel-xray-collector", version=__version__)
_SERVER = trace_pb2.Span.SPAN_KIND_SERVER
_CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
_INTERNAL = trace_pb2.Span.SPAN_KIND_INTERNAL
_ERROR = trace_pb2.Status.STATUS_CODE_ERROR
_SAMPLED = 0x01
_HAS_IS_REMOTE = trace_pb2.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = trace_pb2.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_HEX = frozenset("0123456789abcdefABCDEF")

# aws.<block>.<field> -> resource attribute, for segments that carry no ``otel.resource.*``
# metadata (documents from the X-Ray SDKs and the daemon's other clients): the translator's
# tables read backwards.
_RESOURCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "ec2": EC2_FIELDS,
    "ecs": ECS_FIELDS,
    "eks": EKS_FIELDS,
    "elastic_beanstalk": (*BEANSTALK_FIELDS, BEANSTALK_DEPLOYMENT),
    "xray": (("sdk_version", "telemetry.sdk.version"),),
}
# Blocks of ``aws`` that describe where the service runs, not the call (resource, not span).
_RESOURCE_BLOCKS = frozenset(_RESOURCE_FIELDS) | {"cloudwatch_logs"}


class InvalidDocument(ValueError):
    """A document that cannot become spans (ids that are not hex of the right length...)."""


@dataclass
class Converted:
    """The spans of one document, with the resource they share."""

    resource: dict[str, Any]
    spans: list[trace_pb2.Span]
    #: The segment's own id when the document is a segment (its resource names the service).
    segment_id: str | None = None
    #: (id, parent id) of every span, for finding the service of an independent subsegment.
    parents: list[tuple[str, str]] = field(default_factory=list)


def trace_id_bytes(text: Any) -> bytes:
    """``1-5f84c7a1-e7d1852db8c4fd35d88bf49a`` -> its 16 bytes (epoch then random part)."""
    if not isinstance(text, str) or len(text) != 35 or text[:2] != "1-" or text[10] != "-":
        raise InvalidDocument(f"not an X-Ray trace id: {text!r}")
    digits = text[2:10] + text[11:]
    if not _HEX.issuperset(digits):
        raise InvalidDocument(f"not an X-Ray trace id: {text!r}")
    return bytes.fromhex(digits)


def span_id_bytes(text: Any) -> bytes:
    if not isinstance(text, str) or len(text) != 16 or not _HEX.issuperset(text):
        raise InvalidDocument(f"not a segment id: {text!r}")
    return bytes.fromhex(text)


def is_in_progress(document: Mapping[str, Any]) -> bool:
    """An unfinished segment: OTLP has no such span; the complete document follows later."""
    return bool(document.get("in_progress")) or not isinstance(
        document.get("end_time"), (int, float)
    )


def convert_document(document: Mapping[str, Any]) -> Converted:
    """One segment or independent-subsegment document -> its spans (embedded subsegments
    become child spans, depth first). Raises ``InvalidDocument``, and nothing else, whatever
    the document holds (a time protobuf cannot hold, a field of an unexpected type...)."""
    trace_id = trace_id_bytes(document.get("trace_id"))
    span_id_bytes(document.get("id"))
    is_segment = document.get("type") != "subsegment"
    parent = document.get("parent_id")
    try:
        resource = _resource(document) if is_segment else _subsegment_resource(document)
        converted = Converted(resource, [], document["id"] if is_segment else None)
        _convert(
            document, trace_id, parent if isinstance(parent, str) else None, is_segment, converted
        )
    except (TypeError, ValueError, OverflowError, AttributeError, RecursionError) as exc:
        if isinstance(exc, InvalidDocument):
            raise
        raise InvalidDocument(f"{type(exc).__name__}: {exc}") from exc
    return converted


def _convert(
    doc: Mapping[str, Any],
    trace_id: bytes,
    parent_id: str | None,
    is_segment: bool,
    out: Converted,
) -> None:
    span = trace_pb2.Span(trace_id=trace_id, span_id=span_id_bytes(doc.get("id")))
    out.spans.append(span)
    if parent_id:
        span.parent_span_id = span_id_bytes(parent_id)
        out.parents.append((doc["id"], parent_id))
    name = doc.get("name")
    span.name = name if isinstance(name, str) else ""
    start = doc.get("start_time")
    end = doc.get("end_time")
    if not isinstance(start, (int, float)):
        raise InvalidDocument("start_time missing")
    span.start_time_unix_nano = int(round(start * 1e9))
    span.end_time_unix_nano = int(round(end * 1e9)) if isinstance(end, (int, float)) else 0
    flags = _SAMPLED | _HAS_IS_REMOTE
    if is_segment and parent_id:
        flags |= _IS_REMOTE  # a segment's parent lives in another process
    span.flags = flags

    attrs: dict[str, Any] = {}
    namespace = doc.get("namespace")
    if is_segment:
        span.kind = _SERVER
    elif namespace in ("remote", "aws"):
        span.kind = _CLIENT
        # The subsegment's name is the thing called: say so the way the translator reads it.
        attrs["aws.service" if namespace == "aws" else "peer.service"] = span.name
    else:
        span.kind = _INTERNAL
    _metadata_attributes(doc.get("metadata"), attrs, out.resource if is_segment else None)
    _annotation_attributes(doc.get("annotations"), attrs)
    _http_attributes(doc.get("http"), attrs)
    _sql_attributes(doc.get("sql"), attrs)
    _aws_attributes(doc.get("aws"), attrs)
    user = doc.get("user")
    if isinstance(user, str) and user:
        attrs[USER_ATTRIBUTE] = user
    _put_attributes(span.attributes, attrs)
    _links(doc.get("links"), span)
    _status_and_cause(doc, span, is_segment, attrs, out.resource.get("telemetry.sdk.language"))

    for child in doc.get("subsegments") or ():
        if isinstance(child, dict):
            _convert(child, trace_id, doc["id"], False, out)


# --- resource ---------------------------------------------------------------------------------


def _resource(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The service a segment describes: ``otel.resource.*`` metadata when the library wrote it
    (exactly what the SDK had), else what the ``aws``/``service``/``origin`` blocks say."""
    resource: dict[str, Any] = {}
    metadata = doc.get("metadata")
    default = metadata.get(DEFAULT_NAMESPACE) if isinstance(metadata, dict) else None
    if isinstance(default, dict):
        for key, value in default.items():
            if key.startswith(RESOURCE_PREFIX) and _is_attribute(value):
                resource[key[len(RESOURCE_PREFIX) :]] = value
    name = doc.get("name")
    resource.setdefault("service.name", name if isinstance(name, str) else UNKNOWN_SERVICE)
    _fill_from_blocks(doc, resource)
    service = doc.get("service")
    if isinstance(service, dict) and isinstance(service.get("version"), str):
        resource.setdefault("service.version", service["version"])
    return resource


def _subsegment_resource(doc: Mapping[str, Any]) -> dict[str, Any]:
    """An independent subsegment names no service: ``resolve_services`` fills it in from its
    segment when that is in the same batch (or was seen recently)."""
    resource: dict[str, Any] = {}
    _fill_from_blocks(doc, resource)
    return resource


def _fill_from_blocks(doc: Mapping[str, Any], resource: dict[str, Any]) -> None:
    aws = doc.get("aws")
    origin = doc.get("origin")
    if isinstance(origin, str) and origin in ORIGIN_PLATFORMS:
        resource.setdefault("cloud.provider", "aws")
        resource.setdefault("cloud.platform", ORIGIN_PLATFORMS[origin])
    if not isinstance(aws, dict):
        return
    for block_name in _RESOURCE_FIELDS.keys() & aws.keys():
        block = aws[block_name]
        if not isinstance(block, dict):
            continue
        fields = _RESOURCE_FIELDS[block_name]
        if block_name != "xray":
            resource.setdefault("cloud.provider", "aws")
        for source, target in fields:
            value = block.get(source)
            if _is_attribute(value) and value != "":
                resource.setdefault(target, str(value) if type(value) is int else value)
    xray = aws.get("xray")
    sdk = xray.get("sdk") if isinstance(xray, dict) else None
    if isinstance(sdk, str) and sdk:
        # "X-Ray for Python", "opentelemetry for python": name and language, as the SDKs say
        name, separator, language = sdk.partition(" for ")
        resource.setdefault("telemetry.sdk.name", name)
        if separator and language:
            resource.setdefault("telemetry.sdk.language", language.lower())
    groups = [
        entry.get("log_group")
        for entry in aws.get("cloudwatch_logs") or ()
        if isinstance(entry, dict) and isinstance(entry.get("log_group"), str)
    ]
    if groups:
        resource.setdefault("aws.log.group.names", groups)
    account = aws.get("account_id")
    if isinstance(account, str) and account:
        resource.setdefault("cloud.account.id", account)


# --- span attributes --------------------------------------------------------------------------


def _metadata_attributes(
    metadata: Any, attrs: dict[str, Any], resource: dict[str, Any] | None
) -> None:
    """``default`` namespace entries that fit an attribute become attributes again (they were
    leftover attributes); the rest, and every other namespace, become one
    ``aws.xray.metadata.<namespace>`` JSON attribute each, which the translator reads back."""
    if not isinstance(metadata, dict):
        return
    for namespace, values in metadata.items():
        if not isinstance(values, dict):
            continue
        if namespace != DEFAULT_NAMESPACE:
            attrs[METADATA_ATTRIBUTE_PREFIX + str(namespace)] = _json(values)
            continue
        rest: dict[str, Any] = {}
        for key, value in values.items():
            if key.startswith(RESOURCE_PREFIX) and resource is not None:
                continue  # already the resource
            if _is_attribute(value) and not key.startswith(METADATA_ATTRIBUTE_PREFIX):
                attrs[key] = value
            else:
                rest[key] = value
        if rest:
            attrs[METADATA_ATTRIBUTE_PREFIX + DEFAULT_NAMESPACE] = _json(rest)


def _annotation_attributes(annotations: Any, attrs: dict[str, Any]) -> None:
    if not isinstance(annotations, dict) or not annotations:
        return
    keys = []
    for key, value in annotations.items():
        if isinstance(value, (str, bool, int, float)):
            attrs[key] = value
            keys.append(key)
    if keys:
        attrs[ANNOTATIONS_ATTRIBUTE] = keys


def _http_attributes(http: Any, attrs: dict[str, Any]) -> None:
    if not isinstance(http, dict):
        return
    request = http.get("request")
    if isinstance(request, dict):
        _copy(request, attrs, "method", "http.request.method")
        _copy(request, attrs, "url", "url.full")
        _copy(request, attrs, "client_ip", "client.address")
        _copy(request, attrs, "user_agent", "user_agent.original")
    response = http.get("response")
    if isinstance(response, dict):
        _copy(response, attrs, "status", "http.response.status_code", int)
        _copy(response, attrs, "content_length", "http.response.body.size", int)


def _sql_attributes(sql: Any, attrs: dict[str, Any]) -> None:
    if not isinstance(sql, dict):
        return
    # ``url`` is ``<where>/<database>`` (a connection string, or the server and port).
    url = sql.get("url")
    if isinstance(url, str) and "/" in url:
        location, _, database = url.rpartition("/")
        if database:
            attrs["db.namespace"] = database
        if isinstance(sql.get("connection_string"), str) or "://" in location:
            attrs["db.connection_string"] = location
        elif location:
            host, colon, port = location.rpartition(":")
            if colon and port.isdigit() and "]" not in port:
                attrs["server.address"] = host
                attrs["server.port"] = int(port)
            else:
                attrs["server.address"] = location
    _copy(sql, attrs, "database_type", "db.system")
    _copy(sql, attrs, "sanitized_query", "db.query.text")
    _copy(sql, attrs, "user", "db.user")


def _aws_attributes(aws: Any, attrs: dict[str, Any]) -> None:
    if not isinstance(aws, dict):
        return
    for key, value in aws.items():
        if key in _RESOURCE_BLOCKS or key == "account_id":
            continue
        target = AWS_FIELD_ATTRIBUTES.get(key)
        if target is not None and _is_attribute(value):
            attrs[target] = value
    xray = aws.get("xray")
    if isinstance(xray, dict) and isinstance(xray.get("sampling_rule_name"), str):
        attrs[SAMPLING_RULE_ATTRIBUTE] = xray["sampling_rule_name"]


def _copy(
    block: Mapping[str, Any], attrs: dict[str, Any], key: str, target: str, kind: type = str
) -> None:
    value = block.get(key)
    if isinstance(value, kind) and not isinstance(value, bool) and value != "":
        attrs[target] = value


def _links(links: Any, span: trace_pb2.Span) -> None:
    if not isinstance(links, list):
        return
    for link in links:
        if not isinstance(link, dict):
            continue
        try:
            out = span.links.add(
                trace_id=trace_id_bytes(link.get("trace_id")),
                span_id=span_id_bytes(link.get("id")),
            )
        except InvalidDocument:
            continue
        attributes = link.get("attributes")
        if isinstance(attributes, dict):
            _put_attributes(out.attributes, dict(attributes))


def _status_and_cause(
    doc: Mapping[str, Any],
    span: trace_pb2.Span,
    is_segment: bool,
    attrs: Mapping[str, Any],
    language: Any,
) -> None:
    """``fault`` -> ERROR. ``error``/``throttle`` (a 4xx) -> ERROR too, except on a server span
    answering 4xx, which OTel's HTTP conventions leave UNSET (the caller erred, not the server).
    Cause exceptions become ``exception`` events at the span's end."""
    message = ""
    cause = doc.get("cause")
    if isinstance(cause, str):
        message = cause  # the id of an exception recorded in another subsegment
    elif isinstance(cause, dict):
        for exception in cause.get("exceptions") or ():
            if not isinstance(exception, dict):
                continue
            event = span.events.add(name=EXCEPTION_EVENT, time_unix_nano=span.end_time_unix_nano)
            values: dict[str, Any] = {}
            for source, target in (
                ("type", "exception.type"),
                ("message", "exception.message"),
                ("id", "aws.xray.exception.id"),
            ):
                if isinstance(exception.get(source), str):
                    values[target] = exception[source]
            stack = _stacktrace(exception, language == "python")
            if stack:
                values["exception.stacktrace"] = stack
            _put_attributes(event.attributes, values)
            if not message:
                message = str(exception.get("message") or exception.get("type") or "")
    status = attrs.get("http.response.status_code")
    server_4xx = is_segment and isinstance(status, int) and 400 <= status < 500
    if doc.get("fault") is True or (
        (doc.get("error") is True or doc.get("throttle") is True) and not server_4xx
    ):
        span.status.code = _ERROR
        span.status.message = message


def _stacktrace(exception: Mapping[str, Any], python: bool) -> str:
    """The frames as the SDK's language prints them, so readers (and the library's translator)
    parse them back: a Python traceback (outermost frame first) for Python, else the Java-style
    ``\\tat label(path:line)`` lines the upstream receiver writes for every language (innermost
    first, as X-Ray lists frames)."""
    stack = exception.get("stack")
    if not isinstance(stack, list) or not stack:
        return ""
    frames = [frame for frame in stack if isinstance(frame, dict)]
    heading = f"{exception.get('type') or ''}: {exception.get('message') or ''}"
    lines = []
    if python:
        lines.append("Traceback (most recent call last):")
        for frame in reversed(frames):
            line = frame.get("line")
            number = line if isinstance(line, int) else 0
            lines.append(
                f'  File "{frame.get("path") or ""}", line {number}, in {frame.get("label") or ""}'
            )
        lines.append(heading)
        return "\n".join(lines)
    lines.append(heading)
    for frame in frames:
        line = frame.get("line")
        where = f"{frame.get('path') or ''}:{line if isinstance(line, int) else '<unknown>'}"
        lines.append(f"\tat {frame.get('label') or ''}({where})")
    return "\n".join(lines)


# --- attribute values -------------------------------------------------------------------------


_SCALARS = (str, bool, int, float)
_INT64 = range(-(2**63), 2**63)


def _is_attribute(value: Any) -> bool:
    """Whether OTLP can hold ``value`` as it is: a scalar (a 64-bit int) or a non-empty list of
    scalars of one type."""
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return True
    if kind is int:
        return value in _INT64
    if (kind is list or kind is tuple) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1:
            only = kinds.pop()
            return only in _SCALARS and (only is not int or all(item in _INT64 for item in value))
    return False


def _set_value(out: common_pb2.AnyValue, value: Any) -> None:
    """Fill ``out`` from a value ``_is_attribute`` accepted."""
    kind = type(value)
    if kind is str:
        out.string_value = value
    elif kind is bool:
        out.bool_value = value
    elif kind is int:
        out.int_value = value
    elif kind is float:
        out.double_value = value
    else:
        values = out.array_value.values
        for item in value:
            _set_value(values.add(), item)


def _put_attributes(target: Any, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        kv = target.add()
        kv.key = key
        if _is_attribute(value):
            _set_value(kv.value, value)
        else:
            kv.value.string_value = _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


# --- batches ----------------------------------------------------------------------------------


class ServiceDirectory:
    """Remembers which service each recent segment (and its subsegments) belongs to, so an
    independent subsegment, which names no service, is sent under its segment's resource.

    Bounded: the oldest entries go first. Children usually end, and so arrive, before or with
    their segment, so ``resolve`` looks at the whole batch before it gives up.
    """

    def __init__(self, limit: int = 65536) -> None:
        self._limit = limit
        self._services: dict[str, dict[str, Any]] = {}

    def remember(self, span_id: str, resource: dict[str, Any]) -> None:
        services = self._services
        if span_id in services:
            return
        if len(services) >= self._limit:
            del services[next(iter(services))]
        services[span_id] = resource

    def lookup(self, span_id: str) -> dict[str, Any] | None:
        return self._services.get(span_id)


def resolve_services(converted: list[Converted], directory: ServiceDirectory) -> list[Converted]:
    """Give every independent subsegment the resource of its segment, found through the chain
    of parent ids in this batch or the directory. Returns the subsegments whose segment is
    nowhere yet (the caller may wait for it, or give up with ``unknown_service``)."""
    parents: dict[str, str] = {}
    for item in converted:
        parents.update(item.parents)
        if item.segment_id is not None:
            directory.remember(item.segment_id, item.resource)
            for span_id, _ in item.parents:
                directory.remember(span_id, item.resource)
    unresolved = []
    for item in converted:
        if item.segment_id is not None or "service.name" in item.resource:
            continue
        found = None
        cursor = item.parents[0][1] if item.parents else None
        for _ in range(64):  # a chain of parents, never a cycle
            if cursor is None:
                break
            found = directory.lookup(cursor)
            if found is not None:
                break
            cursor = parents.get(cursor)
        if found is None:
            unresolved.append(item)
            continue
        # The segment's resource is the service's own (exact when the library recorded it);
        # the subsegment's guesses from its aws blocks only fill what it lacks.
        merged = {**item.resource, **found}
        merged.setdefault("service.name", UNKNOWN_SERVICE)
        item.resource = found if merged == found else merged
        for span_id, _ in item.parents:
            directory.remember(span_id, merged)
    return unresolved


def give_up_service(item: Converted) -> None:
    """The segment of this subsegment never came: ``unknown_service``, the OTel default, rather
    than the subsegment's own name (that would invent a service named after a database)."""
    item.resource["service.name"] = UNKNOWN_SERVICE


def trim_span(span: trace_pb2.Span, limit: int = MAX_SPAN_BYTES) -> bool:
    """Fit a span under ``limit`` bytes: drop stack traces, then metadata attributes, then cut
    long strings. True when it fits (changed or not), False when nothing made it fit."""
    if span.ByteSize() <= limit:
        return True
    for event in span.events:
        _remove_attributes(event.attributes, lambda key: key == "exception.stacktrace")
    if span.ByteSize() <= limit:
        return True
    _remove_attributes(span.attributes, lambda key: key.startswith(METADATA_ATTRIBUTE_PREFIX))
    if span.ByteSize() <= limit:
        return True
    for attributes in [span.attributes, *(event.attributes for event in span.events)]:
        for kv in attributes:
            if len(kv.value.string_value) > TRIMMED_STRING_CHARS:
                kv.value.string_value = kv.value.string_value[:TRIMMED_STRING_CHARS]
    return bool(span.ByteSize() <= limit)


def _remove_attributes(attributes: Any, drop: Any) -> None:
    kept = [kv for kv in attributes if not drop(kv.key)]
    if len(kept) != len(attributes):
        del attributes[:]
        attributes.extend(kept)


@dataclass
class Request:
    """One OTLP request: its message, how many spans it holds, which documents it carries."""

    message: trace_service_pb2.ExportTraceServiceRequest
    spans: int
    documents: set[int]


def build_requests(
    items: Iterable[tuple[int, dict[str, Any], trace_pb2.Span]],
    max_spans: int = MAX_SPANS_PER_REQUEST,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> Iterator[Request]:
    """Pack (document index, resource, span) into requests of at most ``max_spans`` spans and
    ``max_bytes`` encoded bytes (spans grouped under one ``ResourceSpans`` per resource).
    A span must already fit (``trim_span``)."""
    message = trace_service_pb2.ExportTraceServiceRequest()
    groups: dict[str, Any] = {}
    size = spans = 0
    documents: set[int] = set()
    keys: dict[int, str] = {}  # id(resource) -> key: documents share their resource dict
    for index, resource, span in items:
        key = keys.get(id(resource))
        if key is None:
            key = keys[id(resource)] = _json(sorted(resource.items()))
        span_size = span.ByteSize() + 8  # tag + length of the span inside its ScopeSpans
        group = groups.get(key)
        group_size = 0
        if group is None:
            resource_message = resource_pb2.Resource()
            _put_attributes(resource_message.attributes, resource)
            group_size = resource_message.ByteSize() + _SCOPE.ByteSize() + 32
        if spans and (spans >= max_spans or size + span_size + group_size > max_bytes):
            yield Request(message, spans, documents)
            message = trace_service_pb2.ExportTraceServiceRequest()
            groups = {}
            size = spans = 0
            documents = set()
            group = None
        if group is None:
            resource_spans = message.resource_spans.add()
            _put_attributes(resource_spans.resource.attributes, resource)
            group = resource_spans.scope_spans.add()
            group.scope.CopyFrom(_SCOPE)
            groups[key] = group
            size += resource_spans.resource.ByteSize() + _SCOPE.ByteSize() + 32
        group.spans.append(span)
        size += span_size
        spans += 1
        documents.add(index)
    if spans:
        yield Request(message, spans, documents)
