"""Which store a ``--db`` value names: a ``postgresql://`` (or ``postgres://``) URL is the shared
PostgreSQL store, anything else a SQLite file (or ``:memory:``)."""

from __future__ import annotations

from .postgres import PostgresStore, first_line, is_postgres_url
from .protocol import Store, StoreUnreachable
from .sqlite import SqliteStore


class StoreUnavailable(ValueError):
    """The store named by ``--db`` cannot be opened (one line, for the start-up error)."""


def open_store(location: str, durable: bool = False) -> Store:
    if not is_postgres_url(location):
        return SqliteStore(location, durable=durable)
    try:
        import psycopg
    except ImportError as exc:
        raise StoreUnavailable(
            "--db: a PostgreSQL URL needs psycopg: pip install 'otel-xray-collector[postgres]'"
        ) from exc
    try:
        return PostgresStore(location)
    except (psycopg.Error, StoreUnreachable) as exc:
        cause = exc.__cause__ if isinstance(exc, StoreUnreachable) else exc
        raise StoreUnavailable(
            f"--db: cannot open the PostgreSQL store: {first_line(cause or exc)}"
        ) from exc
