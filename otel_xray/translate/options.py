"""Options that change how spans become segment documents."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

TRACING_NAME_ENV = "AWS_XRAY_TRACING_NAME"


@dataclass(frozen=True)
class TranslateOptions:
    """Immutable, built once per exporter so the per-span path reads plain attributes.

    ``indexed_attributes``: attribute names (span keys, or ``otel.resource.<key>`` for resource
    keys) that become annotations. ``index_all_attributes``: every scalar attribute becomes an
    annotation. ``tracing_name``: the segment name override (``AWS_XRAY_TRACING_NAME``).
    ``log_group_names``: fallback ``aws.cloudwatch_logs`` entries. ``allow_dot``: keep ``.`` in
    annotation keys (the Collector's default).
    """

    indexed_attributes: frozenset[str] = frozenset()
    index_all_attributes: bool = False
    tracing_name: Optional[str] = None
    log_group_names: tuple[str, ...] = ()
    allow_dot: bool = True

    @classmethod
    def build(
        cls,
        indexed_attributes: Optional[Iterable[str]] = None,
        index_all_attributes: bool = False,
        tracing_name: Optional[str] = None,
        log_group_names: Optional[Iterable[str]] = None,
        allow_dot: bool = True,
        environ: Optional[Mapping[str, str]] = None,
    ) -> TranslateOptions:
        env = os.environ if environ is None else environ
        name = tracing_name if tracing_name is not None else env.get(TRACING_NAME_ENV) or None
        return cls(
            indexed_attributes=frozenset(indexed_attributes or ()),
            index_all_attributes=index_all_attributes,
            tracing_name=name,
            log_group_names=tuple(log_group_names or ()),
            allow_dot=allow_dot,
        )


DEFAULT_OPTIONS = TranslateOptions()
