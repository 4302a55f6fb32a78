"""Day partitions of the PostgreSQL store: retention drops whole days of traces (segments,
summaries, aggregates) instead of deleting rows, undated traces wait in DEFAULT for the
last-update rule, a v2 database migrates with its data, and the retention in force is the
store's, shared by every collector."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.documents import Accepted, pack
from otel_xray_collector.ingest.pipeline import IngestPipeline
from otel_xray_collector.ingest.validate import parse_body
from otel_xray_collector.store import partitions
from otel_xray_collector.store.codec import decode, encode
from otel_xray_collector.store.migrations import POSTGRES, migrate
from otel_xray_collector.store.partitions import DAY_SECONDS, day_of, partition_name
from otel_xray_collector.store.postgres import Maintenance, PostgresStore
from otel_xray_collector.store.stats import Stats
from otel_xray_collector.store.store import accumulate, index_trace

from .conftest import make_config, xray_client_for
from .support.postgres import PostgresServer
from .support.process import CollectorProcess
from .support.segments import http_block, new_id, new_trace_id, segment
from .test_shared_store import WINDOW, await_true, edge_totals
from .test_store import Clock

#: A trace id whose first 32 bits are not a time (a random W3C id): day 0, no partition.
UNDATED_EPOCH = 1


def call_trace(start: float, trace_id: str | None = None) -> list[dict[str, Any]]:
    """``front`` calling ``back`` at ``start``: two documents of one trace (an edge)."""
    call_id = new_id()
    trace_id = trace_id or new_trace_id(start)
    front = segment(
        "front",
        trace_id=trace_id,
        start=start,
        duration=0.5,
        http=http_block("http://front/"),
        subsegments=[
            {
                "id": call_id,
                "name": "back",
                "start_time": start + 0.1,
                "end_time": start + 0.2,
                "traced": True,
                "http": http_block("http://back/"),
            }
        ],
    )
    back = segment("back", trace_id=trace_id, parent_id=call_id, start=start + 0.1, duration=0.1)
    return [front, back]


def write(store: PostgresStore, docs: list[dict[str, Any]], index: bool = True) -> None:
    accepted = [o for d in docs for o in parse_body(json.dumps(d).encode())]
    assert all(isinstance(o, Accepted) for o in accepted), accepted
    store.write_packed([pack(accepted)])  # type: ignore[arg-type]
    while index and store.index_pending(1000):
        pass


def tables(url: str, table: str) -> set[str]:
    """The partitions of ``table`` (pg_inherits)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            (table,),
        ).fetchall()
    return {r[0] for r in rows}


def day_tables(url: str, days: range | list[int]) -> dict[str, set[str]]:
    """Which of ``days`` have a partition, per table."""
    return {
        table: {partition_name(table, d) for d in days} & tables(url, table)
        for table, _, _ in partitions.TABLES
    }


def all_of(days: range | list[int]) -> dict[str, set[str]]:
    return {table: {partition_name(table, d) for d in days} for table, _, _ in partitions.TABLES}


def homes(url: str) -> list[str]:
    """The partition holding each row of segments and traces, and those of agg_stats."""
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT tableoid::regclass::text FROM segments UNION ALL"
                " SELECT tableoid::regclass::text FROM traces UNION ALL"
                " SELECT DISTINCT tableoid::regclass::text FROM agg_stats"
            )
        ]


def aggregates_match_traces(url: str) -> None:
    """Every aggregate row is exactly the sum of the stored traces' contributions (no lost,
    no doubled, no orphaned update), and every contribution has its row."""
    with psycopg.connect(url) as conn:
        expected: dict[tuple[int, int, str], tuple[Stats, int]] = {}
        for (contrib,) in conn.execute("SELECT contrib FROM traces"):
            accumulate(expected, decode(contrib), +1)
        found = {
            (b, k, key): (refs, total)
            for b, k, key, refs, total in conn.execute(
                "SELECT bucket, kind, key, refs, total FROM agg_stats"
            )
        }
    assert found == {slot: (refs, stats.total) for slot, (stats, refs) in expected.items()}


@pytest.fixture
def now() -> float:
    """Noon today (UTC): the tests' days are whole days before and after it."""
    return day_of(time.time()) * DAY_SECONDS + DAY_SECONDS / 2


@pytest.fixture
def store(postgres_db: str, now: float) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_db, clock=Clock(now))
    try:
        yield opened
    finally:
        opened.close()


