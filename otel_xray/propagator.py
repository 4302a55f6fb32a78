"""``X-Amzn-Trace-Id`` propagation, with the cases the upstream X-Ray propagators get wrong.

Three things OpenTelemetry cannot express directly are kept in the span context's TraceState,
because TraceState travels with every span made under the extracted parent (whatever thread the
work moves to) and is visible to samplers and to the translator through ``ReadableSpan.parent``:

* ``xray-root-only``: the header had ``Root`` but no ``Parent`` (an ALB at the edge sends exactly
  that). OpenTelemetry only continues a trace under a parent with a non-zero span id, so a
  synthetic one is made up and its id stored here; the translator drops ``parent_id`` when it
  points at it (``is_synthetic_parent``), so the server span becomes a root segment of the ALB's
  trace.
* ``xray-deferred``: ``Sampled=?`` or no ``Sampled``: the caller asks the callee to decide. The
  trace flags say "sampled" so that ordinary parent-based samplers keep recording like they do for
  a new trace; X-Ray samplers see ``is_sampling_deferred`` and apply their rules instead.
* ``xray-fields``: fields other than Root/Parent/Sampled (``Lineage`` ...), re-sent downstream as
  the X-Ray SDKs do.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from otel_xray.config import LAMBDA_TRACE_HEADER_ENV
from otel_xray.wire import format_trace_id, is_segment_id, parse_trace_id

__all__ = [
    "TRACE_HEADER_KEY",
    "TraceHeader",
    "XRayLambdaPropagator",
    "XRayPropagator",
    "format_trace_header",
    "is_sampling_deferred",
    "is_synthetic_parent",
    "parse_trace_header",
]

_logger = logging.getLogger("otel_xray.propagator")

TRACE_HEADER_KEY = "X-Amzn-Trace-Id"

ROOT_ONLY_STATE_KEY = "xray-root-only"
DEFERRED_STATE_KEY = "xray-deferred"
FIELDS_STATE_KEY = "xray-fields"

# Exact spellings tried first (cheap dict lookups); only if they all miss are the carrier's keys
# scanned, so a case-sensitive getter over e.g. HTTP/2 lower-case headers still finds the header.
_HEADER_SPELLINGS = (TRACE_HEADER_KEY, "x-amzn-trace-id", "X-AMZN-TRACE-ID", "HTTP_X_AMZN_TRACE_ID")
_NORMALISED_NAMES = frozenset({"x-amzn-trace-id", "http-x-amzn-trace-id"})

# ALB's own hop id: it describes the previous hop only, and every X-Ray SDK drops it.
_DROPPED_FIELDS = frozenset({"Self"})
# Same budget as the Java X-Ray propagator for carried fields, so the header stays small.
_MAX_CARRIED_CHARS = 256
_MAX_HEADER_CHARS = 4096


@dataclass(frozen=True)
class TraceHeader:
    """A parsed header. ``parent_id`` is 0 when absent; ``sampled`` is None when deferred."""

    trace_id: int
    parent_id: int
    sampled: bool | None
    fields: tuple[tuple[str, str], ...] = ()


def parse_trace_header(header: str | None) -> TraceHeader | None:
    """Parse ``Root=...;Parent=...;Sampled=...[;k=v...]``; None when malformed (never raises)."""
    if not header or len(header) > _MAX_HEADER_CHARS:
        return None
    trace_id = parent_id = 0
    sampled: bool | None = None
    seen: set[str] = set()
    fields: list[tuple[str, str]] = []
    for part in header.split(";"):
        part = part.strip()
        if not part:
            continue  # tolerate "Root=...;" and ";;"
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            return None
        if key in ("Root", "Parent", "Sampled"):
            if key in seen:
                return None  # two Roots: no way to know which one is meant
            seen.add(key)
        if key == "Root":
            trace_id = parse_trace_id(value)
            if not trace_id:
                return None
        elif key == "Parent":
            if not is_segment_id(value):
                return None
            parent_id = int(value, 16)  # all zeros = no parent, as with Root-only headers
        elif key == "Sampled":
            if value == "1":
                sampled = True
            elif value == "0":
                sampled = False
            elif value != "?":
                return None
        elif key not in _DROPPED_FIELDS:
            fields.append((key, value))
    if not trace_id:
        return None
    return TraceHeader(trace_id, parent_id, sampled, tuple(fields))


def format_trace_header(
    trace_id: int,
    parent_id: int,
    sampled: bool | None,
    fields: Iterable[tuple[str, str]] = (),
) -> str:
    """The header text; ``parent_id`` 0 omits Parent, ``sampled`` None writes ``Sampled=?``."""
    parts = [f"Root={format_trace_id(trace_id)}"]
    if parent_id:
        parts.append(f"Parent={parent_id:016x}")
    parts.append("Sampled=?" if sampled is None else ("Sampled=1" if sampled else "Sampled=0"))
    parts.extend(f"{key}={value}" for key, value in fields)
    return ";".join(parts)


def is_synthetic_parent(parent: SpanContext | None) -> bool:
    """True when ``parent`` is the stand-in made for a header without ``Parent``.

    The translator uses this to emit the child as a segment without ``parent_id``.
    """
    if parent is None or not parent.is_remote:
        return False
    return parent.trace_state.get(ROOT_ONLY_STATE_KEY) == f"{parent.span_id:016x}"


def is_sampling_deferred(parent: SpanContext | None) -> bool:
    """True when ``parent`` came from a header with ``Sampled=?`` or no ``Sampled`` at all.

    X-Ray samplers treat such a parent like no decision and apply their rules.
    """
    if parent is None or not parent.is_remote:
        return False
    return parent.trace_state.get(DEFERRED_STATE_KEY) == f"{parent.span_id:016x}"


def _encode_fields(fields: Sequence[tuple[str, str]]) -> str | None:
    """TraceState values cannot hold ``,`` or ``=``: percent-escape them (and ``%`` itself)."""
    kept: list[str] = []
    size = 0
    for key, value in fields:
        pair = f"{key}={value}"
        if not all(" " <= c <= "~" for c in pair):
            _logger.debug("X-Amzn-Trace-Id field %r has non-printable characters; not carried", key)
            continue
        encoded = pair.replace("%", "%25").replace(",", "%2C").replace("=", "%3D")
        needed = len(encoded) + (1 if kept else 0)
        if size + needed > _MAX_CARRIED_CHARS:
            _logger.debug("X-Amzn-Trace-Id field %r exceeds the carried-field budget", key)
            continue
        size += needed
        kept.append(encoded)
    return ";".join(kept) if kept else None


def _decode_fields(encoded: str | None) -> list[tuple[str, str]]:
    if not encoded:
        return []
    fields = []
    for item in encoded.split(";"):
        pair = item.replace("%3D", "=").replace("%2C", ",").replace("%25", "%")
        key, _, value = pair.partition("=")
        if key:
            fields.append((key, value))
    return fields


def _new_span_id() -> int:
    span_id = 0
    while not span_id:
        span_id = random.getrandbits(64)
    return span_id


def _with_state(state: TraceState, key: str, value: str | None) -> TraceState:
    if value is None:
        return state.delete(key) if key in state else state
    return state.update(key, value) if key in state else state.add(key, value)


def _context_for(header: TraceHeader, context: Context) -> Context:
    """A context whose current span is the remote parent the header describes."""
    previous = trace.get_current_span(context).get_span_context()
    # Keep a W3C tracestate extracted earlier for the very same trace (composite propagators).
    state = previous.trace_state if previous.trace_id == header.trace_id else TraceState()
    parent_id = header.parent_id or _new_span_id()
    state = _with_state(
        state, ROOT_ONLY_STATE_KEY, None if header.parent_id else f"{parent_id:016x}"
    )
    state = _with_state(
        state, DEFERRED_STATE_KEY, f"{parent_id:016x}" if header.sampled is None else None
    )
    state = _with_state(state, FIELDS_STATE_KEY, _encode_fields(header.fields))
    flags = TraceFlags(TraceFlags.DEFAULT if header.sampled is False else TraceFlags.SAMPLED)
    span_context = SpanContext(
        trace_id=header.trace_id,
        span_id=parent_id,
        is_remote=True,
        trace_flags=flags,
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context), context)


def _read_header(carrier: CarrierT, getter: Getter[CarrierT]) -> str | None:
    for name in _HEADER_SPELLINGS:
        value = _first_value(getter.get(carrier, name))
        if value is not None:
            return value
    try:
        keys = getter.keys(carrier)
    except Exception:  # a getter without keys() support: nothing more to try
        return None
    for key in keys:
        if isinstance(key, str) and key.lower().replace("_", "-") in _NORMALISED_NAMES:
            value = _first_value(getter.get(carrier, key))
            if value is not None:
                return value
    return None


def _first_value(values: object) -> str | None:
    if isinstance(values, str):
        return values or None
    if isinstance(values, (list, tuple)):
        for value in values:
            if isinstance(value, str) and value:
                return value
    return None


class XRayPropagator(TextMapPropagator):
    """Reads and writes ``X-Amzn-Trace-Id``; a malformed header leaves the context as it was."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        try:
            raw = _read_header(carrier, getter)
            header = parse_trace_header(raw)
            if header is None:
                if raw is not None:
                    _logger.debug("ignoring malformed X-Amzn-Trace-Id header %r", raw[:200])
                return context
            if not header.parent_id and trace.get_current_span(context).get_span_context().is_valid:
                # A Root-only header (an ALB makes one up when the request had none) names no
                # parent; the real one an earlier propagator found (traceparent) keeps the trace.
                return context
            return _context_for(header, context)
        except Exception:  # propagation must never break the request it is reading
            _logger.debug("X-Amzn-Trace-Id extraction failed", exc_info=True)
            return context

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        state = span_context.trace_state
        parent_id = 0 if is_synthetic_parent(span_context) else span_context.span_id
        sampled: bool | None = span_context.trace_flags.sampled
        if is_sampling_deferred(span_context):
            sampled = None  # passing the extracted context straight on: nobody decided yet
        fields = _decode_fields(state.get(FIELDS_STATE_KEY))
        setter.set(
            carrier,
            TRACE_HEADER_KEY,
            format_trace_header(span_context.trace_id, parent_id, sampled, fields),
        )

    @property
    def fields(self) -> set[str]:
        return {TRACE_HEADER_KEY}


class XRayLambdaPropagator(XRayPropagator):
    """Adds the invocation's ``_X_AMZN_TRACE_ID`` (set by Lambda) to the carrier's header.

    Order (see docs/decisions.md): a parent found by an earlier propagator is kept; a sampled
    Lambda header (Active Tracing on) wins, since Lambda's own segment is the real parent; else
    the carrier's header; else a non-sampled Lambda header, which continues Lambda's trace id.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        from_carrier = super().extract(carrier, context, getter)
        if trace.get_current_span(context).get_span_context().is_valid:
            return from_carrier
        env_header = parse_trace_header(os.environ.get(LAMBDA_TRACE_HEADER_ENV))
        if env_header is not None and env_header.sampled:
            return _context_for(env_header, context)
        if from_carrier is not context:
            return from_carrier
        if env_header is not None:
            return _context_for(env_header, context)
        return context
