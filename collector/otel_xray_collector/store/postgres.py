"""The shared store: PostgreSQL, written by every collector of a cluster at once.

Same :class:`~otel_xray_collector.store.protocol.Store` as SQLite, designed for several
concurrent writers (docs/decisions.md, "Many writers, one truth"):

- ``segments`` is keyed by (trace id, segment id). A batch is one upsert statement; a document
  that is already stored byte for byte changes nothing, so a retry or a second daemon's copy is
  stored once and triggers no work. The commit is the acknowledgement point.
- The same statement records each trace it changed in ``pending``: the to-do list of indexing,
  shared by every collector. An indexer claims traces with ``FOR UPDATE SKIP LOCKED`` (two
  collectors never index one trace at once; a writer touching a claimed trace waits for that
  claim to commit and then queues the trace again), recomputes the summary from ALL the
  trace's stored segments, whichever collector received them, and applies the difference
  between the trace's new and old graph contribution to the per-minute aggregates.
- Aggregates are commutative increments (``INSERT ... ON CONFLICT DO UPDATE SET n = n + ...``,
  histograms added by ``xray_hist_add``), so concurrent indexers of different traces never lose
  or double-count an update; a duplicate document does not count twice because contributions are
  recomputed from the de-duplicated segments, never added per arrival.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from otel_xray.logs import OutageLog
from otel_xray.wire import loads

from ..documents import PackedDocuments
from . import partitions
from .codec import decode, encode
from .migrations import POSTGRES, migrate
from .protocol import StoreUnreachable
from .queries import TraceQueries
from .resources import ResourceStore
from .stats import Stats
from .store import accumulate, index_trace

_logger = logging.getLogger("otel_xray_collector.store")

#: ``--db`` values that select this store (libpq connection URIs); anything else is a file.
URL_PREFIXES = ("postgresql://", "postgres://")

READER_POOL_SIZE = 4
#: Seconds to wait for the database when connecting (unless the URL or PGCONNECT_TIMEOUT says).
CONNECT_TIMEOUT = 10
#: Attempts of a transaction PostgreSQL aborted to break a deadlock or a serialization conflict
#: between collectors (the work is redone from the database, so retrying is always safe).
RETRIES = 5

# One statement per batch: rows arrive as four arrays. ``ORDER BY`` makes every writer lock
# keys in the same order (concurrent collectors upserting the same documents never deadlock
# on each other); the WHERE keeps a complete document from being replaced by an in-progress
# copy and makes an identical copy a no-op (no new seq, nothing queued for indexing). A trace
# already queued is re-written, not skipped (DO NOTHING): the row lock keeps an indexer from
# claiming the trace until this transaction commits, so it cannot index the trace without
# these documents and drop the only queue entry that would bring them in.
_UPSERT = """
WITH written AS (
    INSERT INTO segments(trace_id, seg_id, day, in_progress, doc, stored_at)
    SELECT t, s, xray_trace_day(t), p, d, %(now)s
    FROM unnest(%(traces)s::text[], %(segs)s::text[], %(progress)s::bool[], %(docs)s::bytea[])
        AS batch(t, s, p, d)
    ORDER BY t, s
    ON CONFLICT (trace_id, seg_id, day) DO UPDATE SET
        seq = excluded.seq, in_progress = excluded.in_progress, doc = excluded.doc,
        stored_at = excluded.stored_at
    WHERE (NOT excluded.in_progress OR segments.in_progress) AND segments.doc <> excluded.doc
    RETURNING trace_id
)
INSERT INTO pending(trace_id) SELECT DISTINCT trace_id FROM written ORDER BY trace_id
ON CONFLICT (trace_id) DO UPDATE SET trace_id = excluded.trace_id
"""

_APPLY = """
INSERT INTO agg_stats AS a(bucket, kind, key, refs, ok, err, thr, fault, total, rt, smin, emax,
                          hist, dhist)
SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::bigint[], %s::bigint[],
                     %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[],
                     %s::float8[], %s::float8[], %s::jsonb[], %s::jsonb[])
