"""Versioned schemas: each store records its schema version; a collector refuses a database a
newer collector migrated further (one line on stderr, exit code 1) and adopts its own."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from otel_xray_collector.store.migrations import POSTGRES, SQLITE_VERSION, SchemaTooNew
from otel_xray_collector.store.open import open_store
from otel_xray_collector.store.postgres import is_postgres_url

from .support.postgres import BOTH_STORES
from .support.process import start_error

pytestmark = BOTH_STORES


def versions(db: str) -> list[int]:
    if is_postgres_url(db):
        with psycopg.connect(db) as conn:
            return [r[0] for r in conn.execute("SELECT version FROM xray_schema ORDER BY 1")]
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM xray_schema ORDER BY 1")]


def set_version(db: str, version: int) -> None:
    if is_postgres_url(db):
        with psycopg.connect(db) as conn:
            conn.execute("INSERT INTO xray_schema(version) VALUES (%s)", (version,))
        return
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO xray_schema(version) VALUES (?)", (version,))


def known_version(db: str) -> int:
    return len(POSTGRES) if is_postgres_url(db) else SQLITE_VERSION


def test_a_new_database_records_its_version_once(db: str) -> None:
    for _ in range(2):  # the second open finds the version and adds nothing
        open_store(db).close()
    found = versions(db)
    assert found[-1] == known_version(db)
    assert len(found) == len(set(found))


def test_a_newer_database_is_refused(db: str) -> None:
    open_store(db).close()
    newer = known_version(db) + 1
    set_version(db, newer)
    with pytest.raises(SchemaTooNew, match=f"schema version {newer} is newer"):
        open_store(db)
    line = start_error(db)
    assert f"schema version {newer} is newer than this collector understands" in line
    assert "upgrade otel-xray-collector" in line
