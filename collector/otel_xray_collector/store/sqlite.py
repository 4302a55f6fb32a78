"""The single-node store: SQLite, written by ``SegmentStore``, read by ``TraceQueries``, with
the API's rules and groups in ``ResourceStore``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from .database import Database
from .queries import TraceQueries
from .resources import ResourceStore
from .store import SegmentStore


# ``db`` is a ``Database`` here and a ``SqlDatabase`` (which Database satisfies) in the read-side
# bases; mypy holds mutable attributes invariant across bases, hence the ignore.
class SqliteStore(SegmentStore, TraceQueries, ResourceStore):  # type: ignore[misc]
    """:class:`~otel_xray_collector.store.protocol.Store` over one SQLite file (or memory).

    The write side runs on the ingest thread's connection, the read side on per-thread read
    connections of the same :class:`Database`.
    """

    def __init__(
        self, path: str, durable: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        SegmentStore.__init__(self, Database(path, durable=durable), clock)

    def status(self) -> dict[str, Any]:
        size = 0
        if not self.db.in_memory:
            for suffix in ("", "-wal"):
                try:
                    size += os.path.getsize(self.db.path + suffix)
                except OSError:
                    pass
        return {
            "path": self.db.path,
            "file_bytes": size,
            "documents_stored_seq": self.stored_seq,
            "documents_indexed_seq": self.indexed_seq,
            "index_lag_documents": max(0, self.stored_seq - self.indexed_seq),
            # this collector owns the file: what it last read or recorded is in force (no
            # read here, so /status answers while the file cannot)
            **(self.known_retention or self.retention()).as_status(),
        }

    def close(self) -> None:
        self.db.close()
