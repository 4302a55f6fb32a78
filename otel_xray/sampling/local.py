"""``XRayLocalSampler``: X-Ray sampling rules from a file, decided in-process."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_xray.sampling.matching import (
    HttpRequest,
    compile_http_matcher,
    request_from_attributes,
)
from otel_xray.sampling.reservoir import Clock, Reservoir
from otel_xray.sampling.rules import DEFAULT_RULES, LocalRule, LocalRules, RulesSource, load_rules

_DROP = SamplingResult(Decision.DROP)


class _CompiledRule:
    """A rule with its matchers compiled and its own reservoir."""

    __slots__ = ("rule", "matches", "reservoir", "rate")

    def __init__(self, rule: LocalRule) -> None:
        self.rule = rule
        self.matches = compile_http_matcher(rule.host, rule.http_method, rule.url_path)
        self.reservoir = Reservoir(rule.fixed_target)
        self.rate = rule.rate

    def sample(self, now: float) -> bool:
        return self.reservoir.take(now) or (self.rate > 0.0 and random.random() < self.rate)


class XRayLocalSampler(Sampler):
    """Samples root spans by X-Ray local sampling rules (file format version 1 or 2).

    ``rules`` is a path, a JSON string, a dict or a loaded :class:`LocalRules`; ``None`` means the
    X-Ray SDKs' built-in rules (one trace per second, then 5 %). A malformed source raises
    ``ValueError`` naming the file, rule and field. The first rule whose host, method and path
    match the span's HTTP attributes at start decides; otherwise ``default``. Wrap it in
    ``XRayParentBased`` (the ``awsxray_local`` entry point does) so children follow their parent.
    """

    def __init__(self, rules: RulesSource | None = None, *, clock: Clock | None = None):
        self._rules = DEFAULT_RULES if rules is None else load_rules(rules)
        self._compiled = [_CompiledRule(rule) for rule in self._rules.rules]
        self._default = _CompiledRule(self._rules.default)
        self._clock: Clock = clock or time.time

    @property
    def rules(self) -> LocalRules:
        return self._rules

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
        rule = self._default
        if self._compiled:  # with only a default rule, the attributes do not matter
            request = request_from_attributes(attributes)
            for candidate in self._compiled:
                if candidate.matches(request):
                    rule = candidate
                    break
        if rule.reservoir.take(self._clock()) or (rule.rate > 0.0 and random.random() < rule.rate):
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, attributes, parent_trace_state(parent_context)
            )
        parent_state = parent_trace_state(parent_context)
        return _DROP if parent_state is None else SamplingResult(Decision.DROP, None, parent_state)

    def sample_request(self, request: HttpRequest | None, now: float) -> bool:
        """The decision for a request's HTTP facts (``None``: a non-HTTP span) at time ``now``."""
        for rule in self._compiled:
            if rule.matches(request):
                return rule.sample(now)
        return self._default.sample(now)

    def get_description(self) -> str:
        return f"XRayLocalSampler{{{self._rules.source}}}"


def parent_trace_state(parent_context: Context | None) -> TraceState | None:
    """The parent's trace state, kept on the new span as the SDK's own samplers do.

    ``None`` means "the current context", as in ``Tracer.start_span``.
    """
    span_context = get_current_span(parent_context).get_span_context()
    return span_context.trace_state if span_context.is_valid else None