def clock_of(store: PostgresStore) -> Clock:
    clock = store._clock
    assert isinstance(clock, Clock)
    return clock


def test_retention_drops_whole_days_and_keeps_the_window_exact(
    store: PostgresStore, postgres_db: str, now: float
) -> None:
    today = day_of(now)
    clock = clock_of(store)
    store.record_retention(24 * 7, 0)  # a week: partitions for days -7 .. +2
    assert store.maintain_partitions(store.retention().max_age_seconds).created
    assert day_tables(postgres_db, range(today - 5, today + 3)) == all_of(
        range(today - 5, today + 3)
    )
    traces: dict[int, list[str]] = {}
    for back in range(6):  # two traces on each of days -5 .. 0
        for hour in (2, 20):
            docs = call_trace((today - back) * DAY_SECONDS + hour * 3600)
            write(store, docs)
            traces.setdefault(today - back, []).append(docs[0]["trace_id"])
    # a trace of day -3 whose segments end on day -2 (past midnight): its edge on day -2 must
    # leave with it
    straddling = call_trace((today - 2) * DAY_SECONDS - 0.15, new_trace_id((today - 3) * 86400))
    write(store, straddling)
    # undated ids (DEFAULT): one last updated four days ago, one now
    clock.now = now - 4 * DAY_SECONDS
    stale = call_trace(now - 4 * DAY_SECONDS, new_trace_id(UNDATED_EPOCH))
    write(store, stale)
    clock.now = now
    fresh = call_trace(now - 60, new_trace_id(UNDATED_EPOCH))
    write(store, fresh)
    # a document of a day -4 trace written, not indexed yet when its day is dropped
    late = call_trace((today - 4) * DAY_SECONDS + 7200)
    write(store, late, index=False)

    store.record_retention(72, None)
    clock.now = now + DAY_SECONDS  # tomorrow: the cutoff's day is day -2
    removed = store.enforce_retention(72 * 3600, None)
    # days -5, -4, -3 dropped (4 + 2 traces indexed there, the straddling one) + the stale one
    assert removed == 8
    assert day_tables(postgres_db, range(today - 7, today + 4)) == all_of(
        range(today - 2, today + 4)
    )
    assert {"segments_default", "traces_default", "agg_stats_default"} <= (
        tables(postgres_db, "segments")
        | tables(postgres_db, "traces")
        | tables(postgres_db, "agg_stats")
    )
    while store.index_pending(1000):  # the late trace's queue entry: its day is gone
        pass
    aggregates_match_traces(postgres_db)

    kept = [t for day in range(today - 2, today + 1) for t in traces[day]] + [fresh[0]["trace_id"]]
    gone = [t for day in range(today - 5, today - 2) for t in traces[day]]
    gone += [straddling[0]["trace_id"], stale[0]["trace_id"], late[0]["trace_id"]]
    collector = Collector(make_config(postgres_db, retention_hours=0)).start()
    try:
        client = xray_client_for(collector.endpoint_url)
        summaries = client.get_paginator("get_trace_summaries").paginate(**WINDOW)
        listed = [s["Id"] for page in summaries for s in page["TraceSummaries"]]
        assert sorted(listed) == sorted(kept)
        found: list[str] = []
        for start in range(0, len(kept + gone), 5):
            page = client.batch_get_traces(TraceIds=(kept + gone)[start : start + 5])
            found.extend(t["Id"] for t in page["Traces"])
            assert all(len(t["Segments"]) == 2 for t in page["Traces"])
        assert sorted(found) == sorted(kept)
        assert edge_totals(client) == {("front", "front"): 7, ("front", "back"): 7}
        # the day the straddling trace ended on counts only the kept traces of that day
        day = {"StartTime": (today - 2) * DAY_SECONDS, "EndTime": (today - 1) * DAY_SECONDS}
        graph = client.get_service_graph(**day)["Services"]
        names = {s["ReferenceId"]: s["Name"] for s in graph}
        day_edges = {
            (s["Name"], names[e["ReferenceId"]]): e["SummaryStatistics"]["TotalCount"]
            for s in graph
            for e in s["Edges"]
        }
        assert day_edges == {("front", "front"): 2, ("front", "back"): 2}
    finally:
        collector.stop()


