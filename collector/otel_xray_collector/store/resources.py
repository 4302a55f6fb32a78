"""Persistence of what the API manages besides traces: sampling rules and groups.

Each row is one resource as its API record (JSON text) plus the columns lookups need. The SQL is
plain (``INSERT ... ON CONFLICT``, no SQLite-only syntax) so another store can run it as is; the
services in ``api/`` keep the working copy in memory and call these methods on every change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


class ResourceStore:
    """Sampling rules and groups in the collector's database."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    # -- sampling rules ----------------------------------------------------------------------

    def sampling_rules(self) -> list[StoredRule]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name, origin, created_at, modified_at, record FROM sampling_rules"
                " ORDER BY name"
            ).fetchall()
        return [StoredRule(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def save_sampling_rules(self, rules: list[StoredRule], deleted: list[str]) -> None:
        """Upsert ``rules`` and remove the rules named in ``deleted``, in one transaction."""
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

    # -- groups ------------------------------------------------------------------------------

    def groups(self) -> list[StoredGroup]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name, arn, created_at, record FROM xray_groups ORDER BY name"
            ).fetchall()
        return [StoredGroup(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def save_group(self, group: StoredGroup) -> None:
        with self.db.side_write() as conn:
            conn.execute(
                "INSERT INTO xray_groups(name, arn, created_at, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET arn = excluded.arn,"
                " created_at = excluded.created_at, record = excluded.record",
                (group.name, group.arn, group.created_at, json.dumps(group.record, sort_keys=True)),
            )

    def delete_group(self, name: str) -> None:
        with self.db.side_write() as conn:
            conn.execute("DELETE FROM xray_groups WHERE name = ?", (name,))


__all__ = ["ResourceStore", "StoredGroup", "StoredRule"]
