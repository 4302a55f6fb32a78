"""``XRayRemoteSampler``: centralized X-Ray sampling rules, fetched through the daemon.

Rules come from ``POST /GetSamplingRules`` (every ``poll_interval`` seconds plus jitter) and
per-rule quotas from ``POST /SamplingTargets`` (every ``target_interval`` seconds, which also
reports this process's statistics). Until rules arrive, when none apply, or once the last
successful fetch is older than ``rules_ttl``, decisions fall back to local rules. Nothing here
raises into the application: network and parse problems are logged once per outage.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_xray import config
from otel_xray import fork as _fork
from otel_xray.attributes import SAMPLING_RULE_ATTRIBUTE
from otel_xray.logs import RateLimitedLog
from otel_xray.sampling.client import SamplingApiClient, SamplingApiError
from otel_xray.sampling.local import XRayLocalSampler, parent_trace_state
from otel_xray.sampling.matching import request_from_attributes
from otel_xray.sampling.remote_rules import (
    ActiveRule,
    ResourceFacts,
    RuleState,
    applies_to,
)
from otel_xray.sampling.reservoir import Clock
from otel_xray.sampling.rules import RulesSource
from otel_xray.wire import DEFAULT_RULE_NAME, SamplingRule

_logger = logging.getLogger("otel_xray.sampling")

#: ``SamplingTargets`` accepts at most this many statistics documents per call.
MAX_STATISTICS_PER_CALL = 25
_DROP = SamplingResult(Decision.DROP)


class XRayRemoteSampler(Sampler):
    """Samples root spans by the account's centralized sampling rules (via the X-Ray daemon).

    ``resource`` supplies the service name and type (``cloud.platform``) rules match; ``None``
    uses the global tracer provider's resource. ``fallback_rules`` are the local rules used while
    centralized rules are unavailable (default: one trace per second plus 5 %).
    ``daemon_address`` overrides ``AWS_XRAY_DAEMON_ADDRESS`` (read from ``environ``, default
    ``os.environ``). The poller thread starts on the
    first decision (``autostart=False`` leaves polling to :meth:`poll_now`). Wrap in
    ``XRayParentBased`` (the ``awsxray_remote`` entry point does) so children follow their parent.
    """

    def __init__(
        self,
        resource: Resource | None = None,
        fallback_rules: RulesSource | None = None,
        daemon_address: str | None = None,
        *,
        poll_interval: float = 300.0,
        target_interval: float = 10.0,
        clock: Clock | None = None,
        rules_ttl: float = 3600.0,
        timeout: float = 2.0,
        autostart: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._clock: Clock = clock or time.time
        self._fallback = XRayLocalSampler(fallback_rules, clock=self._clock)
        self._address = config.daemon_address(daemon_address, environ)
        self._client = SamplingApiClient(self._address.sampling_url, timeout=timeout)
        self._resource = resource
        self._poll_interval = poll_interval
        self._target_interval = target_interval
        self._rules_ttl = rules_ttl
        self._autostart = autostart
        # Read without a lock on every decision, replaced whole by a refresh.
        self._active: tuple[tuple[ActiveRule, ...], ActiveRule | None] = ((), None)
        self._expires_at = -math.inf
        self._states: dict[str, RuleState] = {}
        self._fetched_at: float | None = None
        self._rules_stale = False
        self._daemon_ok: bool | None = None
        self._problem_log = RateLimitedLog(_logger, math.inf)  # each problem said once
        self._started = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._init_process_state()
        _fork.register(self)

    def _init_process_state(self) -> None:
        """What a process must not share with its parent: locks, events, thread, client id."""
        self.client_id = os.urandom(12).hex()
        self._poll_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        loaded = getattr(self, "_rules_loaded", None)
        self._rules_loaded = threading.Event()
        if loaded is not None and loaded.is_set():
            self._rules_loaded.set()

    # -- decisions ---------------------------------------------------------------------------

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self._started:
            self._start()
        now = self._clock()
        request = request_from_attributes(attributes)
        if now < self._expires_at:
            rules, default = self._active
            matched = default
            for rule in rules:  # ActiveRule.matches, inlined: this loop runs for every root span
                if rule.http_matches(request) and (
                    not rule.attributes or rule.attributes_match(attributes)
                ):
                    matched = rule
                    break
            if matched is not None:
                if matched.state.decide(now):
                    tagged = dict(attributes) if attributes else {}
                    tagged[SAMPLING_RULE_ATTRIBUTE] = matched.rule.name
                    return SamplingResult(
                        Decision.RECORD_AND_SAMPLE, tagged, parent_trace_state(parent_context)
                    )
                state = parent_trace_state(parent_context)
                return _DROP if state is None else SamplingResult(Decision.DROP, None, state)
        if self._fallback.sample_request(request, now):
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, attributes, parent_trace_state(parent_context)
            )
        state = parent_trace_state(parent_context)
        return _DROP if state is None else SamplingResult(Decision.DROP, None, state)

    def get_description(self) -> str:
        fallback = self._fallback.rules.source
        return f"XRayRemoteSampler{{{self._address.sampling_url}, fallback={fallback}}}"

    # -- polling -----------------------------------------------------------------------------

    def refresh_rules(self) -> bool:
        """Fetch the rules now; ``False`` (logged) when the daemon did not give usable ones."""
        with self._poll_lock:
            try:
                records = self._client.get_sampling_rules()
            except SamplingApiError as exc:
                self._note_outage(exc)
                return False
            except Exception as exc:  # a bug must not end polling or reach the app
                self._note_outage(exc)
                return False
            rules: list[SamplingRule] = []
            for record in records:
                try:
                    rules.append(SamplingRule.parse(record))
                except ValueError as exc:
                    self._report_problem(f"ignoring a sampling rule: {exc}")
            self._note_recovery()
            self._install(rules, self._clock())
            return True

    def report_statistics(self) -> bool:
        """Report statistics of rules due for a report and apply the targets returned.

        ``True`` when there was nothing to report or the report succeeded. If the answer says
        rules changed since the last fetch (``LastRuleModification``), they are refetched now.
        """
        reported = self._report_statistics()
        if self._rules_stale:
            self._rules_stale = False
            self.refresh_rules()
        return reported

    def _report_statistics(self) -> bool:
        with self._poll_lock:
            now = self._clock()
            due = [
                (name, state)
                for name, state in self._states.items()
                if state.pending_requests > 0 and now - state.last_report + 1.0 >= state.interval
            ]
            pending = [(name, state, state.take_counts(now)) for name, state in due]
            for start in range(0, len(pending), MAX_STATISTICS_PER_CALL):
                chunk = pending[start : start + MAX_STATISTICS_PER_CALL]
                documents = [
                    {
                        "RuleName": name,
                        "ClientID": self.client_id,
                        "Timestamp": int(now),
                        "RequestCount": counts.requests,
                        "SampledCount": counts.sampled,
                        "BorrowCount": counts.borrowed,
                    }
                    for name, _, counts in chunk
                ]
                try:
                    response = self._client.get_sampling_targets(documents)
                except Exception as exc:
                    for _, state, counts in pending[start:]:
                        state.return_counts(counts)
                    self._note_outage(exc)
                    return False
                self._note_recovery()
                self._apply_targets(response)
            return True

    def poll_now(self) -> bool:
        """One full poll, synchronously: rules, then statistics and targets. For tests, tools,
        and apps that poll on their own schedule (``autostart=False``)."""
        rules_ok = self.refresh_rules()
        return self.report_statistics() and rules_ok

    def wait_for_rules(self, timeout: float | None = None) -> bool:
        """Block until centralized rules were loaded once (or ``timeout``); for startup code."""
        return self._rules_loaded.wait(timeout)

    def shutdown(self) -> None:
        """Stop the poller thread. Decisions keep working on the rules already fetched."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._client.timeout * 2 + 1)

    # -- internals ---------------------------------------------------------------------------

    def _install(self, rules: list[SamplingRule], now: float) -> None:
        rules.sort(key=lambda rule: (rule.priority, rule.name))
        facts = self._resource_facts()
        states: dict[str, RuleState] = {}
        for rule in rules:
            state = self._states.get(rule.name)
            if state is None:
                state = RuleState(rule, now)
            else:
                state.set_rule(rule)
            states[rule.name] = state
        active = tuple(ActiveRule(r, states[r.name]) for r in rules if applies_to(r, facts))
        default = next((r for r in active if r.rule.name == DEFAULT_RULE_NAME), None)
        if active and active[-1] is default and default.is_catch_all:
            active = active[:-1]  # reached anyway when nothing else matches: skip testing it
        self._states = states
        self._active = (active, default)
        self._fetched_at = now
        self._expires_at = now + self._rules_ttl
        self._rules_stale = False
        self._rules_loaded.set()

    def _apply_targets(self, response: dict[str, Any]) -> None:
        for target in response.get("SamplingTargetDocuments") or []:
            if isinstance(target, dict):
                state = self._states.get(target.get("RuleName", ""))
                if state is not None:
                    state.apply_target(target)
        modified = response.get("LastRuleModification")
        if (
            isinstance(modified, (int, float))
            and self._fetched_at is not None
            and modified > self._fetched_at
        ):
            self._rules_stale = True

    def _resource_facts(self) -> ResourceFacts:
        resource = self._resource
        if resource is None:
            provider_resource = getattr(trace.get_tracer_provider(), "resource", None)
            if isinstance(provider_resource, Resource):
                resource = provider_resource
            else:  # no SDK provider installed (yet): what the environment says
                resource = OTELResourceDetector().detect()
        return ResourceFacts.from_resource(resource)

    def _note_outage(self, exc: BaseException) -> None:
        if self._daemon_ok is not False:
            self._daemon_ok = False
            _logger.warning(
                "X-Ray sampling rules unavailable from %s (%s); using %s until it answers",
                self._address.sampling_url,
                exc,
                "the last rules fetched" if self._fetched_at is not None else "local rules",
            )

    def _note_recovery(self) -> None:
        if self._daemon_ok is False:
            _logger.info("X-Ray sampling rules available again from %s", self._address.sampling_url)
        self._daemon_ok = True

    def _report_problem(self, message: str) -> None:
        self._problem_log.warning("%s", message, key=message)

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
            if not self._autostart or self._stopping:
                return
            thread = threading.Thread(
                target=self._run, name="otel-xray-sampling-poller", daemon=True
            )
            try:
                thread.start()
            except RuntimeError as exc:  # interpreter shutting down, or no threads left
                _logger.warning("X-Ray sampling poller not started (%s); using local rules", exc)
                return
            self._thread = thread

    def _run(self) -> None:
        token = _suppress_instrumentation()
        try:
            next_rules = time.monotonic()
            next_targets = next_rules + self._target_interval + random.uniform(0, 0.1)
            while not self._stopping:
                now = time.monotonic()
                if now >= next_rules:
                    self.refresh_rules()
                    next_rules = time.monotonic() + self._poll_interval + random.uniform(0, 5)
                if now >= next_targets:
                    self.report_statistics()
                    next_targets = time.monotonic() + self._target_interval + random.uniform(0, 0.1)
                self._wake.wait(max(0.0, min(next_rules, next_targets) - time.monotonic()))
                self._wake.clear()
        except Exception:
            _logger.exception("X-Ray sampling poller stopped; decisions use the rules it had")
        finally:
            if token is not None:
                otel_context.detach(token)

    def _after_fork_in_child(self) -> None:
        # The child's poller starts lazily on its first decision, under a new client id.
        self._init_process_state()
        self._thread = None
        self._started = False


def _suppress_instrumentation() -> Token[otel_context.Context] | None:
    """Keep instrumented HTTP clients (urllib, http.client) from tracing the poller's calls."""
    key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    if key is None:
        return None
    return otel_context.attach(otel_context.set_value(key, True))
