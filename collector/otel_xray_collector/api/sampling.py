"""The centralized sampling API (``GetSamplingRules`` / ``GetSamplingTargets``), answered locally.

SDKs poll the daemon's TCP port for rules and quotas. The real daemon proxies those calls to
AWS; here they are answered from a local rules file, so remote samplers (the X-Ray SDKs, the
OpenTelemetry X-Ray remote sampler, ours) work unchanged on a laptop or in CI. The local file is
the X-Ray SDKs' format, turned into the centralized rules the API serves: one file drives both
local and remote sampling.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_xray_collector.api.errors import ApiError, invalid_request

from otel_xray.sampling.rules import DEFAULT_RULES, LocalRule, LocalRules, load_rules

logger = logging.getLogger("otel_xray_collector.api.sampling")

DEFAULT_RULE_NAME = "Default"
DEFAULT_RULE_PRIORITY = 10000
MAX_RULE_NAME = 32
#: Seconds between two statistics reports (what X-Ray answers; SDKs poll every 10 s anyway).
TARGET_INTERVAL = 10
#: A quota stays valid this long (the X-Ray docs' example is about five minutes ahead). Clients
#: refresh theirs every ``TARGET_INTERVAL``, so this only matters when the collector goes away.
QUOTA_TTL = 300.0
#: A client counts as active for a rule while its last report is this recent. One interval plus
#: half of one: reports drift by the SDKs' jitter and a strict window would drop clients at random.
ACTIVE_WINDOW = 1.5 * TARGET_INTERVAL
#: Bound on clients remembered per rule, against callers that invent a ClientID per request.
MAX_CLIENTS_PER_RULE = 10000
#: The rules file is checked for changes at most this often (seconds).
RELOAD_CHECK_INTERVAL = 1.0
ACCOUNT_ID = "000000000000"
ARN_REGION = "local"

CLIENT_ID_LENGTH = 24
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class CentralRule:
    """One rule as X-Ray's centralized sampling API describes it."""

    name: str
    priority: int
    fixed_rate: float
    reservoir_size: int
    host: str = "*"
    http_method: str = "*"
    url_path: str = "*"
    service_name: str = "*"
    service_type: str = "*"

    def sampling_rule(self) -> dict[str, Any]:
        # Version 1, ResourceARN "*", a non-empty ServiceType and empty Attributes: the X-Ray
        # SDKs silently ignore rules without them.
        return {
            "RuleName": self.name,
            "RuleARN": f"arn:aws:xray:{ARN_REGION}:{ACCOUNT_ID}:sampling-rule/{self.name}",
            "ResourceARN": "*",
            "Priority": self.priority,
            "FixedRate": self.fixed_rate,
            "ReservoirSize": self.reservoir_size,
            "ServiceName": self.service_name,
            "ServiceType": self.service_type,
            "Host": self.host,
            "HTTPMethod": self.http_method,
            "URLPath": self.url_path,
            "Version": 1,
            "Attributes": {},
        }


def rule_name(description: str, taken: Iterable[str], fallback: str) -> str:
    """A RuleName from a free-text description: ≤ 32 of ``[A-Za-z0-9_-]``, unique, not Default."""
    base = _NAME_UNSAFE.sub("-", description).strip("-")[:MAX_RULE_NAME] or fallback
    used = {name.lower() for name in taken} | {DEFAULT_RULE_NAME.lower()}
    candidate, number = base, 1
    while candidate.lower() in used:
        number += 1
        suffix = f"-{number}"
        candidate = base[: MAX_RULE_NAME - len(suffix)] + suffix
    return candidate


def centralized_rules(local: LocalRules) -> list[CentralRule]:
    """Local rules in file order as priorities 1, 2, ...; the default rule becomes ``Default``.

    ``fixed_target`` becomes ``ReservoirSize``: per process in a local file, shared by every
    client here, which is what the same number means to X-Ray's centralized sampling.
    """
    rules: list[CentralRule] = []
    for index, local_rule in enumerate(local.rules[: DEFAULT_RULE_PRIORITY - 1]):
        name = rule_name(local_rule.description, (r.name for r in rules), f"rule-{index + 1}")
        rules.append(_central(local_rule, name, index + 1))
    rules.append(_central(local.default, DEFAULT_RULE_NAME, DEFAULT_RULE_PRIORITY))
    return rules


def _central(rule: LocalRule, name: str, priority: int) -> CentralRule:
    return CentralRule(
        name=name,
        priority=priority,
        fixed_rate=float(rule.rate),
        reservoir_size=int(rule.fixed_target),
        host=rule.host,
        http_method=rule.http_method,
        url_path=rule.url_path,
    )


