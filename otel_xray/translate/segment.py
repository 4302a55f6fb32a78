"""Span -> segment / independent subsegment documents: type, ids, times, name, namespace.

Each block module reads the attributes it understands and says which keys it used up; what is
left becomes annotations or metadata. The span's attributes are never copied or changed: which
keys each block takes depends (almost) only on which keys a span has, so ``layout.py`` works it
out once per attribute-key layout, and the per-span path reads values only. Which documents a
span makes:

* a span that starts this process's part of a trace (no parent, a remote parent, or the
  ``aws.span.kind=LOCAL_ROOT`` marker) is a **segment**, because X-Ray draws a service node only
  for segments and the parent lives in another process (or nowhere);
* except that such a span of kind CLIENT or PRODUCER (or a marked CONSUMER) is really a call
  made by this service, so it becomes **two** documents: the call as a subsegment, then the
  service segment holding it (the ``LOCAL_ROOT`` split of the Collector, applied to every
  local root that is a call);
* SERVER spans are segments whatever their parent; every other span is an independent
  subsegment (``type: subsegment``) of its parent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_xray.attributes import SAMPLING_RULE_ATTRIBUTE, USER_ATTRIBUTE
from otel_xray.propagator import is_synthetic_parent
from otel_xray.translate.annotations import DEFAULT_NAMESPACE, build_annotations_and_metadata
from otel_xray.translate.aws import aws_block, with_sampling_rule
from otel_xray.translate.cause import build_cause, new_id
from otel_xray.translate.http import http_block, is_ip
from otel_xray.translate.layout import (
    LAYOUT_CACHE,
    Consumed,
    Layout,
    layout_of,
)
from otel_xray.translate.links import build_links, xray_trace_id
from otel_xray.translate.names import AWS_API, annotation_key, dependency_name, sanitize_name
from otel_xray.translate.options import DEFAULT_OPTIONS, TranslateOptions
from otel_xray.translate.resource import ResourceInfo, resource_info
from otel_xray.translate.sql import sql_block
from otel_xray.wire import format_segment_id

SUBSEGMENT = "subsegment"
LOCAL_ROOT = "LOCAL_ROOT"
MAX_USER_LENGTH = 250
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_PRODUCER = SpanKind.PRODUCER
_CONSUMER = SpanKind.CONSUMER
_ERROR = StatusCode.ERROR
# Dropped from the service segment of a split: they describe the call, not the service.
_REMOTE_ATTRIBUTES = (
    "aws.remote.service",
    "aws.remote.operation",
    "remoteTarget",
    "K8s.RemoteNamespace",
)
_MAX_TRACE_AGE_S = 28 * 24 * 3600
_MAX_TRACE_SKEW_S = 300
_EMPTY: Mapping[str, Any] = {}
# Value types metadata cannot hold as they are (see annotations.metadata_value).
_CONVERTED_TYPES = frozenset({tuple, bytes, bytearray})


class InvalidTraceIdError(ValueError):
    """The trace id's first 32 bits are not a recent epoch (only with validation on)."""


def _raw_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attribute dict without the per-item cost of its public mapping proxy.

    ``ReadableSpan.attributes`` wraps a ``BoundedAttributes`` whose item access is Python code;
    copying through it costs more than the rest of a translation. A finished span's attributes
    are immutable, so reading its plain dict directly is safe; anything else takes the public
    path. The translator only reads this mapping: blocks say which keys they used instead of
    removing them from a copy.
    """
    raw = span._attributes
    inner = getattr(raw, "_dict", None)
    if type(inner) is dict:
        return inner
    if type(raw) is dict:
        return raw
    public = span.attributes
    return dict(public) if public else _EMPTY


def _sequence(raw: Any) -> Any:
    """A span's events or links, without copying them into a tuple under the span's lock: a
    live SDK span keeps them in a ``BoundedList``, whose iteration copies; its deque does not.
    Anything else is used as it is (any sequence iterates and tests empty the same way)."""
    return getattr(raw, "_dq", raw)


def _check_trace_id(trace_id: int, now: float) -> None:
    epoch = trace_id >> 96
    if epoch < now - _MAX_TRACE_AGE_S or epoch > now + _MAX_TRACE_SKEW_S:
        raise InvalidTraceIdError(f"invalid xray traceid: {trace_id:032x}")


def span_to_documents(
    span: ReadableSpan, options: TranslateOptions = DEFAULT_OPTIONS
) -> list[dict[str, Any]]:
    """One document per span, two for a call that is a local root (dependency subsegment first).

    The documents are fresh dicts, but nested resource-derived parts (``service``, ``aws.ec2``
    and friends) are shared between documents: treat documents as read-only below the top level.
    Raises ``InvalidTraceIdError`` only when ``options.validate_trace_id_timestamp`` is on.

    The span's fields are read from the slots ``ReadableSpan.__init__`` fills (``_kind``,
    ``_parent``, ...) rather than through its properties, which are plain getters: a property
    call costs as much as the rest of a field's handling, and this runs for every span.
    """
    if options.validate_trace_id_timestamp:
        now = time.time()
        _check_trace_id(span.context.trace_id, now)
        for link in span.links:
            _check_trace_id(link.context.trace_id, now)
    info = resource_info(span._resource, options)
    raw = getattr(span._attributes, "_dict", None)  # a live span's BoundedAttributes
    if type(raw) is not dict:
        raw = _raw_attributes(span)
    keys = tuple(raw)
    layout = LAYOUT_CACHE.get(keys)
    if layout is None:
        layout = layout_of(keys)
    kind = span._kind
    parent = span._parent
    marked = layout.marked and raw.get("aws.span.kind") == LOCAL_ROOT
    if parent is None:
        local_root = True
        parent_id = None
    else:
        # SpanContext is typed as the tuple (trace_id, span_id, is_remote, ...); indexing it
        # costs a third of its properties.
        remote = parent[2]
        local_root = marked or remote
        parent_span_id = parent[1]
        parent_id = hex(parent_span_id)[2:].zfill(16) if parent_span_id else None
        if remote and parent_id is not None and is_synthetic_parent(parent):
            parent_id = None  # a Root-only header (ALB): the trace continues, with no parent
    if local_root and (kind is _CLIENT or kind is _PRODUCER or (marked and kind is _CONSUMER)):
        return _split(span, raw, layout, info, options, parent_id)
    is_segment = local_root or kind is _SERVER
    return [_document(span, raw, layout, info, options, is_segment, parent_id, None, True)]


def _segment_name(raw: Mapping[str, Any], layout: Layout, info: ResourceInfo) -> str | None:
    """A segment is the service: ``AWS_XRAY_TRACING_NAME``, ``aws.local.service``, then the
    resource's ``service.name``."""
    if layout.local_service and not info.options.tracing_name:
        local = raw.get("aws.local.service")
        if isinstance(local, str) and local:
            return local
    return info.segment_name


