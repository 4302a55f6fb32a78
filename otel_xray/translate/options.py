"""Options that change how spans become segment documents."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from otel_xray.config import TRACING_NAME_ENV

DEFAULT_MAX_STACK_FRAMES = 50


@dataclass(frozen=True)
class TranslateOptions:
    """Immutable, built once per exporter so the per-span path reads plain attributes.

    ``indexed_attributes``: attribute names (span keys, or ``otel.resource.<key>`` for resource
    keys) that become annotations. ``index_all_attributes``: every scalar attribute becomes an
    annotation. ``tracing_name``: the segment name override (``AWS_XRAY_TRACING_NAME``).
    ``log_group_names``: fallback ``aws.cloudwatch_logs`` entries. ``allow_dot``: keep ``.`` in
    annotation keys (the Collector's default).

    ``sdk_from_resource``: describe the producing SDK in ``aws.xray`` from the resource's
    ``telemetry.sdk.*`` (what the Collector does; right for spans received over OTLP from other
    processes) instead of naming this library (right for the in-process exporter).
    ``max_stack_frames``: frames kept per exception (innermost first); the rest are counted in
    ``truncated`` so one deep stack cannot push a document past the 64 KB datagram limit.
    ``validate_trace_id_timestamp``: reject trace ids whose first 32 bits are not a plausible
    epoch (the Collector's optional check; off by default, like the Collector).
    ``keep_url_query``: keep the query string (and fragment) in ``http.request.url``. Off by
    default, like the X-Ray SDK's Flask middleware and ``requests`` patch: queries carry tokens
    and e-mail addresses, and X-Ray users do not expect them in their traces.
    """

    indexed_attributes: frozenset[str] = frozenset()
    index_all_attributes: bool = False
    tracing_name: str | None = None
    log_group_names: tuple[str, ...] = ()
    allow_dot: bool = True
    sdk_from_resource: bool = False
    max_stack_frames: int = DEFAULT_MAX_STACK_FRAMES
    validate_trace_id_timestamp: bool = False
    keep_url_query: bool = False

    @classmethod
    def build(
        cls,
        indexed_attributes: Iterable[str] | None = None,
        index_all_attributes: bool = False,
        tracing_name: str | None = None,
        log_group_names: Iterable[str] | None = None,
        allow_dot: bool = True,
        environ: Mapping[str, str] | None = None,
        *,
        sdk_from_resource: bool = False,
        max_stack_frames: int = DEFAULT_MAX_STACK_FRAMES,
        validate_trace_id_timestamp: bool = False,
        keep_url_query: bool = False,
    ) -> TranslateOptions:
        env = os.environ if environ is None else environ
        name = tracing_name if tracing_name is not None else env.get(TRACING_NAME_ENV) or None
        return cls(
            indexed_attributes=frozenset(indexed_attributes or ()),
            index_all_attributes=index_all_attributes,
            tracing_name=name,
            log_group_names=tuple(log_group_names or ()),
            allow_dot=allow_dot,
            sdk_from_resource=sdk_from_resource,
            max_stack_frames=max(0, int(max_stack_frames)),
            validate_trace_id_timestamp=validate_trace_id_timestamp,
            keep_url_query=keep_url_query,
        )


DEFAULT_OPTIONS = TranslateOptions()
