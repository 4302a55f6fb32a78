"""What the shared read-side and resource code asks of a SQL database, whichever it is.

``TraceQueries`` and ``ResourceStore`` write plain SQL with ``?`` placeholders and run it on a
connection from ``read()`` or ``side_write()``. SQLite's connections fit as they are; the
PostgreSQL store hands out a thin adapter (``postgres.QmarkConnection``) so the same queries run
there unchanged: one copy of each query, two databases.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class SqlConnection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


class SqlDatabase(Protocol):
    def read(self) -> AbstractContextManager[SqlConnection]:
        """A connection for queries: one consistent snapshot per ``with``."""
        ...

    def side_write(self) -> AbstractContextManager[SqlConnection]:
        """A write transaction for the API's resources (rules, groups), off the ingest path."""
        ...