def test_default_rows_of_a_day_move_into_its_new_partition(
    store: PostgresStore, postgres_db: str, now: float
) -> None:
    today = day_of(now)
    ahead = today + partitions.AHEAD_DAYS + 1  # a clock three days fast: no partition yet
    docs = call_trace(ahead * DAY_SECONDS + 600)
    write(store, docs)
    where = homes(postgres_db)
    assert where == ["segments_default"] * 2 + ["traces_default", "agg_stats_default"]

    clock_of(store).now = now + DAY_SECONDS  # that day enters the window
    assert ahead in store.maintain_partitions(72 * 3600).created
    where = homes(postgres_db)
    assert where == [partition_name(t, ahead) for t in ("segments", "segments", "traces")] + [
        partition_name("agg_stats", ahead)
    ]
    trace_id = docs[0]["trace_id"]
    assert len(store.load_documents([trace_id])[trace_id]) == 2
    edges = {
        s["Name"]: [e["SummaryStatistics"]["TotalCount"] for e in s["Edges"]]
        for s in store.service_graph(0, 4_000_000_000)
    }
    assert edges["front"] == [1]
    aggregates_match_traces(postgres_db)
    write(store, call_trace(ahead * DAY_SECONDS + 900))  # new documents land in it directly
    aggregates_match_traces(postgres_db)


def test_concurrent_maintenance_and_ingest_by_two_collectors(postgres_db: str, now: float) -> None:
    """Collectors ingest traces of days -4 .. 0 while two others keep dropping and
    re-creating the partitions of days -4 .. -2 (retention switched between 1 and 5 days)
    and the API of another is read: no error reaches a writer, an indexer, a maintainer or an
    API client, and the aggregates stay exactly the sum of the traces kept. (Each store stands
    for one collector: a collector runs its writes and retention passes on its ingest thread.)"""
    today = day_of(now)
    ingesters = [PostgresStore(postgres_db, clock=Clock(now)) for _ in range(2)]
    maintainers = [PostgresStore(postgres_db, clock=Clock(now)) for _ in range(2)]
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported by the test below
                errors.append(exc)
                with progress:
                    progress.notify_all()

        return run

    changes = [0]  # partitions dropped or created so far, by either maintainer
    progress = threading.Condition()

    def ingest(store: PostgresStore, seed: int) -> None:
        for round_ in range(30):
            with progress:  # each round after at least one more partition change
                progress.wait_for(lambda r=round_: changes[0] > r or bool(errors))
            docs: list[dict[str, Any]] = []
            for back in range(5):
                docs += call_trace((today - back) * DAY_SECONDS + seed * 100 + round_)
            write(store, docs)

    def maintain(store: PostgresStore) -> None:
        passes = 0
        while not done.is_set() or passes < 4:
            passes += 1
            age = (1 if passes % 2 else 5) * DAY_SECONDS
            did = store.maintain_partitions(age)
            store.enforce_retention(age, None)
            with progress:
                changes[0] += len(did.dropped) + len(did.created)
                progress.notify_all()

    # the API of a collector over the same store, through boto3 without retries: a 5xx
    # (a deadlock or a vanished table surfacing) would raise
    api = Collector(make_config(postgres_db, retention_hours=0)).start()
    client = xray_client_for(api.endpoint_url, attempts=1)
    calls = [0]

    def read() -> None:
        while not done.is_set() or calls[0] < 3:
            client.get_service_graph(**WINDOW)
            page = client.get_trace_summaries(**WINDOW)["TraceSummaries"]
            ids = [s["Id"] for s in page[:5]]
            if ids:
                client.batch_get_traces(TraceIds=ids)
            calls[0] += 1

    writers = [threading.Thread(target=guarded(lambda s=s, k=k: ingest(s, k)))
               for k, s in enumerate(ingesters)]  # fmt: skip
    others = [threading.Thread(target=guarded(lambda s=s: maintain(s))) for s in maintainers]
    others.append(threading.Thread(target=guarded(read)))
    try:
        for thread in writers + others:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        for thread in others:
            thread.join()
        assert errors == []
        while ingesters[0].index_pending(1000):
            pass
        aggregates_match_traces(postgres_db)
        with psycopg.connect(postgres_db) as conn:  # every trace row has its documents
            orphans = conn.execute(
                "SELECT count(*) FROM traces t WHERE NOT EXISTS"
                " (SELECT 1 FROM segments s WHERE s.trace_id = t.trace_id)"
            ).fetchone()
            assert orphans == (0,)
    finally:
        api.stop()
        for store in ingesters + maintainers:
            store.close()


