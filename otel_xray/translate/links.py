"""Span links -> ``links`` (X-Ray's representation of batch/fan-in relationships)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_xray.translate.annotations import metadata_value
from otel_xray.wire import format_segment_id, format_trace_id

_last_trace: tuple[int, str] = (-1, "")


def xray_trace_id(trace_id: int) -> str:
    """``1-<8 hex: epoch seconds>-<24 hex>``, from the 128-bit OTel trace id.

    Spans arrive trace by trace, so the last conversion is remembered.
    """
    global _last_trace
    last = _last_trace
    if last[0] == trace_id:
        return last[1]
    text = format_trace_id(trace_id)
    _last_trace = (trace_id, text)
    return text


def build_links(links: Sequence[Any]) -> list[dict[str, Any]] | None:
    if not links:
        return None
    result = []
    for link in links:
        context = link.context
        entry: dict[str, Any] = {
            "trace_id": xray_trace_id(context.trace_id),
            "id": format_segment_id(context.span_id) if context.span_id else "",
        }
        attributes = link.attributes
        if attributes:
            entry["attributes"] = {key: metadata_value(value) for key, value in attributes.items()}
        result.append(entry)
    return result
