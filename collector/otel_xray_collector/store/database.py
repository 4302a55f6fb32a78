"""SQLite connections and schema.

One writer connection (owned by the ingest thread) and a small pool of reader connections
(HTTP handler threads). WAL lets readers run while the writer commits. ``:memory:`` has no
WAL and cannot be shared between connections, so there a single connection is used by
everyone under one lock: fine for tests and throwaway sessions.

Availability: an error that says the file or its disk cannot serve now (I/O error, disk full,
locked beyond the busy timeout, a file that is gone, replaced or corrupt) is raised as
:class:`~otel_xray_collector.store.protocol.StoreUnreachable`, which the API answers with a 503;
the connections that met it are closed and the next use opens fresh ones, so a file put right
again is used again without a restart. Any other SQLite error (a query bug) passes unchanged.

Durability: WAL with ``synchronous=NORMAL``. A transaction whose COMMIT returned is in the
WAL file, so killing the collector (even ``kill -9``) never loses it; an OS crash or power cut
may roll back the last transactions unless ``synchronous=FULL`` is chosen (``durable=True``).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from ..priority import make_current_thread_background
from .migrations import record_sqlite_version
from .protocol import StoreUnreachable

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
CREATE TABLE IF NOT EXISTS xray_settings(name TEXT PRIMARY KEY, value REAL NOT NULL);
"""

READER_POOL_SIZE = 4
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CHECKPOINT_INTERVAL = 0.5

#: SQLite primary result codes that say the file or its disk cannot serve now, not that the
#: statement is wrong: locked beyond the busy timeout, no write permission (or the file was
#: unlinked: READONLY_DBMOVED), I/O error (disk error, file size limit), corrupt pages, disk
#: full, cannot open (the file is gone), a WAL locking protocol failure, not a database file.
UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)


def is_unavailable(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means the store cannot serve now (retry later) rather than a bug."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in UNAVAILABLE_CODES


def unavailable_error(exc: sqlite3.Error, path: str) -> StoreUnreachable:
    return StoreUnreachable(f"SQLite store unavailable ({path}): {exc}")


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn``: committed on success, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite already rolled back after an I/O error or a full disk: a second ROLLBACK
        # would raise "no transaction is active" and hide the error that matters.
        if conn.in_transaction:
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
        self._all_lock = threading.Lock()
        self._closed = False
        self._side: sqlite3.Connection | None = None
        self._side_lock = threading.Lock()
        # Bumped when the file turned out unavailable: the writer, side and checkpoint
        # connections opened before reopen at their next use (on their own thread).
        self._generation = 0
        self._writer_generation = 0
        self._side_generation = 0
        if not self.in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.writer = self._connect(writer=True, create=True)
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
        conn: sqlite3.Connection | None = None
        generation = -1
        try:
            while not self._checkpoint_stop.wait(CHECKPOINT_INTERVAL):
                try:
                    if conn is None or generation != self._generation:
                        self._discard(conn)
                        conn, generation = None, self._generation
                        conn = self._connect(writer=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    if is_unavailable(exc):  # busy: next round; a bad file: reopen when back
                        generation = -1
        finally:
            self._discard(conn)

    def _connect(self, writer: bool, create: bool = False) -> sqlite3.Connection:
        """A new connection; only the writer opened at start may create the file (a reader or
        a reopened writer finding it gone must fail, not start an empty database)."""
        if self.in_memory:
            target, uri = ":memory:", False
        elif create:
            target, uri = self.path, False
        else:
            target, uri = (
                f"file:{urllib.parse.quote(str(Path(self.path).absolute()))}?mode=rw",
                True,
            )
        conn = sqlite3.connect(
            target, check_same_thread=False, isolation_level=None, timeout=30.0, uri=uri
        )
        try:
            if writer and not self.in_memory:
                # page size and auto_vacuum must be chosen before the first table exists
                # (no-ops afterwards); 16 KiB pages cut the per-row write cost of ~0.5 KB
                # documents.
                conn.execute("PRAGMA page_size=16384")
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("PRAGMA journal_mode=WAL")
                # Checkpoints run on their own thread (C code, GIL released), not in commits.
                conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            if not self.in_memory:
                conn.execute("PRAGMA synchronous=" + ("FULL" if self._durable else "NORMAL"))
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
            conn.execute("PRAGMA temp_store=MEMORY")
        except BaseException:
            conn.close()
            raise
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _discard(self, conn: sqlite3.Connection | None) -> None:
        if conn is None:
            return
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    @contextlib.contextmanager
    def _unavailable_as_store_error(self) -> Iterator[None]:
        """SQLite errors that mean the file cannot serve now as :class:`StoreUnreachable`;
        the connections opened before are retired (one that met a corrupt or replaced file
        keeps failing even once the file is good again). Other errors pass unchanged."""
        try:
            yield
        except sqlite3.Error as exc:
            if not is_unavailable(exc):
                raise
            if not self.in_memory:
                self._generation += 1
                while True:
                    try:
                        self._discard(self._readers.get_nowait())
                    except queue.Empty:
                        break
            raise unavailable_error(exc, self.path) from exc

    def _current_writer(self) -> sqlite3.Connection:
        """The writer connection, reopened if the file was unavailable since it was opened
        (called on the ingest thread, the writer's owner)."""
        if self._writer_generation != self._generation:
            generation = self._generation
            fresh = self._connect(writer=True)
            self._discard(self.writer)
            self.writer, self._writer_generation = fresh, generation
        return self.writer

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one transaction (committed on success)."""
        with self._maybe_locked(), self._unavailable_as_store_error():
            with _immediate(self._current_writer()) as conn:
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
        with self._side_lock, self._unavailable_as_store_error():
            if self._side is None or self._side_generation != self._generation:
                generation = self._generation
                self._discard(self._side)
                self._side = None
                self._side = self._connect(writer=False)
                self._side_generation = generation
            with _immediate(self._side) as conn:
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for queries; in WAL mode one consistent snapshot per ``with``."""
        if self.in_memory:
            with self._shared_lock:
                yield self.writer
            return
        with self._unavailable_as_store_error():
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                conn = self._connect(writer=False)
            healthy = False
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
                healthy = True
            finally:
                if healthy and self._readers.qsize() < READER_POOL_SIZE and not self._closed:
                    self._readers.put(conn)
                else:
                    self._discard(conn)

    @contextlib.contextmanager
    def _maybe_locked(self) -> Iterator[None]:
        if self.in_memory:
            with self._shared_lock:
                yield
        else:
            yield

    def size_bytes(self) -> int:
        """Bytes in use inside the file (free pages excluded): what the size budget counts."""
        with self._maybe_locked(), self._unavailable_as_store_error():
            writer = self._current_writer()
            page_size = writer.execute("PRAGMA page_size").fetchone()[0]
            pages = writer.execute("PRAGMA page_count").fetchone()[0]
            free = writer.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def incremental_vacuum(self) -> None:
        """Give the file's free pages back to the file system (``auto_vacuum=INCREMENTAL``), on
        the writer like any write: a file that cannot be written is a StoreUnreachable and the
        writer is reopened. Through ``executescript``, which steps the pragma to its end: each
        step frees one page, and ``execute`` (even with ``fetchall``) stops after the first."""
        if self.in_memory:
            return
        with self._unavailable_as_store_error():
            self._current_writer().executescript("PRAGMA incremental_vacuum")

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
        with self._maybe_locked(), self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