def test_max_db_mb_drops_the_oldest_days_never_today(
    store: PostgresStore, postgres_db: str, now: float, caplog: pytest.LogCaptureFixture
) -> None:
    today = day_of(now)
    store.maintain_partitions(4.5 * DAY_SECONDS)  # partitions from day -4
    padding = "x" * 3000
    for back in range(5):  # days -4 .. 0, the same volume each
        docs: list[dict[str, Any]] = []
        for index in range(60):
            docs += [
                segment(
                    f"svc{back}",
                    start=(today - back) * DAY_SECONDS + index,
                    metadata={"pad": padding + os.urandom(8).hex()},
                )
            ]
        write(store, docs)
    size = store.db.size_bytes()
    with psycopg.connect(postgres_db) as conn:
        oldest = sum(
            conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (partition_name(t, today - 4),)
            ).fetchone()[0]
            for t, _, _ in partitions.TABLES
        )
    # over budget by a little more than the oldest day: the two oldest days go
    assert store.enforce_retention(None, size - oldest - 1) == 120
    assert day_tables(postgres_db, range(today - 4, today + 3)) == all_of(
        range(today - 2, today + 3)
    )
    names = {s["EntryPoint"]["Name"] for s in _summaries(store)}
    assert names == {"svc0", "svc1", "svc2"}
    # a budget today alone exceeds: every older day goes, today's data stays, logged once
    with caplog.at_level(logging.WARNING, logger="otel_xray_collector.store"):
        store.enforce_retention(None, 1)
        store.enforce_retention(None, 1)
    assert day_tables(postgres_db, range(today - 4, today + 3)) == all_of(range(today, today + 3))
    assert {s["EntryPoint"]["Name"] for s in _summaries(store)} == {"svc0"}
    warnings = [r for r in caplog.records if "--max-db-mb" in r.getMessage()]
    assert len(warnings) == 1
    aggregates_match_traces(postgres_db)


def _summaries(store: PostgresStore) -> list[dict[str, Any]]:
    found, _, _ = store.scan_summaries(0, 4e9, "Event", None, lambda _: True, 1000, 10_000)
    return found


def test_a_v2_database_migrates_with_its_data(postgres_db: str) -> None:
    """A database at version 2 (documents, summaries, aggregates and one trace still queued
    for indexing, in the v2 tables) opens as version 3: everything readable and exact."""
    with psycopg.connect(postgres_db) as conn:
        migrate(conn, POSTGRES[:2])
    now = time.time()
    indexed = [call_trace(now - 3600 * hours) for hours in (1, 30, 50)]
    queued = call_trace(now - 600)
    undated = call_trace(now - 900, new_trace_id(UNDATED_EPOCH))
    delta: dict[tuple[int, int, str], tuple[Stats, int]] = {}
    with psycopg.connect(postgres_db) as conn:
        for docs in [*indexed, queued, undated]:
            for doc in docs:
                conn.execute(
                    "INSERT INTO segments(trace_id, seg_id, in_progress, stored_at, doc)"
                    " VALUES (%s, %s, false, %s, %s)",
                    (doc["trace_id"], doc["id"], now, json.dumps(doc).encode()),
                )
        for docs in [*indexed, undated]:
            row = index_trace(docs[0]["trace_id"], docs)
            conn.execute(
                "INSERT INTO traces(trace_id, start_time, end_time, id_time, revision, summary,"
                " facts, contrib, touched) VALUES (%(trace_id)s, %(start)s, %(end)s,"
                " %(id_time)s, 1, %(summary)s, %(facts)s, %(encoded)s, %(touched)s)",
                {
                    **row._asdict(),
                    "trace_id": docs[0]["trace_id"],
                    "encoded": encode(row.contrib),
                    "touched": now,
                },
            )
            accumulate(delta, row.contrib, +1)
        PostgresStore._apply(conn, delta)
        conn.execute("INSERT INTO pending(trace_id) VALUES (%s)", (queued[0]["trace_id"],))

    collector = Collector(make_config(postgres_db)).start()
    try:
        with psycopg.connect(postgres_db) as conn:
            assert conn.execute("SELECT max(version) FROM xray_schema").fetchone() == (3,)
        today = day_of(time.time())  # the collector's today (started after the data)
        present = day_tables(postgres_db, range(today - 3, today + 3))
        assert present == all_of(range(today - 3, today + 3))
        client = xray_client_for(collector.endpoint_url)
        everything = [d[0]["trace_id"] for d in [*indexed, queued, undated]]
        await_true(
            lambda: (
                len(
                    [
                        s
                        for p in client.get_paginator("get_trace_summaries").paginate(**WINDOW)
                        for s in p["TraceSummaries"]
                    ]  # fmt: skip
                )
                == 5
            ),
            "the queued trace indexed",
        )
        for table, expected in (("segments", 8), ("traces", 4)):
            with psycopg.connect(postgres_db) as conn:  # dated rows moved out of DEFAULT
                assert conn.execute(
                    f"SELECT count(*) FROM {table} WHERE tableoid <> '{table}_default'::regclass"
                ).fetchone() == (expected,)
        page = client.batch_get_traces(TraceIds=everything)
        assert sorted(t["Id"] for t in page["Traces"]) == sorted(everything)
        assert edge_totals(client) == {("front", "front"): 5, ("front", "back"): 5}
    finally:
        collector.stop()
    aggregates_match_traces(postgres_db)


