"""X-Ray SDK-style ``put_annotation`` / ``put_metadata`` / ``set_user`` for OpenTelemetry spans.

Code written against ``xray_recorder`` keeps working: the calls act on the current span and leave
span attributes that the translator turns back into the segment's ``annotations``, ``metadata``
and ``user``:

* annotation ``k=v`` -> attribute ``k`` = v, and ``k`` appended to ``aws.xray.annotations``;
* metadata ``k=v`` in namespace ``ns`` -> attribute ``aws.xray.metadata.<ns>`` = JSON object text,
  merged with what the span already holds for ``ns``;
* user -> attribute ``enduser.id``.

Validation follows the X-Ray SDK: bad input is dropped with a WARNING and never raises. The one
place that can raise is a call with no span at all under ``AWS_XRAY_CONTEXT_MISSING=RUNTIME_ERROR``,
because asking for that is the point of the strategy.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span

from otel_xray import config
from otel_xray.attributes import ANNOTATIONS_ATTRIBUTE, METADATA_ATTRIBUTE_PREFIX, USER_ATTRIBUTE

__all__ = [
    "IGNORE_ERROR",
    "LOG_ERROR",
    "RUNTIME_ERROR",
    "SegmentNotFoundException",
    "put_annotation",
    "put_metadata",
    "set_context_missing_strategy",
    "set_user",
]

_logger = logging.getLogger("otel_xray.recorder")

LOG_ERROR = "LOG_ERROR"
RUNTIME_ERROR = "RUNTIME_ERROR"
IGNORE_ERROR = "IGNORE_ERROR"
_STRATEGIES = frozenset({LOG_ERROR, RUNTIME_ERROR, IGNORE_ERROR})

_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9_]+")
_MAX_DEPTH = 32

# Read-modify-write of the list/JSON attributes must not interleave across threads sharing a span.
_lock = threading.Lock()
_code_strategy = LOG_ERROR


class SegmentNotFoundException(RuntimeError):
    """No span was active where an X-Ray call needed one, under ``RUNTIME_ERROR``.

    Named after the X-Ray SDK's exception so ``except`` clauses read the same after migrating.
    """


def set_context_missing_strategy(strategy: str) -> None:
    """Code-level default, like ``xray_recorder.configure(context_missing=...)``.

    ``AWS_XRAY_CONTEXT_MISSING`` still wins when set, as it does in the X-Ray SDK.
    """
    name = strategy.strip().upper()
    if name not in _STRATEGIES:
        raise ValueError(
            f"unknown context-missing strategy {strategy!r}; use one of {sorted(_STRATEGIES)}"
        )
    global _code_strategy
    _code_strategy = name


def _context_missing_strategy() -> str:
    return config.context_missing(_code_strategy, _STRATEGIES)


def _target_span(operation: str, span: Span | None) -> Span | None:
    """The span to write to, or None when the call must do nothing."""
    if not config.sdk_enabled():
        return None
    if span is None:
        span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        message = (
            f"cannot find the current span for {operation}(): no span is active in this "
            "context; call it inside a traced request or tracer.start_as_current_span()"
        )
        strategy = _context_missing_strategy()
        if strategy == RUNTIME_ERROR:
            raise SegmentNotFoundException(message)
        if strategy == LOG_ERROR:
            _logger.error(message)
        return None
    if not span.is_recording():
        return None  # unsampled (or already ended): the X-Ray SDK ignores these calls silently
    return span


def _attributes_of(span: Span) -> Mapping[str, Any]:
    """The span's current attributes when the implementation exposes them (the SDK does)."""
    attributes = getattr(span, "attributes", None)
    return attributes if isinstance(attributes, Mapping) else {}


def put_annotation(key: str, value: str | int | float | bool, *, span: Span | None = None) -> None:
    """Index ``key=value`` on the current span's segment (searchable with filter expressions).

    Keys must be ASCII letters, digits and ``_``; values str, int, float or bool, else the
    annotation is dropped with a WARNING (as the X-Ray SDK does).
    """
    target = _target_span("put_annotation", span)
    if target is None:
        return
    if not isinstance(key, str):
        _logger.warning("ignoring annotation with non-string key of type %s", type(key).__name__)
        return
    if not _ANNOTATION_KEY.fullmatch(key):
        _logger.warning("ignoring annotation %r: keys may only hold A-Z, a-z, 0-9 and _", key)
        return
    if not isinstance(value, (str, int, float, bool)):
        _logger.warning(
            "ignoring annotation %r: value type %s is not str, int, float or bool",
            key,
            type(value).__name__,
        )
        return
    with _lock:
        listed = _attributes_of(target).get(ANNOTATIONS_ATTRIBUTE)
        keys = (
            [k for k in listed if isinstance(k, str)] if isinstance(listed, (list, tuple)) else []
        )
        if key not in keys:
            keys.append(key)
            target.set_attribute(ANNOTATIONS_ATTRIBUTE, keys)
        target.set_attribute(key, value)


def put_metadata(
    key: str, value: Any, namespace: str = "default", *, span: Span | None = None
) -> None:
    """Attach any JSON-able ``value`` under ``namespace`` (not indexed).

    Namespaces starting with ``AWS.`` are reserved and dropped with a WARNING. Values are
    converted like the X-Ray SDK does: mappings and iterables recursively, other objects by their
    public attributes, anything left by ``str()``.
    """
    target = _target_span("put_metadata", span)
    if target is None:
        return
    if not isinstance(namespace, str) or not namespace:
        _logger.warning("ignoring metadata %r: namespace must be a non-empty string", key)
        return
    if namespace.startswith("AWS."):
        _logger.warning(
            "ignoring metadata %r: namespace prefix 'AWS.' is reserved (%s)", key, namespace
        )
        return
    name = key if isinstance(key, str) else str(key)
    converted = _to_json_value(value, 0)
    attribute = METADATA_ATTRIBUTE_PREFIX + namespace
    with _lock:
        merged = _existing_object(_attributes_of(target).get(attribute), attribute)
        merged[name] = converted
        target.set_attribute(attribute, json.dumps(merged, default=str, separators=(",", ":")))


def set_user(user: str, *, span: Span | None = None) -> None:
    """Record the end user (the segment's ``user``, searchable as ``user = "..."``)."""
    target = _target_span("set_user", span)
    if target is None:
        return
    if user is None:
        _logger.warning("ignoring set_user(None)")
        return
    target.set_attribute(USER_ATTRIBUTE, user if isinstance(user, str) else str(user))


def _existing_object(text: Any, attribute: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    _logger.warning("replacing %s: its value %r is not a JSON object", attribute, text)
    return {}


def _to_json_value(value: Any, depth: int) -> Any:
    """The X-Ray SDK's ``metadata_to_dict``, bounded so cyclic objects cannot recurse forever."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN is not JSON
    if depth >= _MAX_DEPTH:
        return str(value)
    try:
        if isinstance(value, Mapping):
            return {
                k if isinstance(k, str) else str(k): _to_json_value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, type):
            return str(value)
        if isinstance(value, (bytes, bytearray)):
            return str(value)
        if hasattr(value, "__iter__"):
            return [_to_json_value(item, depth + 1) for item in value]
        if hasattr(value, "__dict__"):
            return {
                k: _to_json_value(v, depth + 1)
                for k, v in vars(value).items()
                if not k.startswith("_") and not callable(v)
            }
    except Exception:  # an odd object must not break the caller's request
        _logger.warning("could not convert metadata value of type %s", type(value).__name__)
        return str(value)
    return value
