"""Span -> segment / independent subsegment documents: type, ids, times, name, namespace.

The block modules each consume the attributes they understand from one working copy of the
span's attributes; what is left becomes annotations or metadata. Which documents a span makes:

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

from otel_xray.propagator import is_synthetic_parent
from otel_xray.translate.annotations import (
    build_annotations_and_metadata,
    has_metadata_namespaces,
)
from otel_xray.translate.aws import build_aws, has_aws_keys
from otel_xray.translate.cause import build_cause, flags, new_id
from otel_xray.translate.http import build_http, http_keys, status_code
from otel_xray.translate.links import build_links, span_id_hex, xray_trace_id
from otel_xray.translate.names import AWS_API, annotation_key, dependency_name, sanitize_name
from otel_xray.translate.options import DEFAULT_OPTIONS, TranslateOptions
from otel_xray.translate.resource import ResourceInfo, resource_info
from otel_xray.translate.sql import build_sql, has_db_system

SUBSEGMENT = "subsegment"
LOCAL_ROOT = "LOCAL_ROOT"
MAX_USER_LENGTH = 250
_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_PRODUCER = SpanKind.PRODUCER
_CONSUMER = SpanKind.CONSUMER
_REMOTE_KINDS = (_CLIENT, _PRODUCER, _CONSUMER)
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
_PLAN_CACHE_LIMIT = 1024


class _KeyPlan:
    """Which blocks a span's attribute keys can feed. Instrumentations set the same keys on
    every span they make, so this is worked out once per key layout, not once per span."""

    __slots__ = ("http", "aws", "sql", "namespaces")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.http = http_keys(keys)
        self.aws = has_aws_keys(keys)
        self.sql = has_db_system(keys)
        self.namespaces = has_metadata_namespaces(keys)


_plans: dict[tuple[str, ...], _KeyPlan] = {}


def _plan(raw: Mapping[str, Any]) -> _KeyPlan:
    keys = tuple(raw)
    plan = _plans.get(keys)
    if plan is None:
        plan = _KeyPlan(keys)
        if len(_plans) >= _PLAN_CACHE_LIMIT:
            _plans.clear()
        _plans[keys] = plan
    return plan


class InvalidTraceIdError(ValueError):
    """The trace id's first 32 bits are not a recent epoch (only with validation on)."""


def _raw_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attribute dict without the per-item cost of its public mapping proxy.

    ``ReadableSpan.attributes`` wraps a ``BoundedAttributes`` whose item access is Python code;
    copying through it costs more than the rest of a translation. A finished span's attributes
    are immutable, so reading its plain dict directly is safe; anything else takes the public
    path.
    """
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", None)
    if type(inner) is dict:
        return inner
    if type(raw) is dict:
        return raw
    public = span.attributes
    return dict(public) if public else _EMPTY


def _raw_sequence(span: ReadableSpan, private: str, public: str) -> Any:
    """A span's events or links without copying them into a tuple under a lock."""
    raw = getattr(span, private, None)
    queue = getattr(raw, "_dq", None)
    if queue is not None:
        return queue
    if type(raw) is tuple or type(raw) is list:
        return raw
    return getattr(span, public)


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
    """
    context = span.context
    if options.validate_trace_id_timestamp:
        now = time.time()
        _check_trace_id(context.trace_id, now)
        for link in span.links:
            _check_trace_id(link.context.trace_id, now)
    info = resource_info(span.resource, options)
    raw = _raw_attributes(span)
    attrs = dict(raw)
    kind = span.kind
    parent = span.parent
    marked = attrs.get("aws.span.kind") == LOCAL_ROOT
    local_root = marked or parent is None or parent.is_remote
    parent_id = span_id_hex(parent.span_id) if parent is not None and parent.span_id else None
    if parent_id is not None and parent.is_remote and is_synthetic_parent(parent):
        parent_id = None  # a Root-only header (ALB): the trace continues, with no parent segment
    if local_root and (kind is _CLIENT or kind is _PRODUCER or (marked and kind is _CONSUMER)):
        return _split(span, attrs, raw, info, options, parent_id)
    is_segment = local_root or kind is _SERVER
    return [_document(span, attrs, raw, info, options, is_segment, parent_id, None, True)]


def _segment_name(span: ReadableSpan, raw: Mapping[str, Any], info: ResourceInfo) -> str | None:
    """A segment is the service: ``AWS_XRAY_TRACING_NAME``, ``aws.local.service``, then the
    resource's ``service.name``."""
    tracing_name = info.options.tracing_name
    if tracing_name:
        return tracing_name
    local = raw.get("aws.local.service")
    if isinstance(local, str) and local:
        return local
    return info.service_name


