"""Span -> segment / independent subsegment document (placeholder until the translator lands)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from otel_xray.translate.options import DEFAULT_OPTIONS, TranslateOptions


def span_to_documents(
    span: ReadableSpan, options: TranslateOptions = DEFAULT_OPTIONS
) -> list[dict[str, Any]]:
    """One document per span, two for a non-server local root (dependency subsegment first)."""
    raise NotImplementedError
