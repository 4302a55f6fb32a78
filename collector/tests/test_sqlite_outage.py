"""A SQLite file the collector cannot use answers 503, like a PostgreSQL outage, and is used
again once it is good (no restart).

Real collector processes over real files: the file is corrupted in place under the running
collector (database, WAL and shared-memory index: every connection then fails the same way,
whatever it has cached), and a full disk is the collector's own file size limit (``prlimit``,
which binds root too), so each write fails with an I/O error. A query bug is not an outage.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from botocore.exceptions import ClientError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otel_xray_collector.documents import pack
from otel_xray_collector.ingest.validate import parse_body
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


@contextlib.contextmanager
def full_disk(collector: CollectorProcess) -> Iterator[None]:
    """No file of the collector may grow past one byte while inside: each SQLite write fails
    (EFBIG), as on a full disk."""
    pid = collector.process.pid
    unlimited = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, unlimited)


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
    with full_disk(collector):
        assert_503(lambda: put(client, lost))
        assert_503(lambda: put(client, lost))
        status = collector.status()
        assert status["ingest"]["store_errors"] == 2
        assert status["store_unreachable"] == 2
        assert stored_trace_ids(client) == [before["trace_id"]]  # reads still answer
    put(client, after)
    wait_indexed(collector)
    assert stored_trace_ids(client) == sorted([before["trace_id"], after["trace_id"]])
    assert_one_outage_logged(collector)


def otlp_request(name: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """One server span of service ``name``, ending now (an X-Ray trace id of this second)."""
    now = time.time_ns()
    span = trace_pb2.Span(
        trace_id=(now // 10**9).to_bytes(4, "big") + os.urandom(12),
        span_id=os.urandom(8),
        name=name,
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 10**6,
        end_time_unix_nano=now,
    )
    service = common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=name))
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=[service]),
                scope_spans=[trace_pb2.ScopeSpans(spans=[span])],
            )
        ]
    )


def post_otlp_http(collector: CollectorProcess, name: str) -> int:
    """POST one request to the ``--otlp-http`` listener; the HTTP status."""
    assert collector.otlp_http_address is not None
    host, port = collector.otlp_http_address
    request = urllib.request.Request(
        f"http://{host}:{port}/v1/traces",
        data=otlp_request(name).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_otlp_receivers_log_a_store_outage_as_one_not_per_request(tmp_path: Path) -> None:
    """Every OTLP request refused while the store is away (gRPC UNAVAILABLE, HTTP 503): the log
    says so once when it starts and once, with the count, when the store is back."""
    collector = CollectorProcess(tmp_path / "x.db")
    try:
        assert collector.otlp_address is not None
        host, port = collector.otlp_address
        channel = grpc.insecure_channel(f"{host}:{port}")
        grpc_stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        refused = 3
        with full_disk(collector):
            for _ in range(refused):
                with pytest.raises(grpc.RpcError) as caught:
                    grpc_stub.Export(otlp_request("over-grpc"), timeout=10)
                assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
                assert "SQLite store unavailable" in caught.value.details()
                assert post_otlp_http(collector, "over-http") == 503
        grpc_stub.Export(otlp_request("over-grpc"), timeout=10)
        assert post_otlp_http(collector, "over-http") == 200
        channel.close()
        store_errors = collector.status()["ingest"]["store_errors"]
        assert store_errors == 2 * refused  # each refused request was one failed write
        assert collector.terminate() == 0  # and its stderr read to the end
    finally:
        collector.kill()
    logged = collector.stderr_text()
    for transport in ("OTLP/gRPC", "OTLP/HTTP"):
        # one line when the outage starts, not one per refused request ...
        assert logged.count(f"{transport} request: pipeline refused") == 1, logged
        assert "SQLite store unavailable" in logged
        # ... and one when it ends, with how many were refused
        assert logged.count(f"{transport} requests: working again") == 1, logged
        assert (
            f"({refused} failures during the outage)"
            in logged.split(f"{transport} requests: working again")[1].splitlines()[0]
        )
    assert logged.count("documents failed: SQLite store unavailable") == 1, logged
    assert logged.count("store writes: working again") == 1, logged
    assert f"({store_errors} failures during the outage)" in logged
    assert "still failing" not in logged  # the outage lasted less than a minute


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


@contextlib.contextmanager
def own_files_limited_to_one_byte() -> Iterator[None]:
    """This process may not grow any file past one byte while inside (SQLite's writes fail
    with EFBIG, an I/O error); Python ignores SIGXFSZ, so nothing else happens."""
    unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, unlimited[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, unlimited)


def test_a_failing_vacuum_after_retention_is_an_outage_and_the_writer_reopened(
    tmp_path: Path,
) -> None:
    """Retention gives freed pages back with ``PRAGMA incremental_vacuum`` on the writer: when
    that fails because the file cannot be written, it is a StoreUnreachable (the ingest thread
    counts it as an outage) and the writer is reopened like after any failed write."""
    store = SqliteStore(str(tmp_path / "x.db"))
    try:
        pad = "x" * 4000
        docs = [dict(call_pair(i)[0], metadata={"default": {"pad": pad}}) for i in range(40)]
        for doc in docs:
            accepted = list(parse_body(json.dumps(doc).encode()))
            store.write_packed([pack(accepted)])  # type: ignore[arg-type]
        while store.index_pending(1000):
            pass
        assert store.enforce_retention(1e-9, None) == len(docs)  # all traces, pages left free
        with store.db.read() as conn:
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
        writer = store.db.writer
        with own_files_limited_to_one_byte(), pytest.raises(StoreUnreachable, match="I/O"):
            # over any size budget with no trace left to delete: only the vacuum writes
            store.enforce_retention(None, 1)
        store.enforce_retention(None, 1)  # the file is good again: the vacuum runs ...
        assert store.db.writer is not writer  # ... on a reopened writer
        with store.db.read() as conn:
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        store.close()
