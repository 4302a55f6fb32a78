"""``XRayParentBased``: follow the parent's decision, unless the parent asked us to decide.

An ``X-Amzn-Trace-Id`` with ``Sampled=?`` (or no ``Sampled``; what an ALB sends) means "the
callee decides". ``XRayPropagator`` marks such a parent as deferred and flags it sampled, so a
plain ``ParentBased`` would record every such request. This one sends a deferred parent to the
root sampler, so the X-Ray rules decide, as the X-Ray SDK middleware does.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_xray.propagator import is_sampling_deferred


class XRayParentBased(ParentBased):
    """``ParentBased`` that lets ``root`` decide for parents whose header said ``Sampled=?``."""

    def __init__(
        self,
        root: Sampler,
        remote_parent_sampled: Sampler = ALWAYS_ON,
        remote_parent_not_sampled: Sampler = ALWAYS_OFF,
        local_parent_sampled: Sampler = ALWAYS_ON,
        local_parent_not_sampled: Sampler = ALWAYS_OFF,
    ) -> None:
        super().__init__(
            root,
            remote_parent_sampled,
            remote_parent_not_sampled,
            local_parent_sampled,
            local_parent_not_sampled,
        )
        # Our own references: the base class keeps its delegates in private attributes.
        self.root = root
        self._delegates = (
            remote_parent_sampled,
            remote_parent_not_sampled,
            local_parent_sampled,
            local_parent_not_sampled,
        )

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        sampler = self.root
        if parent.is_valid:
            sampled = parent.trace_flags.sampled
            if not parent.is_remote:
                sampler = self._delegates[2] if sampled else self._delegates[3]
            elif not sampled:
                sampler = self._delegates[1]
            elif not is_sampling_deferred(parent):
                sampler = self._delegates[0]
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def shutdown(self) -> None:
        """Stop what the samplers it delegates to run (the centralized sampler's poller)."""
        for sampler in (self.root, *self._delegates):
            stop = getattr(sampler, "shutdown", None)
            if callable(stop):
                stop()

    def get_description(self) -> str:
        names = (
            "remoteParentSampled",
            "remoteParentNotSampled",
            "localParentSampled",
            "localParentNotSampled",
        )
        delegates = ",".join(
            f"{name}:{sampler.get_description()}"
            for name, sampler in zip(names, self._delegates, strict=False)
        )
        return f"XRayParentBased{{root:{self.root.get_description()},{delegates}}}"
