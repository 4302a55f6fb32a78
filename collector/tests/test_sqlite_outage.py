"""A SQLite file the collector cannot use answers 503, like a PostgreSQL outage, and is used
again once it is good (no restart).

Real collector processes over real files: the file is corrupted in place under the running
collector (database, WAL and shared-memory index: every connection then fails the same way,
whatever it has cached), and a full disk is the collector's own file size limit (``prlimit``,
which binds root too), so each write fails with an I/O error. A query bug is not an outage.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from otel_xray_collector.store.protocol import StoreUnreachable
from otel_xray_collector.store.sqlite import SqliteStore

from .conftest import xray_client_for
from .support.process import CollectorProcess
from .test_shared_store import WINDOW, call_pair

OUTAGE_LOG = "answering 503 until the store is back"


@pytest.fixture
def sqlite_collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    collector = CollectorProcess(tmp_path / "x.db", otlp=False)
    try:
        yield collector
    finally:
        collector.kill()


def wait_indexed(collector: CollectorProcess) -> None:
    """Until the collector has indexed every document it wrote (its own status says so)."""
    while collector.status()["store"]["index_lag_documents"]:
        pass


def put(client: Any, doc: dict[str, Any]) -> None:
    answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
    assert answer["UnprocessedTraceSegments"] == []


def assert_503(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503, error
    assert error["Error"]["Code"] == "ServiceUnavailable"
    assert "SQLite store unavailable" in error["Error"]["Message"]


def stored_trace_ids(client: Any) -> list[str]:
    return sorted(s["Id"] for s in client.get_trace_summaries(**WINDOW)["TraceSummaries"])


def assert_one_outage_logged(collector: CollectorProcess) -> None:
    assert collector.terminate() == 0  # and its stderr read to the end
    logged = collector.stderr_text()
    assert logged.count(OUTAGE_LOG) == 1, logged  # once per outage, not once per request
    # each failed write is counted, the outage is logged once (rate-limited), not per batch
    assert logged.count("documents failed: SQLite store unavailable") == 1, logged
    assert "internal error answering" not in logged  # no request became a 500


def test_a_corrupt_file_is_answered_503_and_used_again_once_repaired(
    sqlite_collector: CollectorProcess,
) -> None:
    collector = sqlite_collector
    path = Path(collector.db)
    client = xray_client_for(collector.endpoint_url, attempts=1)
    before, after = call_pair(0)[0], call_pair(1)[0]
    put(client, before)
    wait_indexed(collector)
    assert stored_trace_ids(client) == [before["trace_id"]]  # readers are open and warm
    # Everything into the database file (the WAL emptied), then keep a copy of it.
    with sqlite3.connect(path) as own:
        assert own.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    good = path.read_bytes()
    for file in (path, path.with_name("x.db-wal"), path.with_name("x.db-shm")):
        with file.open("r+b") as out:
            out.write(os.urandom(max(file.stat().st_size, 4096)))
    assert_503(lambda: client.get_trace_summaries(**WINDOW))
    assert_503(lambda: client.batch_get_traces(TraceIds=[before["trace_id"]]))
    assert_503(lambda: put(client, after))
    status = collector.status()
    assert status["store_unreachable"] == 3
    assert status["ingest"]["store_errors"] == 1  # the failed write is counted
    # Repaired in place (a restore): the next good input is stored and everything is read.
    with path.open("r+b") as out:
        out.write(good)
        out.truncate()
    os.truncate(path.with_name("x.db-wal"), 0)
    put(client, after)
    wait_indexed(collector)
    assert stored_trace_ids(client) == sorted([before["trace_id"], after["trace_id"]])
    assert collector.status()["ingest"]["store_errors"] == 1
    assert_one_outage_logged(collector)


def test_a_full_disk_fails_writes_with_503_and_the_next_write_is_stored(
    sqlite_collector: CollectorProcess,
) -> None:
    collector = sqlite_collector
    client = xray_client_for(collector.endpoint_url, attempts=1)
    before, lost, after = call_pair(0)[0], call_pair(1)[0], call_pair(2)[0]
    put(client, before)
    wait_indexed(collector)
    pid = collector.process.pid
    unlimited = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    # No file of the collector may grow past one byte: each SQLite write fails (EFBIG).
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
    try:
        assert_503(lambda: put(client, lost))
        assert_503(lambda: put(client, lost))
        status = collector.status()
        assert status["ingest"]["store_errors"] == 2
        assert status["store_unreachable"] == 2
        assert stored_trace_ids(client) == [before["trace_id"]]  # reads still answer
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, unlimited)
    put(client, after)
    wait_indexed(collector)
    assert stored_trace_ids(client) == sorted([before["trace_id"], after["trace_id"]])
    assert_one_outage_logged(collector)


def test_a_removed_file_is_unavailable_not_recreated_empty(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStore(str(path))
    try:
        aside = tmp_path / "aside"
        aside.mkdir()
        for name in ("x.db", "x.db-wal", "x.db-shm"):
            (tmp_path / name).rename(aside / name)
        with pytest.raises(StoreUnreachable, match="unable to open database file"):
            store.scan_summaries(0, 4e9, "TraceId", None, lambda _: True, 10, 10)
        assert not path.exists()  # a reader never starts an empty database in its place
        for name in ("x.db", "x.db-wal", "x.db-shm"):
            (aside / name).rename(tmp_path / name)
        assert store.scan_summaries(0, 4e9, "TraceId", None, lambda _: True, 10, 10)[0] == []
    finally:
        store.close()


def test_a_query_error_stays_a_bug_not_an_outage(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "x.db"))
    try:
        with pytest.raises(sqlite3.OperationalError) as caught, store.db.read() as conn:
            conn.execute("SELECT no_such_column FROM traces")
        assert not isinstance(caught.value, StoreUnreachable)
        with pytest.raises(sqlite3.IntegrityError), store.db.write() as conn:
            conn.execute("INSERT INTO meta(k, v) VALUES (NULL, NULL)")
        with store.db.read() as conn:  # the store still serves
            assert conn.execute("SELECT COUNT(*) FROM traces").fetchone() == (0,)
    finally:
        store.close()
