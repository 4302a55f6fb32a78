"""X-Ray groups: named filter expressions that scope the service graph, time series and traces.

A group's expression is validated with the filter parser when it is created or updated (errors
name the position) and kept compiled, so ``GroupName`` on GetServiceGraph and ``group.name =``
in a filter expression cost one lookup. ``Default`` is X-Ray's implicit group: it always exists,
has no expression (every trace), cannot be created, deleted or given an expression; only its
InsightsConfiguration can be updated.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..store.protocol import Resources
from ..store.resources import GROUPS, ChangeWatch, StoredGroup
from .errors import invalid_request
from .fields import Fields
from .filter import Predicate, compile_filter
from .rule_requests import ACCOUNT_ID, ARN_REGION, read_tags

DEFAULT_GROUP = "Default"
MAX_GROUP_NAME = 32
MAX_GROUP_ARN = 400
#: X-Ray's quota of groups per account (Default not counted).
MAX_GROUPS = 25
#: Bound on a group's filter expression: it is compiled and kept for the collector's lifetime.
MAX_FILTER_EXPRESSION = 2000
GROUPS_PAGE = 100
#: The store's group change counter is read at most this often (seconds): a group changed
#: through another collector sharing the database is used here within this delay.
STORE_CHECK_INTERVAL = 1.0


def group_arn(name: str, group_id: str | None) -> str:
    """``arn:aws:xray:<region>:<account>:group/<name>/<id>``; Default has no id part."""
    base = f"arn:aws:xray:{ARN_REGION}:{ACCOUNT_ID}:group/{name}"
    return base if group_id is None else f"{base}/{group_id}"


def new_group_id() -> str:
    """52 upper-case base32 characters, the shape of the ids AWS puts in group ARNs."""
    return base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=")


@dataclass(frozen=True)
class Group:
    name: str
    arn: str
    expression: str | None
    insights: dict[str, bool]
    created_at: float
    predicate: Predicate | None  # None: every trace

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"GroupName": self.name, "GroupARN": self.arn}
        if self.expression is not None:
            out["FilterExpression"] = self.expression
        out["InsightsConfiguration"] = dict(self.insights)
        return out


class GroupService:
    """The group operations over an in-memory copy kept in step with ``store`` (when given).

    Other collectors may share the store: every lookup first reads the groups' change counter
    (at most once per ``STORE_CHECK_INTERVAL``) and, when it moved, re-reads the groups, reusing
    the compiled expressions of those that did not change.
    """

    def __init__(
        self, store: Resources | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._groups: dict[str, Group] = {}
        default_insights = {"InsightsEnabled": False, "NotificationsEnabled": False}
        self._groups[DEFAULT_GROUP] = Group(
            DEFAULT_GROUP, group_arn(DEFAULT_GROUP, None), None, default_insights, 0.0, None
        )
        self._watch = (
            ChangeWatch(store, GROUPS, clock, STORE_CHECK_INTERVAL) if store is not None else None
        )
        self._refresh()

    def _refresh(self) -> None:
        """Re-read the groups when the store's change counter moved (see the class docstring)."""
        store, watch = self._store, self._watch
        if store is None or watch is None:
            return
        with self._lock:
            stored_groups = watch.reread(store.groups)
            if stored_groups is None:
                return
            groups = {DEFAULT_GROUP: self._groups[DEFAULT_GROUP]}  # Default is not stored
            for stored in stored_groups:
                previous = self._groups.get(stored.name)
                if (
                    previous is not None
                    and previous.arn == stored.arn
                    and (previous.record() == stored.record)
                ):
                    groups[stored.name] = previous
                    continue
                groups[stored.name] = _loaded(stored)
            self._groups = groups

    def _saved(self, version: int) -> None:
        if self._watch is not None:
            self._watch.saved(version)

    # -- operations ---------------------------------------------------------------------------

    def create_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        request = Fields(body)
        name = _group_name(request, required=True)
        assert name is not None
        if name == DEFAULT_GROUP:
            raise invalid_request("GroupName: Default is a reserved group name")
        read_tags(request)
        expression = _expression(request)
        predicate = self._compile(expression) if expression else None
        insights = _insights(request, None)
        self._refresh()
        with self._lock:
            if name in self._groups:
                raise invalid_request(f"a group named {name!r} already exists")
            if len(self._groups) - 1 >= MAX_GROUPS:
                raise invalid_request(f"at most {MAX_GROUPS} groups besides Default")
            group = Group(
                name,
                group_arn(name, new_group_id()),
                expression,
                insights,
                self._clock(),
                predicate,
            )
            self._save(group)
            self._groups[name] = group
        return {"Group": group.record()}

    def get_groups(self, body: Mapping[str, Any]) -> dict[str, Any]:
        token = Fields(body).string("NextToken", max_length=20)
        offset = 0
        if token is not None:
            if not token.isdigit():
                raise invalid_request("NextToken is invalid")
            offset = int(token)
        self._refresh()
        with self._lock:
            groups = sorted(self._groups.values(), key=lambda g: (g.name != DEFAULT_GROUP, g.name))
        result: dict[str, Any] = {
            "Groups": [g.record() for g in groups[offset : offset + GROUPS_PAGE]]
        }
        if offset + GROUPS_PAGE < len(groups):
            result["NextToken"] = str(offset + GROUPS_PAGE)
        return result

    def get_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"Group": self.find(body).record()}

    def update_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        request = Fields(body)
        group = self.find(body)
        expression = _expression(request)
        if group.name == DEFAULT_GROUP and expression is not None:
            raise invalid_request("FilterExpression: the Default group has no filter expression")
        predicate = group.predicate
        if expression is not None:
            predicate = self._compile(expression) if expression else None
        insights = _insights(request, group.insights)
        with self._lock:
            current = self._groups.get(group.name)
            if current is None or current.arn != group.arn:
                raise invalid_request(f"group {group.name!r} was deleted")
            updated = Group(
                group.name,
                group.arn,
                (expression or None) if expression is not None else group.expression,
                insights,
                group.created_at,
                predicate,
            )
            if group.name != DEFAULT_GROUP:
                self._save(updated)
            self._groups[group.name] = updated
        return {"Group": updated.record()}

    def delete_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        group = self.find(body)
        if group.name == DEFAULT_GROUP:
            raise invalid_request("the Default group cannot be deleted")
        with self._lock:
            if self._groups.get(group.name) is group:
                if self._store is not None:
                    self._saved(self._store.delete_group(group.name))
                del self._groups[group.name]
        return {}

    # -- lookups for the other operations -----------------------------------------------------

    def find(self, body: Mapping[str, Any]) -> Group:
        """The group a request names by ``GroupName`` or ``GroupARN`` (both: they must agree)."""
        request = Fields(body)
        name = _group_name(request, required=False)
        arn = request.string("GroupARN", min_length=1, max_length=MAX_GROUP_ARN)
        if name is None and arn is None:
            raise invalid_request("GroupName or GroupARN is required")
        self._refresh()
        with self._lock:
            group = self._groups.get(name) if name is not None else self._by_arn(arn)
        if group is None or (arn is not None and group.arn != arn):
            raise invalid_request(f"group not found: {name or arn}")
        return group

    def scope(self, body: Mapping[str, Any]) -> Predicate | None:
        """The trace predicate of the group a read operation names; ``None``: every trace."""
        if not Fields(body).present() & {"GroupName", "GroupARN"}:
            return None
        return self.find(body).predicate

    def resolve(self, kind: str, value: str) -> Predicate:
        """For ``group.name = "..."`` / ``group.arn = "..."`` in filter expressions."""
        self._refresh()
        with self._lock:
            group = self._groups.get(value) if kind == "name" else self._by_arn(value)
        if group is None:
            raise LookupError(f"no group with {kind} {value!r}")
        return group.predicate if group.predicate is not None else _everything

    def names(self) -> list[str]:
        self._refresh()
        with self._lock:
            return sorted(self._groups)

    # -- internals ----------------------------------------------------------------------------

    def _by_arn(self, arn: Any) -> Group | None:
        return next((g for g in self._groups.values() if g.arn == arn), None)

    @staticmethod
    def _compile(expression: str) -> Predicate:
        # Group expressions may not refer to groups (no resolver): no cycles, no stale links.
        return compile_filter(expression)

    def _save(self, group: Group) -> None:
        if self._store is not None:
            self._saved(
                self._store.save_group(
                    StoredGroup(group.name, group.arn, group.created_at, group.record())
                )
            )


