"""Centralized sampling rules: the records ``GetSamplingRules`` returns and their live state.

A rule's *definition* comes from ``GetSamplingRules`` and is replaced on every refresh; its
*state* (this second's reservoir use, the quota from ``SamplingTargets``, the statistics not yet
reported) is kept per rule name across refreshes, so a refresh never loses a count or a quota.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

from otel_xray import fork as _fork
from otel_xray.sampling.matching import (
    SERVICE_TYPES,
    HttpRequest,
    Matcher,
    compile_http_matcher,
    compile_wildcard,
)
from otel_xray.wire import SamplingRule

DEFAULT_INTERVAL = 10.0

# Resource attributes that carry the ARN a rule's ResourceARN is matched against, best first.
_ARN_KEYS = ("cloud.resource_id", "aws.ecs.task.arn", "aws.ecs.container.arn", "faas.id")


class ResourceFacts(NamedTuple):
    """What the process is, for a rule's ServiceName, ServiceType and ResourceARN."""

    service_name: str | None
    service_type: str | None
    arn: str | None

    @classmethod
    def from_resource(cls, resource: Resource) -> ResourceFacts:
        attributes = resource.attributes
        name = attributes.get("service.name")
        platform = attributes.get("cloud.platform")
        arn = next(
            (v for v in (attributes.get(k) for k in _ARN_KEYS) if isinstance(v, str) and v), None
        )
        service_type = SERVICE_TYPES.get(platform) if isinstance(platform, str) else None
        return cls(
            service_name=name.lower() if isinstance(name, str) and name else None,
            service_type=service_type.lower() if service_type else None,
            arn=arn.lower() if arn else None,
        )


def _accepts(matcher: Matcher, value: str | None) -> bool:
    return matcher is None or value is None or matcher(value)


class Counts(NamedTuple):
    requests: int
    sampled: int
    borrowed: int


def _count_of(counter: itertools.count[int]) -> int:
    """How many values an ``itertools.count()`` produced, read without advancing it.

    ``next()`` on a count is one C call, atomic under the GIL, so decisions count without a
    lock; the count's repr is the only way to read it (``count(N)``).
    """
    return int(repr(counter)[6:-1])


