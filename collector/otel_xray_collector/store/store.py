"""The segment store: durable raw documents first, indexes and aggregates right after.

Writes happen in two steps, both on the ingest thread's connection:

1. ``write`` upserts validated documents into ``segments`` in one transaction. Once it commits
   the documents are durable and BatchGetTraces returns them; this is the acknowledgement point.
2. ``index_pending`` re-assembles every trace touched since the last run, replaces its summary
   row and applies the *difference* between its old and new graph contribution to the
   per-minute aggregates. Under a flood this step falls behind and catches up later without
   losing anything, because its work list is the ``segments`` table itself (``seq`` > the
   stored watermark), which also survives restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from otel_xray.wire import loads

from ..documents import META_INDEX, Accepted, PackedDocuments, pack
from .codec import decode, encode
from .database import Database
from .model import assemble, contributions
from .stats import Stats
from .summary import summarize

_logger = logging.getLogger("otel_xray_collector.store")

# A batch goes in as ONE statement over its packed form (documents.py): executemany would
# release and re-acquire the GIL once per row, and with another busy thread each re-acquisition
# can wait a switch interval (measured: 3 us/row idle, over 100 us/row with a busy thread).
# Bodies are cut from one blob with substr() rather than escaped into the JSON array: that
# halves the statement's cost (measured 2.4 vs 3.9 us/document for ~0.5 KB documents).
_UPSERT = (
    "INSERT INTO segments(seq, trace_id, seg_id, in_progress, doc) "
    "SELECT ?1 + key, value->>{trace_id}, value->>{segment_id}, value->>{in_progress}, "
    "CAST(substr(?3, value->>{offset}, value->>{length}) AS TEXT) FROM json_each(?2) WHERE true "
    "ON CONFLICT(trace_id, seg_id) DO UPDATE SET seq=excluded.seq, "
    "in_progress=excluded.in_progress, doc=excluded.doc "
    # a late in-progress copy never replaces the complete document
    "WHERE excluded.in_progress = 0 OR segments.in_progress = 1"
).format(**META_INDEX)
_CHUNK = 500
_PLAUSIBLE_ID_EPOCH = 24 * 3600.0


def id_time(trace_id: str, start: float) -> float:
    """The epoch embedded in an X-Ray trace id, or the start time when the id is random."""
    try:
        embedded = float(int(trace_id[2:10], 16))
    except ValueError:
        return start
    if start and abs(embedded - start) > _PLAUSIBLE_ID_EPOCH:
        return start
    return embedded


class TraceRow(NamedTuple):
    """What a store keeps about one trace besides its documents (the ``traces`` row)."""

    start: float
    end: float
    id_time: float
    summary: bytes
    facts: bytes
    #: the trace's graph contribution: [bucket, kind, key, stats list] rows
    contrib: list[list[Any]]


def index_trace(trace_id: str, docs: list[dict[str, Any]]) -> TraceRow:
    """Summary, filter facts and graph contribution of one trace from all its documents (pure;
    every store recomputes a changed trace with it, so the same documents index the same)."""
    trace = assemble(trace_id, docs)
    summary, facts = summarize(trace)
    contrib = contributions(trace, summary.get("Duration"))
    start = float(summary["StartTime"])
    return TraceRow(
        start,
        start + float(summary.get("Duration") or 0.0),
        id_time(trace_id, start),
        encode(summary),
        encode(facts),
        [[slot[0], slot[1], slot[2], stats.to_list()] for slot, stats in contrib.items()],
    )


class SegmentStore:
    def __init__(self, db: Database, clock: Any = time.time) -> None:
        self.db = db
        self._clock = clock
        conn = db.writer
        self._next_seq: int = (
            (conn.execute("SELECT COALESCE(MAX(seq), 0) FROM segments").fetchone()[0]) + 1
        )
        row = conn.execute("SELECT v FROM meta WHERE k='indexed_seq'").fetchone()
        self.indexed_seq: int = row[0] if row else 0
        self._ensure_touched_column(conn)

    @staticmethod
    def _ensure_touched_column(conn: sqlite3.Connection) -> None:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(traces)")}
        if "touched" not in columns:
            conn.execute("ALTER TABLE traces ADD COLUMN touched REAL NOT NULL DEFAULT 0")
        conn.execute("CREATE INDEX IF NOT EXISTS traces_by_touched ON traces(touched)")

    @property
    def stored_seq(self) -> int:
        return self._next_seq - 1

    def has_pending(self) -> bool:
        return self.indexed_seq < self.stored_seq

    # -- step 1: durable write ---------------------------------------------------------------

    def write(self, documents: Sequence[Accepted]) -> None:
        """Upsert documents in one transaction; later documents with the same id win."""
        if documents:
            self.write_packed([pack(documents)])

    def write_packed(self, batches: Sequence[PackedDocuments]) -> int:
        """Upsert packed batches, in order, in ONE transaction; returns the documents written.

        Sequence numbers follow arrival order, so the index watermark sees every document.
        """
        batches = [b for b in batches if b.total]
        if not batches:
            return 0
        seq = self._next_seq
        with self.db.write() as conn:
            for batch in batches:
                conn.execute(_UPSERT, (seq, batch.meta, batch.blob))
                seq += batch.total
        written = seq - self._next_seq
        self._next_seq = seq
        return written

    # -- step 2: indexes and aggregates -----------------------------------------------------

    def index_pending(self, limit: int = 2000) -> int:
        """Index up to ``limit`` newly stored documents; returns how many were covered."""
        if not self.has_pending():
            return 0
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT seq, trace_id FROM segments WHERE seq > ? ORDER BY seq LIMIT ?",
                (self.indexed_seq, limit),
            ).fetchall()
            upto = rows[-1][0] if rows else self.stored_seq
            trace_ids = list(dict.fromkeys(r[1] for r in rows))
            self._reindex(conn, trace_ids)
            conn.execute("INSERT OR REPLACE INTO meta(k, v) VALUES('indexed_seq', ?)", (upto,))
        self.indexed_seq = upto
        return len(rows)

    def _reindex(self, conn: sqlite3.Connection, trace_ids: list[str]) -> None:
        old = self._old_rows(conn, trace_ids)
        delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        now = self._clock()
        for trace_id in trace_ids:
            previous = old.get(trace_id)
            if previous is not None:
                accumulate(delta, decode(previous[1]), -1)
            docs = [
                loads(d)
                for (d,) in conn.execute("SELECT doc FROM segments WHERE trace_id = ?", (trace_id,))
            ]
            if not docs:
                conn.execute("DELETE FROM traces WHERE trace_id = ?", (trace_id,))
                continue
            row = index_trace(trace_id, docs)
            accumulate(delta, row.contrib, +1)
            revision = (previous[0] + 1) if previous is not None else 1
            conn.execute(
                "INSERT OR REPLACE INTO traces(trace_id, start_time, end_time, id_time, revision,"
                " summary, facts, contrib, touched) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    trace_id,
                    row.start,
                    row.end,
                    row.id_time,
                    revision,
                    row.summary,
                    row.facts,
                    encode(row.contrib),
                    now,
                ),
            )
        self._apply(conn, delta)

    @staticmethod
    def _old_rows(conn: sqlite3.Connection, trace_ids: list[str]) -> dict[str, tuple[int, bytes]]:
        found: dict[str, tuple[int, bytes]] = {}
        for i in range(0, len(trace_ids), _CHUNK):
            chunk = trace_ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for trace_id, revision, contrib in conn.execute(
                f"SELECT trace_id, revision, contrib FROM traces WHERE trace_id IN ({marks})", chunk
            ):
                found[trace_id] = (revision, contrib)
        return found

    @staticmethod
    def _apply(
        conn: sqlite3.Connection, delta: dict[tuple[int, int, str], tuple[Stats, int]]
    ) -> None:
        for (bucket, kind, key), (stats, refs) in delta.items():
            row = conn.execute(
                "SELECT refs, stats FROM agg WHERE bucket=? AND kind=? AND key=?",
                (bucket, kind, key),
            ).fetchone()
            if row is not None:
                current = Stats.from_list(decode(row[1]))
                current.merge(stats)
                refs += row[0]
            else:
                current = stats
            if refs <= 0:
                conn.execute(
                    "DELETE FROM agg WHERE bucket=? AND kind=? AND key=?", (bucket, kind, key)
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO agg(bucket, kind, key, refs, stats) VALUES (?,?,?,?,?)",
                    (bucket, kind, key, refs, encode(current.to_list())),
                )

    # -- retention --------------------------------------------------------------------------

    def enforce_retention(
        self, max_age_seconds: float | None, max_bytes: int | None, batch: int = 500
    ) -> int:
        """Delete traces last updated before the age limit, then oldest first over the size
        budget. Bounded work per call; returns the number of traces deleted."""
        deleted = 0
        if max_age_seconds:
            cutoff = self._clock() - max_age_seconds
            while True:
                with self.db.write() as conn:
                    ids = [
                        r[0]
                        for r in conn.execute(
                            "SELECT trace_id FROM traces WHERE touched < ? LIMIT ?", (cutoff, batch)
                        )
                    ]
                    self._delete(conn, ids)
                deleted += len(ids)
                if len(ids) < batch:
                    break
        if max_bytes:
            rounds = 0
            while self.db.size_bytes() > max_bytes and rounds < 100:
                rounds += 1
                with self.db.write() as conn:
                    ids = [
                        r[0]
                        for r in conn.execute(
                            "SELECT trace_id FROM traces ORDER BY touched LIMIT ?", (batch,)
                        )
                    ]
                    if not ids:
                        break
                    self._delete(conn, ids)
                deleted += len(ids)
            if rounds:
                self.db.incremental_vacuum()
        if deleted:
            _logger.info("retention removed %d traces", deleted)
        return deleted

    def _delete(self, conn: sqlite3.Connection, trace_ids: list[str]) -> None:
        if not trace_ids:
            return
        old = self._old_rows(conn, trace_ids)
        delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        for _, contrib in old.values():
            accumulate(delta, decode(contrib), -1)
        for i in range(0, len(trace_ids), _CHUNK):
            chunk = trace_ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM segments WHERE trace_id IN ({marks})", chunk)
            conn.execute(f"DELETE FROM traces WHERE trace_id IN ({marks})", chunk)
        self._apply(conn, delta)


def accumulate(
    delta: dict[tuple[int, int, str], tuple[Stats, int]], encoded: Iterable[list[Any]], sign: int
) -> None:
    for bucket, kind, key, values in encoded:
        slot = (bucket, kind, key)
        found = delta.get(slot)
        if found is None:
            stats = Stats()
            delta[slot] = (stats, 0)
            found = delta[slot]
        found[0].merge(Stats.from_list(values), sign)
        delta[slot] = (found[0], found[1] + sign)
