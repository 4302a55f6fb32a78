"""SQLite connections and schema.

One writer connection (owned by the ingest thread) and a small pool of reader connections
(HTTP handler threads). WAL lets readers run while the writer commits. ``:memory:`` has no
WAL and cannot be shared between connections, so there a single connection is used by
everyone under one lock: fine for tests and throwaway sessions.

Durability: WAL with ``synchronous=NORMAL``. A transaction whose COMMIT returned is in the
WAL file, so killing the collector (even ``kill -9``) never loses it; an OS crash or power cut
may roll back the last transactions unless ``synchronous=FULL`` is chosen (``durable=True``).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from ..priority import make_current_thread_background
from .migrations import record_sqlite_version

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments(
    seq INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    seg_id TEXT NOT NULL,
    in_progress INTEGER NOT NULL,
    doc BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS segments_by_key ON segments(trace_id, seg_id);
CREATE TABLE IF NOT EXISTS traces(
    trace_id TEXT NOT NULL UNIQUE,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    id_time REAL NOT NULL,
    revision INTEGER NOT NULL,
    summary BLOB NOT NULL,
    facts BLOB NOT NULL,
    contrib BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces(start_time);
CREATE INDEX IF NOT EXISTS traces_by_end ON traces(end_time);
CREATE INDEX IF NOT EXISTS traces_by_id_time ON traces(id_time);
CREATE TABLE IF NOT EXISTS agg(
    bucket INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    key TEXT NOT NULL,
    refs INTEGER NOT NULL,
    stats BLOB NOT NULL,
    PRIMARY KEY(bucket, kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sampling_rules(
    name TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    created_at REAL NOT NULL,
    modified_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS xray_groups(
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resource_versions(kind TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""

READER_POOL_SIZE = 4
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CHECKPOINT_INTERVAL = 0.5


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn``: committed on success, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Database:
    """Owns the SQLite file: schema, pragmas, the writer connection and reader connections."""

    def __init__(self, path: str, durable: bool = False) -> None:
        self.path = path
        self.in_memory = path == ":memory:" or path == ""
        self._durable = durable
        self._shared_lock = threading.RLock()
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._closed = False
        self._side: sqlite3.Connection | None = None
        self._side_lock = threading.Lock()
        if not self.in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.writer = self._connect(writer=True)
        self.writer.executescript(SCHEMA)
        with self._maybe_locked(), _immediate(self.writer) as conn:
            record_sqlite_version(conn)
        self._checkpoint_stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if not self.in_memory:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="otel-xray-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL pages into the database file, off the ingest thread."""
        make_current_thread_background()
        conn = self._connect(writer=False)
        try:
            while not self._checkpoint_stop.wait(CHECKPOINT_INTERVAL):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or locked: the next round catches up
        finally:
            conn.close()

    def _connect(self, writer: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            ":memory:" if self.in_memory else self.path,
            check_same_thread=False,
            isolation_level=None,
            timeout=30.0,
        )
        if writer and not self.in_memory:
            # page size and auto_vacuum must be chosen before the first table exists (no-ops
            # afterwards); 16 KiB pages cut the per-row write cost of ~0.5 KB documents.
            conn.execute("PRAGMA page_size=16384")
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            # Checkpoints run on their own thread (C code, GIL released), not inside commits.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        if not self.in_memory:
            conn.execute("PRAGMA synchronous=" + ("FULL" if self._durable else "NORMAL"))
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
        conn.execute("PRAGMA temp_store=MEMORY")
        self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one transaction (committed on success)."""
        with self._maybe_locked(), _immediate(self.writer) as conn:
            yield conn

    @contextlib.contextmanager
    def side_write(self) -> Iterator[sqlite3.Connection]:
        """A transaction on a connection of its own, for the rare writes made outside the ingest
        thread (sampling rules and groups created through the API).

        The writer connection belongs to the ingest thread and may be inside a transaction at any
        moment; a second connection waits for SQLite's write lock (busy timeout) instead.
        """
        if self.in_memory:
            with self.write() as conn:
                yield conn
            return
        with self._side_lock:
            if self._side is None:
                self._side = self._connect(writer=False)
            with _immediate(self._side) as conn:
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for queries; in WAL mode one consistent snapshot per ``with``."""
        if self.in_memory:
            with self._shared_lock:
                yield self.writer
            return
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect(writer=False)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            if self._readers.qsize() < READER_POOL_SIZE and not self._closed:
                self._readers.put(conn)
            else:
                conn.close()

    @contextlib.contextmanager
    def _maybe_locked(self) -> Iterator[None]:
        if self.in_memory:
            with self._shared_lock:
                yield
        else:
            yield

    def size_bytes(self) -> int:
        """Bytes in use inside the file (free pages excluded): what the size budget counts."""
        with self._maybe_locked():
            page_size = self.writer.execute("PRAGMA page_size").fetchone()[0]
            pages = self.writer.execute("PRAGMA page_count").fetchone()[0]
            free = self.writer.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def close(self) -> None:
        self._closed = True
        self._checkpoint_stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        if not self.in_memory:
            try:
                self.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass
        with self._maybe_locked():
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
