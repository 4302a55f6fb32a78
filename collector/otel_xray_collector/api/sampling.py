"""The centralized sampling API (``GetSamplingRules`` / ``GetSamplingTargets``), answered locally.

SDKs poll the daemon's TCP port for rules and quotas. The real daemon proxies those calls to
AWS; here they are answered from a local rules file, so remote samplers (the X-Ray SDKs, the
OpenTelemetry X-Ray remote sampler, ours) work unchanged on a laptop or in CI. The local file is
the X-Ray SDKs' format, turned into the centralized rules the API serves: one file drives both
local and remote sampling.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from otel_xray.sampling.rules import DEFAULT_RULES, LocalRule, LocalRules, load_rules
from otel_xray.wire import DEFAULT_RULE_NAME, DEFAULT_RULE_PRIORITY, MAX_RULE_NAME, SamplingRule

from ..store.protocol import Resources
from ..store.resources import RULES, ChangeWatch, StoredRule
from .errors import ApiError, invalid_request
from .fields import MAX_INTEGER, Fields, parse_timestamp
from .rule_requests import (
    new_rule_record,
    rule_arn,
    rule_reference,
    updated_rule_record,
)

logger = logging.getLogger("otel_xray_collector.api.sampling")

#: X-Ray's quota of sampling rules per account, Default not counted.
MAX_RULES = 25
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
#: The store's rule change counter is read at most this often (seconds): a change made through
#: another collector sharing the database is served here within this delay.
STORE_CHECK_INTERVAL = 1.0

CLIENT_ID_LENGTH = 24
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


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


def centralized_rules(local: LocalRules) -> list[SamplingRule]:
    """Local rules in file order as priorities 1, 2, ...; the default rule becomes ``Default``.

    ``fixed_target`` becomes ``ReservoirSize``: per process in a local file, shared by every
    client here, which is what the same number means to X-Ray's centralized sampling.
    """
    rules: list[SamplingRule] = []
    for index, local_rule in enumerate(local.rules[: DEFAULT_RULE_PRIORITY - 1]):
        name = rule_name(local_rule.description, (r.name for r in rules), f"rule-{index + 1}")
        rules.append(_central(local_rule, name, index + 1))
    rules.append(_central(local.default, DEFAULT_RULE_NAME, DEFAULT_RULE_PRIORITY))
    return rules


def _central(rule: LocalRule, name: str, priority: int) -> SamplingRule:
    return SamplingRule(
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
    record: dict[str, Any]  # the X-Ray SamplingRule record served by GetSamplingRules
    origin: str  # "file", "api" or "builtin" (X-Ray's default rule, no file given)
    created_at: float
    modified_at: float
    clients: dict[str, float] = field(default_factory=dict)  # ClientID -> its last report time
    # ClientID -> (Timestamp, RequestCount, SampledCount, BorrowCount) of its last report
    last_reports: dict[str, tuple[float, int, int, int]] = field(default_factory=dict)
    request_count: int = 0
    sampled_count: int = 0
    borrow_count: int = 0

    def api_record(self) -> dict[str, Any]:
        return {
            "SamplingRule": dict(self.record),
            "CreatedAt": self.created_at,
            "ModifiedAt": self.modified_at,
        }

    def stored(self) -> StoredRule:
        return StoredRule(
            self.record["RuleName"], self.origin, self.created_at, self.modified_at, self.record
        )


class SamplingService:
    """Serves sampling rules, computes quotas, and manages rules through the API.

    Rules come from three places: the ``--sampling-rules`` file (``origin`` "file"), the API
    (CreateSamplingRule, "api") and X-Ray's default rule when no file names one ("builtin").
    With a ``store`` every rule is persisted, so API-created rules survive restarts. The file is
    the source of truth for the rules it names: at start and whenever it changes, its rules are
    (re)applied by name, replacing API edits of those rules, and rules that came from an earlier
    version of the file are removed; API-created rules are left alone. A file that stops parsing
    keeps the previous rules (logged), so a half-saved edit cannot switch sampling off.

    Every change moves ``LastRuleModification`` so SDK pollers refetch at their next report.
    A change made through another collector sharing the store is noticed by its change counter
    (read at most once per ``STORE_CHECK_INTERVAL`` on the way into each operation): the rules
    are re-read, statistics of the rules kept, and ``LastRuleModification`` moves here too.
    """

    def __init__(
        self,
        rules_source: str | None = None,
        clock: Callable[[], float] = time.time,
        store: Resources | None = None,
    ) -> None:
        self._clock = clock
        self._store = store
        self._lock = threading.Lock()
        self._path = (
            rules_source if rules_source is not None and os.path.isfile(rules_source) else None
        )
        self._mtime = self._file_mtime()
        self._next_reload_check = 0.0
        file_rules = (
            [r.record(rule_arn(r.name)) for r in centralized_rules(load_rules(rules_source))]
            if rules_source is not None
            else None
        )
        now = self._clock()
        self._modified_at = now
        self._states: dict[str, _RuleState] = {}
        self._watch: ChangeWatch | None = None
        if store is not None:  # the rules read below are those of this counter, or newer
            self._watch = ChangeWatch(store, RULES, clock, STORE_CHECK_INTERVAL)
            self._watch.seen(store.resource_version(RULES))
        for stored in store.sampling_rules() if store is not None else []:
            self._states[stored.name] = _RuleState(
                stored.record, stored.origin, stored.created_at, stored.modified_at
            )
        with self._lock:
            self._apply_file(file_rules, now)

    # --- operations -------------------------------------------------------------------------

    def get_sampling_rules(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /GetSamplingRules``: every rule on one page (SDKs never follow NextToken)."""
        _no_next_token(Fields(body), "every rule fits on one page")
        self._reload_if_changed()
        with self._lock:
            records = [state.api_record() for state in self._ordered()]
        return {"SamplingRuleRecords": records}

    def sampling_targets(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /SamplingTargets``: record the reports, answer each rule's reservoir share."""
        Fields(body)
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
                name = report["RuleName"]
                if state is not None and name not in targets:
                    targets[name] = self._target(state, report["ClientID"], now)
            # Whole seconds, rounded up: clients that truncate their last fetch time to a
            # second (the X-Ray SDKs) still see a change made later in that same second.
            last_modification = float(math.ceil(self._modified_at))
        return {
            "SamplingTargetDocuments": list(targets.values()),
            "LastRuleModification": last_modification,
            "UnprocessedStatistics": unprocessed,
        }

    def create_sampling_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /CreateSamplingRule``: a new rule, served to pollers at once."""
        record = new_rule_record(body)
        name = record["RuleName"]
        self._reload_if_changed()
        with self._lock:
            if name in self._states:
                raise invalid_request(f"a sampling rule named {name!r} already exists")
            if sum(1 for n in self._states if n != DEFAULT_RULE_NAME) >= MAX_RULES:
                raise ApiError(
                    400,
                    "RuleLimitExceededException",
                    f"at most {MAX_RULES} sampling rules besides Default",
                )
            now = self._changed_at()
            state = _RuleState(record, "api", now, now)
            self._persist([state], [])
            self._states[name] = state
            return {"SamplingRuleRecord": state.api_record()}

    def update_sampling_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /UpdateSamplingRule``: change the fields given; Default only its rate and
        reservoir. Statistics and active clients of the rule are kept."""
        update = Fields(body).object("SamplingRuleUpdate", required=True)
        assert update is not None
        name = rule_reference(update)
        self._reload_if_changed()
        with self._lock:
            state = self._existing(name)
            record = updated_rule_record(state.record, update)
            if record != state.record:
                changed = replace(
                    state,
                    record=record,
                    origin="api" if state.origin == "builtin" else state.origin,
                    modified_at=self._changed_at(),
                )
                self._persist([changed], [])
                self._states[name] = state = changed
            return {"SamplingRuleRecord": state.api_record()}

    def delete_sampling_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /DeleteSamplingRule``: remove a rule (not Default) and answer its record."""
        name = rule_reference(Fields(body, "DeleteSamplingRule"))
        if name == DEFAULT_RULE_NAME:
            raise invalid_request("the Default sampling rule cannot be deleted")
        self._reload_if_changed()
        with self._lock:
            state = self._existing(name)
            self._persist([], [name])
            del self._states[name]
            self._changed_at()
            return {"SamplingRuleRecord": state.api_record()}

    def get_sampling_statistic_summaries(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /SamplingStatisticSummaries``: per rule, the last report of every client still
        reporting, added up: one reporting interval (10 s) of the whole fleet's requests.
        ``Timestamp`` is the earliest of those reports; rules nobody reports on are left out."""
        _no_next_token(Fields(body), "every summary fits on one page")
        now = self._clock()
        summaries: list[dict[str, Any]] = []
        with self._lock:
            for state in self._ordered():
                recent = [
                    report
                    for client, report in state.last_reports.items()
                    if now - state.clients.get(client, 0.0) <= ACTIVE_WINDOW
                ]
                if not recent:
                    continue
                summaries.append(
                    {
                        "RuleName": state.record["RuleName"],
                        "Timestamp": min(r[0] for r in recent),
                        "RequestCount": sum(r[1] for r in recent),
                        "SampledCount": sum(r[2] for r in recent),
                        "BorrowCount": sum(r[3] for r in recent),
                    }
                )
        return {"SamplingStatisticSummaries": summaries}

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

    def _ordered(self) -> list[_RuleState]:
        return sorted(
            self._states.values(), key=lambda s: (s.record["Priority"], s.record["RuleName"])
        )

    def _existing(self, name: str) -> _RuleState:
        state = self._states.get(name)
        if state is None:
            raise invalid_request(f"no sampling rule named {name!r}")
        return state

    def _changed_at(self) -> float:
        """Now, made later than every earlier change: ``LastRuleModification`` must move."""
        self._modified_at = max(self._clock(), self._modified_at + 0.001)
        return self._modified_at

    def _persist(self, changed: list[_RuleState], deleted: list[str]) -> None:
        if self._store is not None and (changed or deleted):
            version = self._store.save_sampling_rules([s.stored() for s in changed], deleted)
            if self._watch is not None:
                self._watch.saved(version)

    def _refresh_from_store(self) -> None:
        """Re-read the rules when another collector changed them (see the class docstring)."""
        store, watch = self._store, self._watch
        if store is None or watch is None:
            return
        with self._lock:
            stored_rules = watch.reread(store.sampling_rules)
            if stored_rules is None:
                return
            states: dict[str, _RuleState] = {}
            for stored in stored_rules:
                previous = self._states.get(stored.name)
                if previous is None:
                    states[stored.name] = _RuleState(
                        stored.record, stored.origin, stored.created_at, stored.modified_at
                    )
                else:  # the clients and statistics of a rule outlive its edits
                    states[stored.name] = replace(
                        previous,
                        record=stored.record,
                        origin=stored.origin,
                        created_at=stored.created_at,
                        modified_at=stored.modified_at,
                    )
            if states == self._states:
                return
            self._states = states
            self._modified_at = max(
                self._clock(),
                self._modified_at + 0.001,
                *(s.modified_at for s in states.values()),
            )

    def _apply_file(self, file_rules: list[dict[str, Any]] | None, now: float) -> None:
        """Make the rules from the file (``None``: no file) current; see the class docstring."""
        wanted = {r["RuleName"]: (r, "file") for r in file_rules or []}
        if DEFAULT_RULE_NAME not in wanted:
            current = self._states.get(DEFAULT_RULE_NAME)
            if current is None or current.origin != "api":
                default = _central(DEFAULT_RULES.default, DEFAULT_RULE_NAME, DEFAULT_RULE_PRIORITY)
                wanted[DEFAULT_RULE_NAME] = (default.record(rule_arn(default.name)), "builtin")
        deleted = [
            name
            for name, state in self._states.items()
            if state.origin in ("file", "builtin") and name not in wanted
        ]
        changed: list[_RuleState] = []
        for name, (record, origin) in wanted.items():
            previous = self._states.get(name)
            if previous is None:
                changed.append(_RuleState(record, origin, now, now))
            elif previous.record != record or previous.origin != origin:
                modified = max(now, previous.modified_at)
                changed.append(
                    replace(previous, record=record, origin=origin, modified_at=modified)
                )
        if not changed and not deleted:
            return
        self._persist(changed, deleted)
        for name in deleted:
            del self._states[name]
        for state in changed:
            self._states[state.record["RuleName"]] = state
        self._modified_at = max(now, self._modified_at)

    def _record(self, state: _RuleState, report: Mapping[str, Any], now: float) -> None:
        state.request_count += report["RequestCount"]
        state.sampled_count += report["SampledCount"]
        state.borrow_count += report.get("BorrowCount", 0)
        client_id = report["ClientID"]
        clients = state.clients
        clients.pop(client_id, None)  # re-insert: dict order = least recent first
        clients[client_id] = now
        state.last_reports[client_id] = (
            report["Timestamp"],
            report["RequestCount"],
            report["SampledCount"],
            report.get("BorrowCount", 0),
        )
        for client, seen in list(clients.items()):
            if now - seen <= ACTIVE_WINDOW and len(clients) <= MAX_CLIENTS_PER_RULE:
                break
            del clients[client]
            state.last_reports.pop(client, None)

    def _target(self, state: _RuleState, client_id: str, now: float) -> dict[str, Any]:
        """This client's whole-number share of the rule's reservoir.

        Every active client gets ``size // n``; the ``size % n`` left over go to clients in turn,
        rotating each interval, so the shares always add up to the rule's ReservoirSize and over
        time every client gets its part even when there are more clients than traces per second.
        """
        active = sorted(c for c, seen in state.clients.items() if now - seen <= ACTIVE_WINDOW)
        size = int(state.record["ReservoirSize"])
        share, extra = divmod(size, len(active))
        position = (active.index(client_id) - int(now // TARGET_INTERVAL)) % len(active)
        return {
            "RuleName": state.record["RuleName"],
            "FixedRate": state.record["FixedRate"],
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
        self._refresh_from_store()
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
            rules = [r.record(rule_arn(r.name)) for r in centralized_rules(load_rules(self._path))]
        except ValueError as exc:
            logger.error("sampling rules not reloaded, keeping the previous ones: %s", exc)
            return
        with self._lock:
            self._apply_file(rules, max(now, self._modified_at + 0.001))
        logger.info("sampling rules reloaded from %s: %d rules", self._path, len(rules))


def _no_next_token(request: Fields, why: str) -> None:
    if request.string("NextToken") is not None:
        raise invalid_request(f"NextToken is not valid: {why}")


# --- request validation ---------------------------------------------------------------------


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
        "Timestamp": parse_timestamp(doc["Timestamp"], f"{where}.Timestamp", millis=True),
    }
    for counter in ("RequestCount", "SampledCount", "BorrowCount"):
        if counter not in doc:
            if counter == "BorrowCount":
                continue
            raise invalid_request(f"{where}.{counter} is required")
        parsed[counter] = _count(doc[counter], f"{where}.{counter}")
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
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
        raise invalid_request(f"{where} must be a non-negative integer up to {MAX_INTEGER}")
    return int(value)


__all__ = [
    "ApiError",
    "SamplingService",
    "centralized_rules",
    "rule_name",
]