class RuleState:
    """Reservoir, quota and statistics of one rule name in this process; thread-safe.

    This runs for every root span the rule matches, so the common path takes no lock: counters
    are ``itertools.count`` objects (reported as deltas since the last report), and the
    reservoir lock is taken only until this second's quota or borrow is used up.
    """

    def __init__(self, rule: SamplingRule, now: float) -> None:
        self._lock = threading.Lock()
        self._requests = itertools.count()
        self._sampled = itertools.count()
        self._borrowed = itertools.count()
        self._reported = Counts(0, 0, 0)
        self.quota: int | None = None
        self.quota_ttl: float | None = None
        self.target_rate: float | None = None
        self.interval = DEFAULT_INTERVAL
        self.last_report = now
        self._second = -1
        self._taken = 0
        self._full_second = -1
        self._borrowed_second = -1
        self._quota = 0
        self._quota_until = -math.inf
        self._rule_rate = rule.fixed_rate
        self._rate = rule.fixed_rate
        self._can_borrow = rule.reservoir_size > 0
        _fork.register(self)

    def set_rule(self, rule: SamplingRule) -> None:
        """A refreshed definition of the rule. An edited rate wins until a new target comes."""
        with self._lock:
            if rule.fixed_rate != self._rule_rate:
                self.target_rate = None
            self._rule_rate = rule.fixed_rate
            self._can_borrow = rule.reservoir_size > 0
            self._refresh_derived()

    def decide(self, now: float) -> bool:
        # Count order matters: request, then sampled, then borrowed; take_counts reads them in
        # reverse, so a report never shows a sample without its request.
        next(self._requests)
        if now <= self._quota_until:  # a fresh quota from SamplingTargets
            second = int(now)
            if second != self._full_second and self._take_quota(second):
                next(self._sampled)
                return True
        elif self._can_borrow:  # no quota (yet, or expired): one per second
            second = int(now)
            if second != self._borrowed_second and self._borrow(second):
                next(self._sampled)
                next(self._borrowed)
                return True
        rate = self._rate
        if rate > 0.0 and random.random() < rate:
            next(self._sampled)
            return True
        return False

    def _take_quota(self, second: int) -> bool:
        with self._lock:
            if second != self._second:
                self._second = second
                self._taken = 0
            if self._taken < self._quota:
                self._taken += 1
                return True
            self._full_second = second
            return False

    def _borrow(self, second: int) -> bool:
        with self._lock:
            if second == self._borrowed_second:
                return False
            self._borrowed_second = second
            return True

    def _totals(self) -> Counts:
        borrowed = _count_of(self._borrowed)
        sampled = _count_of(self._sampled)
        return Counts(_count_of(self._requests), sampled, borrowed)

    @property
    def pending_requests(self) -> int:
        """Requests decided since the last report."""
        return _count_of(self._requests) - self._reported.requests

    def take_counts(self, now: float) -> Counts:
        """The statistics since the last report (one report's worth)."""
        with self._lock:
            totals = self._totals()
            previous, self._reported = self._reported, totals
            self.last_report = now
        return Counts(*(total - before for total, before in zip(totals, previous, strict=False)))

    def return_counts(self, counts: Counts) -> None:
        """Give back counts whose report failed, so the next report includes them."""
        with self._lock:
            self._reported = Counts(
                *(reported - count for reported, count in zip(self._reported, counts, strict=False))
            )

    def apply_target(self, target: Mapping[str, Any]) -> None:
        """Apply a ``SamplingTargetDocuments`` entry; absent fields keep their value."""
        rate = _number_or_none(target.get("FixedRate"))
        quota = _number_or_none(target.get("ReservoirQuota"))
        ttl = _number_or_none(target.get("ReservoirQuotaTTL"))
        interval = _number_or_none(target.get("Interval"))
        with self._lock:
            if rate is not None and 0 <= rate <= 1:
                self.target_rate = rate
            if quota is not None and quota >= 0:
                self.quota = int(quota)
            if ttl is not None:
                self.quota_ttl = ttl
            if interval is not None and interval > 0:
                self.interval = interval
            self._refresh_derived()

    def _refresh_derived(self) -> None:
        self._rate = self._rule_rate if self.target_rate is None else self.target_rate
        self._quota = self.quota or 0
        self._full_second = -1
        if self.quota is not None and self.quota_ttl is not None:
            self._quota_until = self.quota_ttl
        else:
            self._quota_until = -math.inf

    def _after_fork_in_child(self) -> None:
        # The parent reports what it counted; the child starts from zero with its own client id.
        # Quotas were granted to the parent's client id; borrow until the child gets its own.
        # Borrowing is one per second per client, and the child is a new client: a borrow the
        # parent made this second is not the child's (keeping it made the child's first
        # decision in that second unsampled, depending on when the parent had decided).
        self._lock = threading.Lock()
        self._reported = self._totals()
        self.quota = self.quota_ttl = None
        self._borrowed_second = -1
        self._second = -1
        self._taken = 0
        self._refresh_derived()


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class ActiveRule:
    """A rule that applies to this process, compiled for matching, bound to its state."""

    __slots__ = ("rule", "state", "http_matches", "attributes")

    def __init__(self, rule: SamplingRule, state: RuleState) -> None:
        self.rule = rule
        self.state = state
        self.http_matches = compile_http_matcher(rule.host, rule.http_method, rule.url_path)
        self.attributes = tuple((key, compile_wildcard(value)) for key, value in rule.attributes)

    @property
    def is_catch_all(self) -> bool:
        """Matches every span of this process (all HTTP patterns ``*``, no attributes)."""
        rule = self.rule
        return not self.attributes and rule.host == rule.http_method == rule.url_path == "*"

    def matches(self, request: HttpRequest | None, attributes: Attributes) -> bool:
        return self.http_matches(request) and (
            not self.attributes or self.attributes_match(attributes)
        )

    def attributes_match(self, attributes: Attributes) -> bool:
        """Every rule attribute must be on the span at start, its value matching the pattern."""
        for key, matcher in self.attributes:
            value = attributes.get(key) if attributes else None
            if value is None:
                return False
            if matcher is not None and not matcher(str(value).lower()):
                return False
        return True

    def decide(self, now: float) -> bool:
        return self.state.decide(now)


def applies_to(rule: SamplingRule, facts: ResourceFacts) -> bool:
    """Whether a rule can ever match in this process (service name/type, resource ARN).

    These depend only on the resource, so they are checked once per refresh, not per span. A
    missing service name or type matches, as in the X-Ray SDK for Python; a rule for a specific
    ResourceARN needs a resource that has that ARN.
    """
    if not _accepts(compile_wildcard(rule.service_name), facts.service_name):
        return False
    if not _accepts(compile_wildcard(rule.service_type), facts.service_type):
        return False
    arn_matcher = compile_wildcard(rule.resource_arn)
    return arn_matcher is None or (facts.arn is not None and arn_matcher(facts.arn))