def _document(
    span: ReadableSpan,
    attrs: dict[str, Any],
    raw: Mapping[str, Any],
    info: ResourceInfo,
    options: TranslateOptions,
    is_segment: bool,
    parent_id: str | None,
    default_namespace: str | None,
    with_links: bool,
) -> dict[str, Any]:
    kind = span.kind
    aws_sdk = attrs.get("rpc.system") == AWS_API
    remote_kind = kind in _REMOTE_KINDS
    from_aws_service = False
    name = _segment_name(span, raw, info) if is_segment else None
    if not name:
        name, from_aws_service = dependency_name(raw, remote_kind, aws_sdk)
    name = sanitize_name(name or span.name)

    plan = _plan(raw)
    events = _raw_sequence(span, "_events", "events")
    status = span.status
    http = build_http(attrs, kind is _SERVER, events, plan.http) if plan.http else None
    code = raw.get("http.response.status_code")
    if code is None:
        code = raw.get("http.status_code")
    fault, error, throttle = flags(status.status_code, status_code(code) if code is not None else 0)
    status_code_ = status.status_code
    cause = (
        build_cause(
            attrs,
            events,
            status_code_,
            status.description,
            kind,
            aws_sdk,
            info.language,
            options.max_stack_frames,
        )
        if events or status_code_ is StatusCode.ERROR
        else None
    )
    aws = build_aws(attrs, info.aws, aws_sdk) if plan.aws else info.aws
    sql = build_sql(attrs, raw, span.name) if plan.sql else None
    user = attrs.pop("enduser.id", None)
    if is_segment:
        annotations, metadata = build_annotations_and_metadata(
            attrs, raw, options, info.annotations, info.metadata, plan.namespaces
        )
    else:
        annotations, metadata = build_annotations_and_metadata(
            attrs, raw, options, None, None, plan.namespaces
        )

    namespace: str | None = None
    if not is_segment:
        if aws_sdk or from_aws_service:
            namespace = "aws"
        elif kind is _CLIENT or (remote_kind and raw.get("aws.remote.service")):
            namespace = "remote"
        else:
            namespace = default_namespace

    context = span.context
    end = span.end_time
    doc: dict[str, Any] = {
        "name": name,
        "id": span_id_hex(context.span_id),
        "start_time": (span.start_time or 0) / 1e9,
    }
    if info.service is not None:
        doc["service"] = info.service
    if info.origin is not None:
        doc["origin"] = info.origin
    if user is not None and user != "":
        user = user if isinstance(user, str) else str(user)
        doc["user"] = user[:MAX_USER_LENGTH]
    if with_links:
        links = _raw_sequence(span, "_links", "links")
        if links:
            doc["links"] = build_links(links)
    doc["trace_id"] = xray_trace_id(context.trace_id)
    doc["end_time"] = end / 1e9 if end else 0
    if http is not None:
        doc["http"] = http
    doc["fault"] = fault
    doc["error"] = error
    doc["throttle"] = throttle
    if cause is not None:
        doc["cause"] = cause
    if aws is not None:
        doc["aws"] = aws
    if annotations is not None:
        doc["annotations"] = annotations
    if metadata is not None:
        doc["metadata"] = metadata
    if namespace is not None:
        doc["namespace"] = namespace
    if parent_id is not None:
        doc["parent_id"] = parent_id
    if not is_segment:
        doc["type"] = SUBSEGMENT
    if sql is not None:
        doc["sql"] = sql
    return doc


def _split(
    span: ReadableSpan,
    attrs: dict[str, Any],
    raw: Mapping[str, Any],
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
        span, attrs, raw, info, options, False, service_id, "remote", not is_consumer
    )
    name = _segment_name(span, raw, info) or span.name
    segment: dict[str, Any] = {
        "name": sanitize_name(name),
        "id": service_id,
        "start_time": dependency["start_time"],
    }
    for key in ("service", "origin", "user"):
        if key in dependency:
            segment[key] = dependency[key]
    if is_consumer and span.links:
        segment["links"] = build_links(span.links)
    segment["trace_id"] = dependency["trace_id"]
    segment["end_time"] = dependency["end_time"]
    segment["fault"] = dependency["fault"]
    segment["error"] = dependency["error"]
    segment["throttle"] = dependency["throttle"]
    if "cause" in dependency:
        segment["cause"] = dependency["cause"]
    if info.aws is not None:
        segment["aws"] = dict(info.aws)
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