def _document(
    span: ReadableSpan,
    raw: Mapping[str, Any],
    layout: Layout,
    info: ResourceInfo,
    options: TranslateOptions,
    is_segment: bool,
    parent_id: str | None,
    default_namespace: str | None,
    with_links: bool,
) -> dict[str, Any]:
    """One document. ``consumed`` collects the value-dependent ``Consumed`` bits on the way,
    which pick the leftover keys (annotations, metadata) from the layout."""
    kind = span._kind
    aws_sdk = layout.aws_sdk_possible and raw.get("rpc.system") == AWS_API
    from_aws_service = False
    name: str | None = None
    if is_segment:
        name = _segment_name(raw, layout, info) if layout.local_service else info.segment_name
    if not name:
        name, from_aws_service = dependency_name(
            raw,
            kind is _CLIENT or kind is _PRODUCER or kind is _CONSUMER,
            aws_sdk,
            layout.name_candidates,
        )

    consumed = 0
    events = span._events
    events = getattr(events, "_dq", events)  # see _sequence
    http: dict[str, Any] | None = None
    http_status = 0
    if layout.http_plans:
        # Index into Layout.http_plans: bit 0 "server span", the bits above "this address key
        # holds an IP" (the block takes it; a hostname stays metadata).
        plan = 1 if kind is _SERVER else 0
        if layout.http_ip_keys:
            for key, bit in layout.http_ip_keys:
                value = raw[key]
                if isinstance(value, str) and is_ip(value):
                    plan |= bit
            consumed = (plan >> 1) * Consumed.IP_FIRST
        http = http_block(raw, layout.http_plans[plan], events, options.keep_url_query)
        http_status = http["response"].get("status", 0)

    status = span._status
    status_code = status._status_code  # the property is a plain getter (see span_to_documents)
    # fault / error / throttle: the HTTP status first, the span status otherwise.
    if http_status < 400 or http_status > 599:
        fault, error, throttle = status_code is _ERROR, False, False
    elif http_status < 500:
        fault, error, throttle = False, True, http_status == 429
    else:
        fault, error, throttle = True, False, False
    cause = None
    if events or status_code is _ERROR:
        cause, used_status_text = build_cause(
            raw,
            events,
            status_code,
            status.description,
            kind,
            aws_sdk,
            info.language,
            options.max_stack_frames,
        )
        if used_status_text:
            consumed |= Consumed.STATUS_TEXT
    aws = info.aws
    if layout.aws and aws is not None:
        aws = aws_block(raw, aws, aws_sdk)
        consumed |= Consumed.AWS
        if aws_sdk and layout.aws_sdk_keys:
            consumed |= Consumed.AWS_SDK
    if is_segment and layout.sampling_rule:
        aws = with_sampling_rule(aws, raw[SAMPLING_RULE_ATTRIBUTE])
    sql = None
    if layout.sql:
        sql = sql_block(raw, span._name)
        if sql is not None:
            consumed |= Consumed.SQL
    keys = layout.leftovers.get(consumed)
    if keys is None:
        keys = layout.leftover(consumed)
    # The keys left become metadata: in the common case plain, copied value by value (faster
    # than building from zipped tuples at these sizes), unless a value needs converting for
    # JSON or the options / keys ask for annotations or metadata namespaces.
    plain = layout.plain and info.plain_options
    default: dict[str, Any] = info.metadata.copy() if plain and is_segment else {}
    if plain:
        for key in keys:
            value = raw[key]
            if type(value) in _CONVERTED_TYPES:
                plain = False
                break
            default[key] = value
    annotations: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    if plain:
        if default:
            metadata = {DEFAULT_NAMESPACE: default}
    else:
        annotations, metadata = build_annotations_and_metadata(
            {key: raw[key] for key in keys},
            raw,
            options,
            info.annotations if is_segment else None,
            info.metadata if is_segment else None,
            layout.namespaces,
        )

    context = span._context  # (trace_id, span_id, ...): see span_to_documents
    if context is None:
        raise ValueError(f"span {span._name!r} has no SpanContext")
    start = span._start_time
    end = span._end_time
    # The fields every document has, in one literal (one build instead of a store each).
    doc: dict[str, Any] = {
        "name": sanitize_name(name or span._name),
        "id": format_segment_id(context[1]),
        "trace_id": xray_trace_id(context[0]),
        "start_time": start / 1e9 if start else 0.0,
        "end_time": end / 1e9 if end else 0,
        "fault": fault,
        "error": error,
        "throttle": throttle,
    }
    if info.service is not None:
        doc["service"] = info.service
    if info.origin is not None:
        doc["origin"] = info.origin
    if layout.user:
        user = raw.get(USER_ATTRIBUTE)
        if user is not None and user != "":
            user = user if isinstance(user, str) else str(user)
            doc["user"] = user[:MAX_USER_LENGTH]
    if with_links:
        links = span._links
        links = getattr(links, "_dq", links)  # see _sequence
        if links:
            doc["links"] = build_links(links)
    if http is not None:
        doc["http"] = http
    if cause is not None:
        doc["cause"] = cause
    if aws is not None:
        doc["aws"] = aws
    if annotations is not None:
        doc["annotations"] = annotations
    if metadata is not None:
        doc["metadata"] = metadata
    if not is_segment:
        if aws_sdk or from_aws_service:
            doc["namespace"] = "aws"
        elif kind is _CLIENT or (
            layout.remote_service
            and (kind is _PRODUCER or kind is _CONSUMER)
            and raw.get("aws.remote.service")
        ):
            doc["namespace"] = "remote"
        elif default_namespace is not None:
            doc["namespace"] = default_namespace
        if parent_id is not None:
            doc["parent_id"] = parent_id
        doc["type"] = SUBSEGMENT
    elif parent_id is not None:
        doc["parent_id"] = parent_id
    if sql is not None:
        doc["sql"] = sql
    return doc