@dataclass
class _RuleState:
    rule: CentralRule
    clients: dict[str, float]  # ClientID -> time of its last report
    request_count: int = 0
    sampled_count: int = 0
    borrow_count: int = 0


class SamplingService:
    """Serves sampling rules from ``rules_source`` (a local rules file) and computes quotas.

    Without a file it serves X-Ray's default rule (one trace per second, then 5 %). When the
    source is a file path it is re-read when its modification time changes, and the new rules get
    a newer ``ModifiedAt``/``LastRuleModification`` so the SDKs refetch them at their next report.
    A file that stops parsing keeps the previous rules (logged), so a half-saved edit cannot
    switch sampling off.
    """

    def __init__(
        self, rules_source: str | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._source = rules_source
        self._clock = clock
        self._lock = threading.Lock()
        self._path = (
            rules_source if rules_source is not None and os.path.isfile(rules_source) else None
        )
        self._mtime = self._file_mtime()
        self._next_reload_check = 0.0
        local = load_rules(rules_source) if rules_source is not None else DEFAULT_RULES
        self._created_at = self._clock()
        self._modified_at = self._created_at
        self._states = {rule.name: _RuleState(rule, {}) for rule in centralized_rules(local)}

    # --- operations -------------------------------------------------------------------------

    def get_sampling_rules(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /GetSamplingRules``: every rule on one page (SDKs never follow NextToken)."""
        _require_object(body)
        token = body.get("NextToken")
        if token is not None:
            if not isinstance(token, str):
                raise invalid_request("NextToken must be a string")
            raise invalid_request("NextToken is not valid: every rule fits on one page")
        self._reload_if_changed()
        with self._lock:
            records = [
                {
                    "SamplingRule": state.rule.sampling_rule(),
                    "CreatedAt": self._created_at,
                    "ModifiedAt": self._modified_at,
                }
                for state in self._states.values()
            ]
        return {"SamplingRuleRecords": records}

    def sampling_targets(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /SamplingTargets``: record the reports, answer each rule's reservoir share."""
        _require_object(body)
        reports = _statistics_documents(body)
        _boost_documents(body)
        self._reload_if_changed()
        now = self._clock()
        targets: dict[str, dict[str, Any]] = {}
        unprocessed: list[dict[str, str]] = []
        with self._lock:
            for report in reports:
                state = self._states.get(report["RuleName"])
                if state is None:
                    unprocessed.append(
                        {
                            "RuleName": report["RuleName"],
                            "ErrorCode": "UnknownRule",
                            "Message": f"no sampling rule named {report['RuleName']!r}",
                        }
                    )
                    continue
                self._record(state, report, now)
            for report in reports:
                state = self._states.get(report["RuleName"])
                if state is not None and state.rule.name not in targets:
                    targets[state.rule.name] = self._target(state, report["ClientID"], now)
            last_modification = self._modified_at
        return {
            "SamplingTargetDocuments": list(targets.values()),
            "LastRuleModification": last_modification,
            "UnprocessedStatistics": unprocessed,
        }

    def statistics(self) -> dict[str, dict[str, int]]:
        """Totals reported per rule since the collector started (for the console and tests)."""
        with self._lock:
            return {
                name: {
                    "RequestCount": state.request_count,
                    "SampledCount": state.sampled_count,
                    "BorrowCount": state.borrow_count,
                    "ActiveClients": len(state.clients),
                }
                for name, state in self._states.items()
            }

    # --- internals --------------------------------------------------------------------------

    def _record(self, state: _RuleState, report: Mapping[str, Any], now: float) -> None:
        state.request_count += report["RequestCount"]
        state.sampled_count += report["SampledCount"]
        state.borrow_count += report.get("BorrowCount", 0)
        clients = state.clients
        clients.pop(report["ClientID"], None)  # re-insert: dict order = least recent first
        clients[report["ClientID"]] = now
        for client, seen in list(clients.items()):
            if now - seen <= ACTIVE_WINDOW and len(clients) <= MAX_CLIENTS_PER_RULE:
                break
            del clients[client]

    def _target(self, state: _RuleState, client_id: str, now: float) -> dict[str, Any]:
        """This client's whole-number share of the rule's reservoir.

        Every active client gets ``size // n``; the ``size % n`` left over go to clients in turn,
        rotating each interval, so the shares always add up to the rule's ReservoirSize and over
        time every client gets its part even when there are more clients than traces per second.
        """
        active = sorted(c for c, seen in state.clients.items() if now - seen <= ACTIVE_WINDOW)
        size = state.rule.reservoir_size
        share, extra = divmod(size, len(active))
        position = (active.index(client_id) - int(now // TARGET_INTERVAL)) % len(active)
        return {
            "RuleName": state.rule.name,
            "FixedRate": state.rule.fixed_rate,
            "ReservoirQuota": share + (1 if position < extra else 0),
            "ReservoirQuotaTTL": math.floor(now) + QUOTA_TTL,
            "Interval": TARGET_INTERVAL,
        }

    def _file_mtime(self) -> float | None:
        if self._path is None:
            return None
        try:
            return os.stat(self._path).st_mtime
        except OSError:
            return None

    def _reload_if_changed(self) -> None:
        if self._path is None:
            return
        now = self._clock()
        with self._lock:
            if now < self._next_reload_check:
                return
            self._next_reload_check = now + RELOAD_CHECK_INTERVAL
            mtime = self._file_mtime()
            if mtime is None or mtime == self._mtime:
                return
            self._mtime = mtime
        try:
            local = load_rules(self._path)
        except ValueError as exc:
            logger.error("sampling rules not reloaded, keeping the previous ones: %s", exc)
            return
        with self._lock:
            old = self._states
            self._states = {}
            for rule in centralized_rules(local):
                previous = old.get(rule.name)
                # Keep who is active and the totals of rules that survive the edit.
                self._states[rule.name] = (
                    _RuleState(
                        rule,
                        previous.clients,
                        previous.request_count,
                        previous.sampled_count,
                        previous.borrow_count,
                    )
                    if previous is not None
                    else _RuleState(rule, {})
                )
            self._modified_at = max(now, self._modified_at + 0.001)
        logger.info("sampling rules reloaded from %s: %d rules", self._path, len(self._states))


# --- request validation ---------------------------------------------------------------------


def _require_object(body: Any) -> None:
    if not isinstance(body, Mapping):
        raise invalid_request("the request body must be a JSON object")


def _statistics_documents(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    documents = body.get("SamplingStatisticsDocuments")
    if documents is None:
        raise invalid_request("SamplingStatisticsDocuments is required")
    if not isinstance(documents, list):
        raise invalid_request("SamplingStatisticsDocuments must be a list")
    return [_statistics_document(doc, index) for index, doc in enumerate(documents)]


def _statistics_document(doc: Any, index: int) -> dict[str, Any]:
    where = f"SamplingStatisticsDocuments[{index}]"
    if not isinstance(doc, Mapping):
        raise invalid_request(f"{where} must be an object")
    name = doc.get("RuleName")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_RULE_NAME:
        raise invalid_request(
            f"{where}.RuleName must be a string of 1 to {MAX_RULE_NAME} characters"
        )
    client = doc.get("ClientID")
    if not isinstance(client, str) or len(client) != CLIENT_ID_LENGTH:
        raise invalid_request(f"{where}.ClientID must be a string of {CLIENT_ID_LENGTH} characters")
    if "Timestamp" not in doc:
        raise invalid_request(f"{where}.Timestamp is required")
    parsed = {
        "RuleName": name,
        "ClientID": client,
        "Timestamp": parse_timestamp(doc["Timestamp"], f"{where}.Timestamp"),
    }
    for field in ("RequestCount", "SampledCount", "BorrowCount"):
        if field not in doc:
            if field == "BorrowCount":
                continue
            raise invalid_request(f"{where}.{field} is required")
        parsed[field] = _count(doc[field], f"{where}.{field}")
    return parsed


def _boost_documents(body: Mapping[str, Any]) -> None:
    """Boost statistics (a newer API field) are accepted and ignored: no boost is ever granted."""
    boosts = body.get("SamplingBoostStatisticsDocuments")
    if boosts is None:
        return
    if not isinstance(boosts, list) or not all(isinstance(doc, Mapping) for doc in boosts):
        raise invalid_request("SamplingBoostStatisticsDocuments must be a list of objects")


def _count(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_request(f"{where} must be a non-negative integer")
    return int(value)


def parse_timestamp(value: Any, where: str = "Timestamp") -> float:
    """Epoch seconds from what SDKs send: a number (seconds, or milliseconds from Java's mapper),
    a numeric string, or ISO-8601 text."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            seconds = _iso_seconds(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise invalid_request(f"{where} must be epoch seconds or an ISO-8601 time")
    return seconds / 1000.0 if seconds > 1e11 else seconds


def _iso_seconds(text: str) -> float | None:
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


__all__ = [
    "ApiError",
    "CentralRule",
    "SamplingService",
    "centralized_rules",
    "parse_timestamp",
    "rule_name",
]