def test_the_retention_in_force_is_the_stores(postgres_db: str) -> None:
    """A collector started with --retention-hours records it; one started without the flag
    shows and applies the stored value; a different explicit value changes it, logged."""
    first = CollectorProcess(postgres_db, "--retention-hours", "5", otlp=False)
    try:
        assert first.status()["store"]["retention_hours"] == 5
        assert any("changes from 72 to 5" in line for line in first.stderr_lines)
    finally:
        first.kill()
    # an undated trace last updated 6 hours ago: the stored 5 h removes it, 72 h would not
    past = PostgresStore(postgres_db, clock=Clock(time.time() - 6 * 3600))
    stale = call_trace(time.time() - 6 * 3600, new_trace_id(UNDATED_EPOCH))
    try:
        write(past, stale)
    finally:
        past.close()
    second = CollectorProcess(postgres_db, otlp=False)  # no flag: the store's 5 h
    try:
        assert second.status()["store"]["retention_hours"] == 5
        client = xray_client_for(second.endpoint_url)
        await_true(
            lambda: client.batch_get_traces(TraceIds=[stale[0]["trace_id"]])["Traces"] == [],
            "the stale trace removed by the 5 h retention",
        )
        third = CollectorProcess(postgres_db, "--retention-hours", "80", otlp=False)
        try:
            await_true(
                lambda: any("changes from 5 to 80" in line for line in third.stderr_lines),
                "the change logged",
            )
            assert second.status()["store"]["retention_hours"] == 80
        finally:
            third.kill()
    finally:
        second.kill()