def _loaded(stored: StoredGroup) -> Group:
    record = stored.record
    expression = record.get("FilterExpression")
    try:
        predicate = GroupService._compile(expression) if expression else None
    except Exception:  # an expression this version no longer parses: serve it, match none
        predicate = _nothing
    return Group(
        stored.name,
        stored.arn,
        expression,
        dict(
            record.get("InsightsConfiguration")
            or {"InsightsEnabled": False, "NotificationsEnabled": False}
        ),
        stored.created_at,
        predicate,
    )


def _everything(facts: Mapping[str, Any]) -> bool:
    return True


def _nothing(facts: Mapping[str, Any]) -> bool:
    return False


def _group_name(request: Fields, required: bool) -> str | None:
    return request.string("GroupName", required=required, min_length=1, max_length=MAX_GROUP_NAME)


def _expression(request: Fields) -> str | None:
    return request.string("FilterExpression", max_length=MAX_FILTER_EXPRESSION)


def _insights(request: Fields, current: dict[str, bool] | None) -> dict[str, bool]:
    merged = dict(current or {"InsightsEnabled": False, "NotificationsEnabled": False})
    value = request.object("InsightsConfiguration")
    if value is None:
        return merged
    for key in ("InsightsEnabled", "NotificationsEnabled"):
        flag = value.boolean(key)
        if flag is not None:
            merged[key] = flag
    if merged["NotificationsEnabled"] and not merged["InsightsEnabled"]:
        raise invalid_request(
            "InsightsConfiguration: notifications can only be enabled with InsightsEnabled"
        )
    return merged


__all__ = ["DEFAULT_GROUP", "Group", "GroupService", "group_arn"]
