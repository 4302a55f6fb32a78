"""Persistence of what the store holds besides traces: sampling rules, groups and the
retention settings.

Each row is one resource as its API record (JSON text) plus the columns lookups need. The SQL is
plain (``INSERT ... ON CONFLICT``, no SQLite-only syntax) so another store can run it as is; the
services in ``api/`` keep the working copy in memory and call these methods on every change.

Every change also moves the resource kind's counter in ``resource_versions`` in the same
transaction, so the services of every collector sharing the database notice it with one cheap
read (``resource_version``) and re-read the rows: a rule or group made through one collector is
served by all of them within seconds (docs/decisions.md, "Rules and groups shared live").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import TRACE_SEGMENT_DESTINATIONS
from .sql import SqlDatabase


@dataclass(frozen=True)
class StoredRule:
    """A sampling rule as persisted: where it came from and its X-Ray ``SamplingRule`` record."""

    name: str
    origin: str  # "file" (seeded from --sampling-rules) or "api" (created through the API)
    created_at: float
    modified_at: float
    record: dict[str, Any]


@dataclass(frozen=True)
class StoredGroup:
    """A group as persisted: its X-Ray ``Group`` record (name, ARN, expression, insights)."""

    name: str
    arn: str
    created_at: float
    record: dict[str, Any]


@dataclass(frozen=True)
class Retention:
    """The retention in force: a setting of the store, shared by every collector using it
    (docs/decisions.md, "Retention settings live in the store"). 0 = no limit."""

    retention_hours: float = 72.0
    max_db_mb: float = 1024.0

    @property
    def max_age_seconds(self) -> float | None:
        return self.retention_hours * 3600 if self.retention_hours else None

    @property
    def max_bytes(self) -> int | None:
        return int(self.max_db_mb * 1024 * 1024) if self.max_db_mb else None

    def as_status(self) -> dict[str, float]:
        return {"retention_hours": self.retention_hours, "max_db_mb": self.max_db_mb}


#: ``xray_settings`` names of the retention fields and the flags that set them.
_RETENTION_SETTINGS = (("retention_hours", "--retention-hours"), ("max_db_mb", "--max-db-mb"))
#: ``xray_settings`` name of UpdateTraceSegmentDestination's value, stored as its position in
#: ``TRACE_SEGMENT_DESTINATIONS`` (the table holds numbers); absent: the first, XRay.
_DESTINATION_SETTING = "trace_segment_destination"
_SET_SETTING = (
    "INSERT INTO xray_settings(name, value) VALUES (?, ?)"
    " ON CONFLICT(name) DO UPDATE SET value = excluded.value"
)

_logger = logging.getLogger("otel_xray_collector.store")
_T = TypeVar("_T")

#: The kinds of resource with a change counter.
RULES = "sampling_rules"
GROUPS = "groups"

_BUMP = (
    "INSERT INTO resource_versions(kind, version) VALUES (?, 1) ON CONFLICT(kind)"
    " DO UPDATE SET version = resource_versions.version + 1 RETURNING version"
)


class ChangeWatch:
    """Whether the change counter of one kind moved since this collector last looked: read at
    most once per ``interval`` seconds of ``clock``, so a hot path pays one lookup a second.
    Not thread-safe: the owning service calls it under its lock."""

    def __init__(
        self, store: Any, kind: str, clock: Callable[[], float], interval: float = 1.0
    ) -> None:
        self._store = store
        self._kind = kind
        self._clock = clock
        self._interval = interval
        self._next_check = 0.0
        self.version = -1  # nothing seen yet: the first look always reports a change

    def reread(self, read: Callable[[], _T]) -> _T | None:
        """``read()`` (the kind's rows) when the counter moved since last seen, else None."""
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self._interval
        version = int(self._store.resource_version(self._kind))
        if version == self.version:
            return None
        rows = read()
        self.version = version  # only once read: a failed read is retried at the next check
        return rows

    def seen(self, version: int) -> None:
        self.version = version

    def saved(self, version: int) -> None:
        """After a change of ours: when only ours moved the counter, nothing to re-read."""
        if version == self.version + 1:
            self.version = version


class ResourceStore:
    """Sampling rules and groups in the collector's database."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    def resource_version(self, kind: str) -> int:
        """The change counter of ``kind`` (``RULES`` or ``GROUPS``): 0 before any change."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT version FROM resource_versions WHERE kind = ?", (kind,)
            ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _bump(conn: Any, kind: str) -> int:
        return int(conn.execute(_BUMP, (kind,)).fetchone()[0])

    # -- retention settings ------------------------------------------------------------------

    #: the retention last read or recorded by this collector (for a /status that answers
    #: while the database does not)
    known_retention: Retention | None = None

    def retention(self) -> Retention:
        """The retention in force (one primary-key read): the stored values, else defaults."""
        with self.db.read() as conn:
            self.known_retention = self._retention(conn)
        return self.known_retention

    @staticmethod
    def _retention(conn: Any) -> Retention:
        stored = dict(conn.execute("SELECT name, value FROM xray_settings").fetchall())
        default = Retention()
        return Retention(
            **{
                name: float(stored.get(name, getattr(default, name)))
                for name, _ in _RETENTION_SETTINGS
            }
        )

    def record_retention(self, hours: float | None, max_db_mb: float | None) -> Retention:
        """Store the values given explicitly (None: keep the stored one) and return the
        retention now in force; a change of the value in force is logged with old and new."""
        given = {"retention_hours": hours, "max_db_mb": max_db_mb}
        with self.db.side_write() as conn:
            before = self._retention(conn)
            for name, flag in _RETENTION_SETTINGS:
                value = given[name]
                if value is None:
                    continue
                conn.execute(_SET_SETTING, (name, float(value)))
                old = float(getattr(before, name))
                if old != float(value):
                    _logger.info(
                        "%s: the store's %s changes from %g to %g (every collector of this"
                        " store applies it)",
                        flag,
                        name,
                        old,
                        value,
                    )
            self.known_retention = self._retention(conn)
        return self.known_retention

    # -- trace segment destination -----------------------------------------------------------

    def segment_destination(self) -> str:
        """What UpdateTraceSegmentDestination last stored through any collector, else XRay."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT value FROM xray_settings WHERE name = ?", (_DESTINATION_SETTING,)
            ).fetchone()
        position = int(row[0]) if row else 0
        if not 0 <= position < len(TRACE_SEGMENT_DESTINATIONS):
            position = 0  # written by a newer collector that knows more destinations
        return TRACE_SEGMENT_DESTINATIONS[position]

    def record_segment_destination(self, destination: str) -> None:
        with self.db.side_write() as conn:
            position = TRACE_SEGMENT_DESTINATIONS.index(destination)
            conn.execute(_SET_SETTING, (_DESTINATION_SETTING, float(position)))

    # -- sampling rules ----------------------------------------------------------------------

    def sampling_rules(self) -> list[StoredRule]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name, origin, created_at, modified_at, record FROM sampling_rules"
                " ORDER BY name"
            ).fetchall()
        return [StoredRule(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def save_sampling_rules(self, rules: list[StoredRule], deleted: list[str]) -> int:
        """Upsert ``rules`` and remove the rules named in ``deleted``, in one transaction;
        returns the rules' new change counter."""
        with self.db.side_write() as conn:
            for name in deleted:
                conn.execute("DELETE FROM sampling_rules WHERE name = ?", (name,))
            for rule in rules:
                conn.execute(
                    "INSERT INTO sampling_rules(name, origin, created_at, modified_at, record)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                    " origin = excluded.origin, created_at = excluded.created_at,"
                    " modified_at = excluded.modified_at, record = excluded.record",
                    (
                        rule.name,
                        rule.origin,
                        rule.created_at,
                        rule.modified_at,
                        json.dumps(rule.record, sort_keys=True),
                    ),
                )
            return self._bump(conn, RULES)

    # -- groups ------------------------------------------------------------------------------

    def groups(self) -> list[StoredGroup]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name, arn, created_at, record FROM xray_groups ORDER BY name"
            ).fetchall()
        return [StoredGroup(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def save_group(self, group: StoredGroup) -> int:
        """Upsert ``group``; returns the groups' new change counter."""
        with self.db.side_write() as conn:
            conn.execute(
                "INSERT INTO xray_groups(name, arn, created_at, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET arn = excluded.arn,"
                " created_at = excluded.created_at, record = excluded.record",
                (group.name, group.arn, group.created_at, json.dumps(group.record, sort_keys=True)),
            )
            return self._bump(conn, GROUPS)

    def delete_group(self, name: str) -> int:
        """Remove the group ``name``; returns the groups' new change counter."""
        with self.db.side_write() as conn:
            conn.execute("DELETE FROM xray_groups WHERE name = ?", (name,))
            return self._bump(conn, GROUPS)


__all__ = [
    "GROUPS",
    "RULES",
    "ChangeWatch",
    "ResourceStore",
    "Retention",
    "StoredGroup",
    "StoredRule",
]