ORDER BY 1, 2, 3
ON CONFLICT (bucket, kind, key) DO UPDATE SET
    refs = a.refs + excluded.refs, ok = a.ok + excluded.ok, err = a.err + excluded.err,
    thr = a.thr + excluded.thr, fault = a.fault + excluded.fault,
    total = a.total + excluded.total, rt = a.rt + excluded.rt,
    smin = LEAST(a.smin, excluded.smin), emax = GREATEST(a.emax, excluded.emax),
    hist = xray_hist_add(a.hist, excluded.hist), dhist = xray_hist_add(a.dhist, excluded.dhist)
"""


#: The rows of a set of traces in ``segments`` or ``traces``: their ids, and the days of their
#: partitions as a parameter array (:func:`trace_keys`). ``trace_id = ANY`` alone probes the index
#: of every day partition; a parameter array of days lets the planner keep only those days'
#: partitions (days computed inside the statement, from a subquery or a join, do not prune:
#: the planner prunes on constants and parameters). docs/decisions.md, "Lookups name the day".
_TRACES_IN = "trace_id = ANY(%(ids)s) AND day = ANY(%(days)s)"


def trace_keys(claimed: Sequence[tuple[str, int]]) -> dict[str, list[Any]]:
    """The parameters of :data:`_TRACES_IN` for (trace id, day) pairs the database gave (the
    day is ``xray_trace_day``'s, never recomputed here)."""
    return {"ids": [t for t, _ in claimed], "days": sorted({d for _, d in claimed})}


@dataclass(frozen=True)
class Maintenance:
    """What one partition maintenance pass did."""

    dropped: tuple[int, ...] = ()
    created: tuple[int, ...] = ()
    #: traces that were in the dropped partitions
    traces: int = 0
    #: another collector was maintaining, or the tables stayed busy: the next pass retries
    skipped: bool = False


def first_line(exc: BaseException) -> str:
    """A driver error in one line (its first), for logs and /status."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_postgres_url(location: str) -> bool:
    return location.startswith(URL_PREFIXES)


class QmarkConnection:
    """A psycopg connection that takes the ``?`` placeholders the shared queries are written
    with (store/sql.py); nothing else is translated."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), parameters)


class PgDatabase:
    """Connections to one PostgreSQL database: the ingest thread's writer, pooled readers and
    a side connection for the API's resources. A broken connection is replaced on next use."""

    def __init__(self, url: str) -> None:
        import psycopg  # the optional [postgres] extra: imported only when asked for

        self._psycopg = psycopg
        #: the psycopg module (``driver.Error``: the base of every database error)
        self.driver = psycopg
        self.url = url
        self._readers: queue.LifoQueue[Any] = queue.LifoQueue()
        self._side_lock = threading.Lock()
        self._side: Any = None
        self._closed = False
        self._writer: Any = None
        with self.write() as conn:
            migrate(conn, POSTGRES)

    def _connect(self, read_only: bool = False) -> Any:
        options: dict[str, Any] = {"application_name": "otel-xray-collector"}
        if "connect_timeout" not in self.url and "PGCONNECT_TIMEOUT" not in os.environ:
            options["connect_timeout"] = CONNECT_TIMEOUT  # libpq's default waits forever
        conn = self._psycopg.connect(self.url, **options)
        if read_only:
            conn.isolation_level = self._psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
        return conn

    @contextlib.contextmanager
    def _unreachable_as_store_error(self) -> Iterator[None]:
        """The driver's connection-level errors as :class:`StoreUnreachable`: no connection
        (no SQLSTATE), class 08 (connection exception) and 57P0x (server shutting down or
        starting). Deadlocks, serialization failures and query errors pass unchanged (retried
        by ``retrying``, or bugs); the next use of a broken connection reconnects."""
        try:
            yield
        except self._psycopg.OperationalError as exc:
            if exc.sqlstate is not None and not exc.sqlstate.startswith(("08", "57P0")):
                raise
            self._drop_readers()  # pooled connections died with this one: reconnect fresh
            raise StoreUnreachable(f"PostgreSQL store unreachable: {first_line(exc)}") from exc

    def _drop_readers(self) -> None:
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    @property
    def writer(self) -> Any:
        if self._writer is None or self._writer.closed or self._writer.broken:
            self._writer = self._connect()
        return self._writer

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """The writer connection inside one transaction (committed when the block ends)."""
        with self._unreachable_as_store_error():
            conn = self.writer
            with conn.transaction():
                yield conn

    def retrying(self, work: Callable[[Any], int]) -> int:
        """``work(conn)`` in one write transaction, redone when PostgreSQL aborted it to
        resolve a deadlock or a serialization conflict with another collector."""
        errors = self._psycopg.errors
        for attempt in range(RETRIES):
            try:
                with self.write() as conn:
                    return work(conn)
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))  # let the other transaction finish first
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def side_write(self) -> Iterator[QmarkConnection]:
        with self._side_lock, self._unreachable_as_store_error():
            if self._side is None or self._side.closed or self._side.broken:
                self._side = self._connect()
            with self._side.transaction():
                yield QmarkConnection(self._side)

    @contextlib.contextmanager
    def read(self) -> Iterator[QmarkConnection]:
        with self._unreachable_as_store_error():
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                conn = self._connect(read_only=True)
            try:
                with conn.transaction():
                    yield QmarkConnection(conn)
            finally:
                if conn.broken or self._closed or self._readers.qsize() >= READER_POOL_SIZE:
                    conn.close()
                else:
                    self._readers.put(conn)

    def size_bytes(self) -> int:
        """On-disk bytes of the store's tables and their indexes."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._closed = True
        for conn in (self._writer, self._side):
            if conn is not None:
                conn.close()
        self._drop_readers()


class PostgresStore(TraceQueries, ResourceStore):
    """:class:`~otel_xray_collector.store.protocol.Store` over a PostgreSQL database shared by
    any number of collectors. Reads and resources are the SQLite store's queries
    (``TraceQueries``, ``ResourceStore``), run through :class:`QmarkConnection`."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.db: PgDatabase = PgDatabase(url)
        self._clock = clock
        self._written = 0
        self._indexed = 0
        self._over_budget = False  # logged once per stretch over --max-db-mb
        #: maintenance passes that gave up on busy tables / lacked the right to do DDL (/status)
        self.maintenance_busy = 0
        self.maintenance_denied = 0
        # one line when passes start failing, one when a pass works again
        self._busy_log = OutageLog(_logger, "partition maintenance", math.inf, logging.INFO)
        self._denied_log = OutageLog(_logger, "partition maintenance", math.inf, logging.ERROR)
        # today's traces start in their day's partition, not in DEFAULT
        self.maintain_partitions(self.retention().max_age_seconds, drop=False)

    def one_trace(self, trace_id: str) -> tuple[str, tuple[str, ...]]:
        """The trace's rows in its day partition only (queries.py's seam)."""
        return "trace_id = ? AND day = xray_trace_day(?)", (trace_id, trace_id)

    # -- SegmentWriter -----------------------------------------------------------------------

    @property
    def stored_seq(self) -> int:
        """Documents this collector wrote (the database's sequence is shared by all)."""
        return self._written

    @property
    def indexed_seq(self) -> int:
        """``stored_seq`` once the shared to-do list was last seen empty."""
        return self._indexed

    def write_packed(self, batches: Sequence[PackedDocuments]) -> int:
        latest: dict[tuple[str, str], tuple[bool, bytes]] = {}
        total = 0
        for batch in batches:
            if not batch.total:
                continue
            total += batch.total
            blob = batch.blob
            for trace_id, seg_id, in_progress, offset, size in loads(batch.meta):
                key = (trace_id, seg_id)
                found = latest.get(key)
                if in_progress and found is not None and not found[0]:
                    continue  # the complete copy already in this batch wins, as in the table
                latest[key] = (bool(in_progress), blob[offset - 1 : offset - 1 + size])
        if not latest:
            return 0
        params = {
            "now": self._clock(),
            "traces": [k[0] for k in latest],
            "segs": [k[1] for k in latest],
            "progress": [v[0] for v in latest.values()],
            "docs": [v[1] for v in latest.values()],
        }

        def upsert(conn: Any) -> int:
            conn.execute(_UPSERT, params)
            return total

        written = self.db.retrying(upsert)
        self._written += written
        return written

    def has_pending(self) -> bool:
        try:
            with self.db.read() as conn:
                pending = conn.execute("SELECT EXISTS (SELECT 1 FROM pending)").fetchone()[0]
        except (
            self.db.driver.Error,
            StoreUnreachable,
        ):  # database unreachable: the ingest loop must keep going
            return False
        if not pending:
            self._indexed = self._written
        return bool(pending)

    def index_pending(self, limit: int = 2000) -> int:
        """Claim up to ``limit`` queued traces no other collector is indexing and index them."""
        return self.db.retrying(lambda conn: self._index_claimed(conn, limit))

    def _index_claimed(self, conn: Any, limit: int) -> int:
        claimed = sorted(
            conn.execute(
                "DELETE FROM pending WHERE trace_id IN (SELECT trace_id FROM pending"
                " ORDER BY trace_id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING trace_id, xray_trace_day(trace_id)",
                (limit,),
            ).fetchall()
        )
        if not claimed:
            return 0
        trace_ids = [t for t, _ in claimed]
        day = dict(claimed)
        self._lock_traces(conn, trace_ids)
        old = self._old_contributions(conn, claimed)
        docs: dict[str, list[dict[str, Any]]] = {}
        for trace_id, doc in conn.execute(
            f"SELECT trace_id, doc FROM segments WHERE {_TRACES_IN} ORDER BY seq",
            trace_keys(claimed),
        ):
            docs.setdefault(trace_id, []).append(loads(doc))
        delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        rows = []
        now = self._clock()
        for trace_id in trace_ids:
            previous = old.get(trace_id)
            if previous is not None:
                accumulate(delta, decode(previous), -1)
            if trace_id not in docs:
                continue
            row = index_trace(trace_id, docs[trace_id])
            accumulate(delta, row.contrib, +1)
            rows.append(
                (
                    trace_id,
                    day[trace_id],
                    row.start,
                    row.end,
                    row.id_time,
                    row.summary,
                    row.facts,
                    encode(row.contrib),
                    now,
                )
            )
        gone = [(t, d) for t, d in claimed if t not in docs]
        if gone:
            conn.execute(f"DELETE FROM traces WHERE {_TRACES_IN}", trace_keys(gone))
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO traces(trace_id, day, start_time, end_time, id_time, revision,"
                    " summary, facts, contrib, touched)"
                    " VALUES (%s,%s,%s,%s,%s,1,%s,%s,%s,%s)"
                    " ON CONFLICT (trace_id, day) DO UPDATE SET start_time = excluded.start_time,"
                    " end_time = excluded.end_time, id_time = excluded.id_time,"
                    " revision = traces.revision + 1, summary = excluded.summary,"
                    " facts = excluded.facts, contrib = excluded.contrib,"
                    " touched = excluded.touched",
                    rows,
                )
        self._apply(conn, delta)
        return len(trace_ids)

    @staticmethod
    def _lock_traces(conn: Any, trace_ids: list[str]) -> None:
        """Per-trace transaction locks, in sorted order: indexing and retention of one trace
        never interleave, whichever collectors run them."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(t, 0))"
            " FROM (SELECT unnest(%s::text[]) AS t ORDER BY 1) AS ids",
            (trace_ids,),
        ).fetchall()

    @staticmethod
    def _old_contributions(conn: Any, claimed: Sequence[tuple[str, int]]) -> dict[str, bytes]:
        return {
            trace_id: contrib
            for trace_id, contrib in conn.execute(
                f"SELECT trace_id, contrib FROM traces WHERE {_TRACES_IN}", trace_keys(claimed)
            )
        }

    @staticmethod
    def _apply(conn: Any, delta: dict[tuple[int, int, str], tuple[Stats, int]]) -> None:
        """Add the deltas to the aggregates (commutative), then drop rows nothing refers to."""
        if not delta:
            return
        columns: list[list[Any]] = [[] for _ in range(14)]
        for (bucket, kind, key), (stats, refs) in sorted(delta.items()):
            # the columns follow Stats.to_list(); histograms go in as jsonb text
            *counts, hist, dhist = stats.to_list()
            values = (
                bucket,
                kind,
                key,
                refs,
                *counts,
                encode(hist).decode(),
                encode(dhist).decode(),
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        conn.execute(_APPLY, columns)
        # the buckets as a parameter array: the planner keeps only their days' partitions
        # (the keys' subquery alone reads every day's; docs/decisions.md, "Lookups name the day")
        conn.execute(
            "DELETE FROM agg_stats WHERE refs <= 0 AND bucket = ANY(%s::bigint[])"
            " AND (bucket, kind, key) IN"
            " (SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[]))",
            (sorted(set(columns[0])), *columns[:3]),
        )

    # -- retention ---------------------------------------------------------------------------

    def enforce_retention(
        self, max_age_seconds: float | None, max_bytes: int | None, batch: int = 500
    ) -> int:
        """Drop the day partitions older than the age limit (then the oldest days while the
        database is over ``max_bytes``), and delete DEFAULT's traces not updated for
        ``max_age_seconds`` in bounded batches. Returns the traces removed."""
        removed = self.maintain_partitions(max_age_seconds).traces
        if max_age_seconds:
            cutoff = self._clock() - max_age_seconds
            while True:
                count = self.delete_untouched("traces_default", cutoff, batch)
                removed += count
                if count < batch:
                    break
        if max_bytes:
            removed += self._keep_under(max_age_seconds, max_bytes)
        if removed:
            _logger.info("retention removed %d traces", removed)
        return removed

    def maintain_partitions(
        self, max_age_seconds: float | None, drop_oldest: int = 0, drop: bool = True
    ) -> Maintenance:
        """One maintenance pass (store/partitions.py); skipped, to be retried by the next
        pass, when another collector is maintaining or the tables stay busy past the lock
        timeout. ``drop=False`` only creates (at open: the flags are not recorded yet)."""
        errors = self.db.driver.errors
        try:
            with self.db.write() as conn:
                done = self._maintain(conn, max_age_seconds, drop_oldest, drop)
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            self.maintenance_busy += 1
            self._busy_log.failed(
                "partition maintenance left to the next pass: the tables stayed busy past %s (%s)",
                partitions.LOCK_TIMEOUT,
                first_line(exc),
            )
            return Maintenance(skipped=True)
        except errors.InsufficientPrivilege as exc:
            self.maintenance_denied += 1
            self._denied_log.failed(
                "partition maintenance cannot run: the PostgreSQL user %s may not create or"
                " drop the store's tables (%s); ingest and queries go on, but old days are not"
                " dropped and new days land in the _default partitions until a collector"
                " connects as the tables' owner (docs/collector.md)",
                self.db.writer.info.user,
                first_line(exc),
            )
            return Maintenance(skipped=True)
        if done.dropped or done.created:
            self._busy_log.recovered()
            self._denied_log.recovered()
        return done

    def _maintain(
        self, conn: Any, max_age_seconds: float | None, drop_oldest: int, drop: bool
    ) -> Maintenance:
        if not partitions.claim(conn):
            return Maintenance(skipped=True)
        todo = partitions.plan(
            partitions.existing_days(conn), self._clock(), max_age_seconds, drop_oldest
        )
        retired = todo.drop if drop else ()
        if not retired and not todo.create:
            return Maintenance()
        partitions.lock_tables(conn)
        traces = 0
        delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        for day in retired:
            traces += self._retire(conn, day, set(retired), delta)
            partitions.drop_day(conn, day)
        self._apply(conn, delta)
        for day in todo.create:
            partitions.create_day(conn, day)
        if retired:
            _logger.info(
                "retention dropped the partitions of %s (%d traces)",
                ", ".join(partitions.partition_name("segments", d)[-8:] for d in retired),
                traces,
            )
        return Maintenance(dropped=retired, created=todo.create, traces=traces)

    @staticmethod
    def _retire(
        conn: Any, day: int, retired: set[int], delta: dict[tuple[int, int, str], tuple[Stats, int]]
    ) -> int:
        """Before ``day``'s tables go: the traces they hold (a count) and, subtracted into
        ``delta``, what those traces contributed to minutes of the days that stay (a trace
        that crossed midnight, a segment from a clock off by hours), so the aggregates of the
        days kept stay exact. Only traces reaching outside their day are read (by index)."""
        table = partitions.partition_name("traces", day)
        low, high = partitions.bounds(day, partitions.DAY_SECONDS)
        count = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        straddling: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        for (contrib,) in conn.execute(
            f"SELECT contrib FROM {table} WHERE start_time < %s OR end_time >= %s", (low, high)
        ):
            accumulate(straddling, decode(contrib), -1)
        for slot, (stats, refs) in straddling.items():
            if partitions.day_of(slot[0]) in retired:
                continue  # that aggregate row goes with its own partition
            found = delta.get(slot)
            if found is None:
                delta[slot] = (stats, refs)
            else:
                found[0].merge(stats)
                delta[slot] = (found[0], found[1] + refs)
        return count

    def _keep_under(self, max_age_seconds: float | None, max_bytes: int) -> int:
        """Drop the oldest day partitions (never today's or those ahead) while the database
        uses more than ``max_bytes``; logged once when today alone is over the budget."""
        removed = 0
        for _ in range(partitions.MAX_CHANGES):
            if self.db.size_bytes() <= max_bytes:
                self._over_budget = False
                break
            done = self.maintain_partitions(max_age_seconds, drop_oldest=1)
            if done.skipped:
                break
            removed += done.traces
            if not done.dropped:
                if not self._over_budget:
                    _logger.warning(
                        "--max-db-mb: the database uses %d MiB, over the %d MiB budget, with"
                        " no day older than today left to drop; today's traces are kept",
                        self.db.size_bytes() // (1024 * 1024),
                        max_bytes // (1024 * 1024),
                    )
                self._over_budget = True
                break
        return removed

    def delete_untouched(self, table: str, cutoff: float, batch: int) -> int:
        """Delete one batch of the traces of ``table`` (``traces_default``: ids outside the
        window of day partitions, random ids, replays) not updated since ``cutoff``, with
        their documents and aggregate contributions; returns how many. (bench/store.py runs
        it on a day partition: the row-by-row retention a partition drop replaces.)"""
        return self.db.retrying(lambda conn: self._delete_untouched(conn, table, cutoff, batch))

    def _delete_untouched(self, conn: Any, table: str, cutoff: float, batch: int) -> int:
        found = sorted(
            conn.execute(
                f"SELECT trace_id, day FROM {table} WHERE touched < %s LIMIT %s", (cutoff, batch)
            ).fetchall()
        )
        if not found:
            return 0
        self._lock_traces(conn, [t for t, _ in found])
        delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        old = self._old_contributions(conn, found)
        for contrib in old.values():
            accumulate(delta, decode(contrib), -1)
        # the rows still there once this transaction holds the traces' locks
        keys = trace_keys([(t, d) for t, d in found if t in old])
        conn.execute(f"DELETE FROM segments WHERE {_TRACES_IN}", keys)
        conn.execute(f"DELETE FROM traces WHERE {_TRACES_IN}", keys)
        self._apply(conn, delta)
        return len(found)

    # -- Store -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        try:
            with self.db.read() as conn:
                pending = conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
                retention = self._retention(conn)
            size: int | None = self.db.size_bytes()
        except (
            self.db.driver.Error,
            StoreUnreachable,
        ) as exc:  # /status answers while the database is away
            return {"path": _redacted(self.db.url), "error": first_line(exc)}
        if not pending:
            self._indexed = self._written
        return {
            "path": _redacted(self.db.url),
            "file_bytes": size,
            # traces waiting to be indexed by any collector of the cluster (the shared to-do)
            "pending_traces": pending,
            "documents_stored_seq": self.stored_seq,
            "documents_indexed_seq": self.indexed_seq,
            "index_lag_documents": max(0, self.stored_seq - self.indexed_seq),
            # the retention in force for every collector of this store
            **retention.as_status(),
            # partition maintenance passes of this collector that could not run: tables busy
            # past the lock timeout (the next pass retries), or no right to create/drop tables
            "maintenance_skipped_busy": self.maintenance_busy,
            "maintenance_denied": self.maintenance_denied,
        }

    def close(self) -> None:
        self.db.close()


def _redacted(url: str) -> str:
    """The URL without its password, for /status and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc))
