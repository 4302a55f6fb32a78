"""Day partitions of the PostgreSQL store: retention drops a day's tables instead of deleting
its rows (docs/decisions.md, "Retention drops whole days").

``segments`` and ``traces`` are partitioned by ``day``, the UTC day of the epoch a trace id
starts with (SQL ``xray_trace_day``, schema step 3: a pure function of the id, so whichever
collector receives a document of a trace files it in the same partition); ``agg_stats`` by
``bucket``, one day of minute buckets per partition. A partition exists for every day of the
window [the retention cutoff's day, today + ``AHEAD_DAYS``]; everything else (ids whose first
32 bits are not a time, replayed old traffic, clocks far off) lands in each table's DEFAULT
partition, which retention still empties by last update, in bounded batches.

A maintenance pass (at store open and with every retention pass) plans from the partitions
that exist (:func:`plan`, pure), then, in one transaction under an advisory lock only one
collector holds at a time, drops the days the plan retires and creates the missing days of
the window, moving any rows DEFAULT holds for a new day into it. Its DDL needs ACCESS
EXCLUSIVE on the three tables; it asks for them first, all at once, with a short
``lock_timeout``: behind a long reader it gives up and the next pass retries, rather than
queueing and stalling every ingest and query behind it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DAY_SECONDS = 86400
#: Days created ahead of today: a pass can be missed (collectors down, lock busy) without
#: tomorrow's traces starting in DEFAULT.
AHEAD_DAYS = 2
#: Days created or dropped per pass: bounded work and locks (a collector back after a long
#: stop, or a much longer retention, catches up over a few passes, newest days first).
MAX_CHANGES = 8
#: How long a pass waits for its table locks before leaving the work to the next pass.
LOCK_TIMEOUT = "200ms"
#: Arbitrary constant naming the advisory lock of maintenance ("xrap").
_MAINTENANCE_LOCK = 0x78726170

#: (table, partition column, column units per day) of each partitioned table.
TABLES: tuple[tuple[str, str, int], ...] = (
    ("segments", "day", 1),
    ("traces", "day", 1),
    ("agg_stats", "bucket", DAY_SECONDS),
)
_NAME = re.compile(r"^segments_(\d{8})$")
_EPOCH = datetime.date(1970, 1, 1)


def day_of(epoch_seconds: float) -> int:
    """The UTC day number (days since 1970-01-01) of an epoch time."""
    return int(epoch_seconds // DAY_SECONDS)


def partition_name(table: str, day: int) -> str:
    """``segments_20261204``: a day's partition, named by its date for whoever reads ``\\d+``."""
    return f"{table}_{(_EPOCH + datetime.timedelta(days=day)):%Y%m%d}"


def day_of_name(name: str) -> int | None:
    """The day of a ``segments`` partition's name; None for DEFAULT or any other table."""
    found = _NAME.match(name)
    if found is None:
        return None
    date = datetime.datetime.strptime(found.group(1), "%Y%m%d").date()
    return (date - _EPOCH).days


@dataclass(frozen=True)
class Plan:
    drop: tuple[int, ...]
    create: tuple[int, ...]


def plan(
    existing: Iterable[int], now: float, max_age_seconds: float | None, drop_oldest: int = 0
) -> Plan:
    """Which day partitions to drop and create (pure).

    Dropped: every day wholly older than ``now - max_age_seconds``, plus the ``drop_oldest``
    oldest days before today (the size budget). Created: the days of the window
    [cutoff's day, today + AHEAD_DAYS] that do not exist, newest first. At most MAX_CHANGES
    of each per pass.
    """
    days = sorted(set(existing))
    today = day_of(now)
    first = day_of(now - max_age_seconds) if max_age_seconds else today
    drop = [d for d in days if d < first] if max_age_seconds else []
    older = [d for d in days if d < today and d not in drop]
    drop += older[: max(0, drop_oldest)]
    create = [d for d in range(today + AHEAD_DAYS, first - 1, -1) if d not in days]
    return Plan(tuple(drop[:MAX_CHANGES]), tuple(create[:MAX_CHANGES]))


def existing_days(conn: Any) -> list[int]:
    """The days that have a ``segments`` partition (the three tables are kept in step)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'segments'::regclass"
    ).fetchall()
    return sorted(d for (name,) in rows if (d := day_of_name(name)) is not None)


def claim(conn: Any) -> bool:
    """Inside the pass's transaction: whether this collector is the one maintaining now
    (another collector's pass holds the lock: skip, it does the same work)."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_MAINTENANCE_LOCK,)).fetchone()
    return bool(row[0])


def lock_tables(conn: Any) -> None:
    """The three tables locked for DDL, all at once, before any other lock of the pass (so
    a session holding one of them and waiting for another never waits on this pass for long:
    the pass gives up first), or :class:`LockNotAvailable` after LOCK_TIMEOUT."""
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    conn.execute("LOCK TABLE segments, traces, agg_stats IN ACCESS EXCLUSIVE MODE")


def bounds(day: int, per_day: int) -> tuple[int, int]:
    return day * per_day, (day + 1) * per_day


def create_day(conn: Any, day: int) -> int:
    """Create the three partitions of ``day``: each table made detached, the rows DEFAULT
    holds for that day moved into it, then attached (a partition cannot be created while
    DEFAULT holds rows of its range). DEFAULT is read twice, by the move and by ATTACH's
    validation; an index on DEFAULT's day would spare the first read but slow every insert
    into DEFAULT (docs/decisions.md, "DEFAULT is read twice per new day"). Returns the rows
    moved."""
    moved = 0
    for table, column, per_day in TABLES:
        name = partition_name(table, day)
        low, high = bounds(day, per_day)
        conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
        moved += conn.execute(
            f"WITH moved AS (DELETE FROM {table}_default WHERE {column} >= %s AND {column} < %s"
            f" RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            (low, high),
        ).rowcount
        # the CHECK lets ATTACH skip scanning the new table; it is redundant once attached
        conn.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_range"
            f" CHECK ({column} >= {low} AND {column} < {high})"
        )
        conn.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
        )
        conn.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    return moved


def drop_day(conn: Any, day: int) -> None:
    """Drop the three partitions of ``day``: O(1), their disk space freed at commit."""
    conn.execute("DROP TABLE " + ", ".join(partition_name(table, day) for table, _, _ in TABLES))