def test_a_retention_pass_during_an_outage_is_logged_once(
    postgres_server: PostgresServer, postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = postgres_db.rsplit("/", 1)[1]
    store = PostgresStore(postgres_db)
    pipeline = IngestPipeline(store, retention_interval=0)
    try:
        with caplog.at_level(logging.INFO, logger="otel_xray_collector"):
            pipeline.start()
            postgres_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            postgres_server.admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            await_true(lambda: pipeline.counters()["retention_unreachable"] >= 3, "3 passes")
            postgres_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            await_true(
                lambda: any("retention: working again" in r.getMessage() for r in caplog.records),
                "recovery logged",
            )
    finally:
        postgres_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        pipeline.stop()
        store.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retention skipped until the store is back" in m for m in messages) == 1
    assert sum("retention: working again" in m for m in messages) == 1
    assert not any(r.exc_info for r in caplog.records if "retention" in r.getMessage())


class RecordingCursor(psycopg.Cursor[Any]):
    """A real psycopg cursor that also keeps every statement it ran and its parameters."""

    statements: list[tuple[str, Any]] = []

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:  # type: ignore[override]
        RecordingCursor.statements.append((str(query), params))
        return super().execute(query, params, **options)


#: A lookup of ``segments`` or ``traces`` by trace id (not a partition's own table).
_LOOKUP = re.compile(r"\bFROM (segments|traces) WHERE\b")


def partitions_read(url: str, sql: str, params: Any) -> set[str]:
    """The partitions ``sql`` reads when run (``EXPLAIN (ANALYZE, FORMAT JSON)``, in a
    transaction rolled back): every scan node the executor ran at least once."""
    with psycopg.connect(url) as conn:
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()[0]
        conn.rollback()
    read: set[str] = set()
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if "Scan" in node["Node Type"] and "Relation Name" in node and node["Actual Loops"]:
            read.add(node["Relation Name"])
    return read


def trace_ids_in(params: Any) -> list[str]:
    values = params.values() if isinstance(params, dict) else params
    flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return [v for v in flat if isinstance(v, str) and v.startswith("1-")]


def test_lookups_by_trace_id_read_only_their_days_partitions(
    store: PostgresStore, postgres_db: str, now: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 17 day partitions, every lookup of traces by id the store runs (indexing,
    BatchGetTraces, GetTraceGraph, the deletion of a gone trace, retention's per-trace
    deletes), and the cleanup of the aggregate rows they leave at zero, reads only the
    partitions of those traces' days: the plans the database runs, counted by EXPLAIN
    ANALYZE, not timed."""
    today = day_of(now)
    store.record_retention(24 * 14, 0)
    store.maintain_partitions(store.retention().max_age_seconds)
    assert len(tables(postgres_db, "segments")) >= 14
    connect = store.db._connect

    def recording(read_only: bool = False) -> Any:
        conn = connect(read_only)
        conn.cursor_factory = RecordingCursor
        return conn

    monkeypatch.setattr(store.db, "_connect", recording)
    store.db._drop_readers()
    store.db._writer.close()
    RecordingCursor.statements = []
    dated = [call_trace((today - back) * DAY_SECONDS + 3600) for back in (1, 4, 9)]
    clock_of(store).now = now - 2 * DAY_SECONDS
    undated = call_trace(now - 2 * DAY_SECONDS, new_trace_id(UNDATED_EPOCH))
    write(store, [d for docs in dated for d in docs] + undated)
    clock_of(store).now = now
    ids = [docs[0]["trace_id"] for docs in dated]
    assert len(store.full_traces(ids)) == 3
    assert store.trace_graph(ids[:1])
    with psycopg.connect(postgres_db) as conn:  # a trace whose documents are gone: deleted
        conn.execute("DELETE FROM segments WHERE trace_id = %s", (ids[2],))
        conn.execute("INSERT INTO pending(trace_id) VALUES (%s)", (ids[2],))
    store.index_pending()
    assert store.delete_untouched("traces_default", now - DAY_SECONDS, 10) == 1

    lookups = [(sql, p) for sql, p in RecordingCursor.statements if _LOOKUP.search(sql)]
    kinds = {sql.split(" WHERE")[0] for sql, _ in lookups}
    assert kinds == {
        "SELECT trace_id, doc FROM segments",  # indexing: the claimed traces' documents
        "SELECT trace_id, contrib FROM traces",  # indexing, retention: old contributions
        "DELETE FROM traces",  # a gone trace; retention
        "DELETE FROM segments",  # retention
        "SELECT doc FROM segments",  # BatchGetTraces, GetTraceGraph
    }, kinds
    for sql, params in lookups:
        table = _LOOKUP.search(sql).group(1)  # type: ignore[union-attr]
        existing = tables(postgres_db, table)
        expected = set()
        for trace_id in trace_ids_in(params):
            name = partition_name(table, day_of(int(trace_id[2:10], 16)))
            expected.add(name if name in existing else f"{table}_default")
        assert expected
        assert partitions_read(postgres_db, sql.replace("?", "%s"), params) <= expected, sql

    # the aggregates' cleanup after indexing and retention: the partitions of its buckets' days
    cleanups = [(sql, p) for sql, p in RecordingCursor.statements if "FROM agg_stats WHERE" in sql]
    assert cleanups
    existing = tables(postgres_db, "agg_stats")
    for sql, params in cleanups:
        days = {day_of(bucket) for bucket in params[-3]}  # the (bucket, kind, key) arrays last
        expected = {partition_name("agg_stats", day) for day in days}
        if not expected <= existing:
            expected = (expected & existing) | {"agg_stats_default"}
        assert partitions_read(postgres_db, sql, params) <= expected, sql


def test_a_pass_behind_a_busy_table_skips_and_the_next_does_the_work(
    store: PostgresStore, postgres_db: str, now: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader holds ``segments`` (an open transaction that read it): a maintenance pass that
    must create tomorrow's window gives up after the lock timeout without an error, ingest goes
    on meanwhile, the skip is counted in /status and logged once for several passes; the first
    pass after the reader is gone creates the days."""
    today = day_of(now)
    clock_of(store).now = now + DAY_SECONDS  # a day later: today + 3 is missing
    missing = today + 1 + partitions.AHEAD_DAYS
    writer = PostgresStore(postgres_db, clock=Clock(now))
    reader = psycopg.connect(postgres_db)
    try:
        reader.execute("SELECT count(*) FROM segments").fetchone()  # holds ACCESS SHARE
        with caplog.at_level(logging.INFO, logger="otel_xray_collector"):
            passes: list[Maintenance] = []
            for _ in range(3):
                # ingest while the pass waits for its locks: queued behind it at most until it
                # gives up, never failed
                waiting = threading.Thread(target=maintenance_pass, args=(store, passes))
                waiting.start()
                docs = call_trace(now)
                write(writer, docs)
                assert writer.load_documents([docs[0]["trace_id"]])
                waiting.join()
            assert passes == [Maintenance(skipped=True)] * 3
        assert store.status()["maintenance_skipped_busy"] == 3
        assert missing not in days_present(postgres_db)
        busy = [r for r in caplog.records if "tables stayed busy" in r.getMessage()]
        assert len(busy) == 1 and not busy[0].exc_info
    finally:
        reader.close()
        writer.close()
    with caplog.at_level(logging.INFO, logger="otel_xray_collector"):
        assert missing in store.maintain_partitions(72 * 3600).created
    assert any("working again" in r.getMessage() for r in caplog.records)
    assert day_tables(postgres_db, [missing]) == all_of([missing])


def days_present(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return partitions.existing_days(conn)


def maintenance_pass(store: PostgresStore, passes: list[Maintenance]) -> None:
    passes.append(store.maintain_partitions(72 * 3600))


def test_a_user_without_ddl_rights_keeps_ingest_and_api_and_says_why_once(
    postgres_server: PostgresServer, postgres_db: str, now: float, caplog: pytest.LogCaptureFixture
) -> None:
    """The store opened as a role that may read and write the tables but not create or drop
    them (the tables belong to another role): opening works, retention and maintenance fail
    with one line naming the privilege, not one per pass, and ingest and the API keep working."""
    name = postgres_db.rsplit("/", 1)[1]
    owner = PostgresStore(postgres_db, clock=Clock(now))
    write(owner, call_trace(now - 3600))
    owner.close()
    role = f"{name}_dml"
    postgres_server.admin(f"CREATE ROLE {role} LOGIN")
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    url = postgres_db.replace(f"{PostgresServer.USER}@", f"{role}@")
    today = day_of(now)
    try:
        with caplog.at_level(logging.INFO, logger="otel_xray_collector"):
            limited = PostgresStore(url, clock=Clock(now + 5 * DAY_SECONDS))  # days to create
            try:
                for _ in range(3):
                    limited.enforce_retention(72 * 3600, 1)  # days to drop too
                docs = call_trace(now + 5 * DAY_SECONDS)
                write(limited, docs)
                trace_id = docs[0]["trace_id"]
                assert len(limited.full_traces([trace_id])[trace_id]["segments"]) == 2
                status = limited.status()
                assert status["maintenance_denied"] >= 4 and "error" not in status
            finally:
                limited.close()
            collector = Collector(make_config(url)).start()  # the API and ingest as that role
            try:
                client = xray_client_for(collector.endpoint_url)
                docs = call_trace(time.time())
                client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
                ids = [docs[0]["trace_id"]]
                await_true(
                    lambda: len(client.batch_get_traces(TraceIds=ids)["Traces"]) == 1,
                    "the trace ingested and served by a collector of that role",
                )
            finally:
                collector.stop()
        denied = [r for r in caplog.records if "may not create or drop" in r.getMessage()]
        assert len(denied) == 1 and role in denied[0].getMessage()
        assert (
            "permission denied" in denied[0].getMessage()
            or "must be owner" in denied[0].getMessage()
        )
        assert not any(r.exc_info for r in caplog.records)
        assert today + 5 + partitions.AHEAD_DAYS not in days_present(postgres_db)
    finally:
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
        postgres_server.admin(f"DROP ROLE {role}")