def _split(
    span: ReadableSpan,
    raw: Mapping[str, Any],
    layout: Layout,
    info: ResourceInfo,
    options: TranslateOptions,
    parent_id: str | None,
) -> list[dict[str, Any]]:
    """[the call as a subsegment, the service segment that made it].

    A consumer's links (the messages it processed) belong to the service; a client's or
    producer's to the call. Span attributes go to the call only; the segment gets the
    resource metadata, the annotations and the outcome (fault flags, cause).
    """
    service_id = new_id()
    is_consumer = span.kind is _CONSUMER
    dependency = _document(
        span, raw, layout, info, options, False, service_id, "remote", not is_consumer
    )
    name = _segment_name(raw, layout, info) or span._name
    segment: dict[str, Any] = {
        "name": sanitize_name(name),
        "id": service_id,
        "start_time": dependency["start_time"],
    }
    for key in ("service", "origin", "user"):
        if key in dependency:
            segment[key] = dependency[key]
    if is_consumer and span._links:
        segment["links"] = build_links(_sequence(span._links))
    segment["trace_id"] = dependency["trace_id"]
    segment["end_time"] = dependency["end_time"]
    segment["fault"] = dependency["fault"]
    segment["error"] = dependency["error"]
    segment["throttle"] = dependency["throttle"]
    if "cause" in dependency:
        segment["cause"] = dependency["cause"]
    aws = dict(info.aws) if info.aws is not None else None
    if layout.sampling_rule:
        aws = with_sampling_rule(aws, raw[SAMPLING_RULE_ATTRIBUTE])
    if aws is not None:
        segment["aws"] = aws
    annotations = dict(info.annotations)
    call_annotations = dependency.get("annotations")
    if call_annotations:
        dropped = {annotation_key(key, options.allow_dot) for key in _REMOTE_ATTRIBUTES}
        for key, value in call_annotations.items():
            if key not in dropped:
                annotations[key] = value
    if annotations:
        segment["annotations"] = annotations
    if info.metadata:
        segment["metadata"] = {"default": dict(info.metadata)}
    if parent_id is not None:
        segment["parent_id"] = parent_id
    return [dependency, segment]
