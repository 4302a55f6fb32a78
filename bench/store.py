"""Store benchmark: SQLite vs PostgreSQL vs two collectors on one PostgreSQL; queries over a
large PostgreSQL store vs a full scan of it.

Prints ONE JSON line. Figures, all measured in the same run on the same machine, with a
PostgreSQL server of the distribution's packages started in a temporary directory (PostgreSQL's
default durability: ``fsync=on``, ``synchronous_commit=on``):

* ``{sqlite,postgres,postgres_two}_zero_loss_rate``: the highest paced UDP send rate
  (documents/s, summed over the senders) at which the collector process(es) commit every
  document, sustained for ``--seconds`` per step, the queue drained within 10 % of the step (as
  bench/collector.py). ``postgres_two``: two collector processes on one database, each sent
  half. Ratios: ``postgres_vs_sqlite`` and ``postgres_two_vs_one``.
* ``index_catch_up_seconds_*``: how long indexing then took to catch up.
* ``pg_query_*``: over a PostgreSQL store of ``--segments`` documents (4 per trace over 6
  hours): median latency of GetServiceGraph and GetTraceSummaries (first page; with a filter)
  through the HTTP API, beside one full scan of the stored segments (``SELECT doc``, read
  only); ``pg_query_*_ratio`` = query / scan (target <= 0.1).
* ``pg_bytes_per_million_segments``: the database's size on disk (tables and indexes) per
  million stored documents, for sizing.
* ``pg_retention_*``: one day of ``--segments`` documents removed from two copies of the same
  database, by dropping the day's partitions (``pg_retention_drop_seconds``) and by the batched
  row-by-row delete that retention used before partitions (``pg_retention_delete_seconds``);
  ``pg_retention_drop_vs_delete`` = drop / delete.

Usage: python bench/store.py [--segments 1000000] [--seconds 3] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "collector"))

from collector.tests.support.postgres import PostgresServer  # noqa: E402


def _bench_collector() -> Any:
    """bench/collector.py as a module (its sender, collector process and trace documents)."""
    spec = importlib.util.spec_from_file_location("bench_collector", ROOT / "bench/collector.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BC = _bench_collector()
FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def zero_loss(dbs: list[str], ceiling: float, seconds: float) -> dict[str, Any]:
    """Paced steps against one collector per ``dbs`` entry, each sent ``1/len(dbs)`` of the
    rate at once; the best summed rate at which every document was committed in time."""
    collectors = [BC.CollectorProcess(db) for db in dbs]
    best = 0.0
    steps = []
    sent_totals = [0] * len(collectors)
    try:
        for run, fraction in enumerate(FRACTIONS, 2):
            rate = ceiling * fraction / len(collectors)
            count = int(rate * seconds)
            before = [c.status()["stored"] for c in collectors]
            senders = [
                BC.Sender(c.udp_port, count, rate, run * 8 + k) for k, c in enumerate(collectors)
            ]
            for sender in senders:
                sender.go.set()
            for sender in senders:
                sender.process.join()
            actual = sum(float(s.rate.value) for s in senders)
            sent_at = time.monotonic()
            stored = 0
            for k, collector in enumerate(collectors):
                sent_totals[k] += count
                after = collector.settled(sent_totals[k])
                stored += after["stored"] - before[k]
            drain = time.monotonic() - sent_at
            steps.append(
                {
                    "target_rate": round(rate * len(collectors)),
                    "sent_rate": round(actual),
                    "sent": count * len(collectors),
                    "stored": stored,
                    "drain_seconds": round(drain, 2),
                }
            )
            if stored != count * len(collectors) or drain > 0.1 * seconds + 0.3:
                break
            best = max(best, actual)
        started = time.monotonic()
        while any(c.status()["store"]["index_lag_documents"] > 0 for c in collectors):
            time.sleep(0.5)
        catch_up = time.monotonic() - started
    finally:
        for collector in collectors:
            collector.stop()
    return {"best": best, "steps": steps, "index_catch_up_seconds": round(catch_up, 2)}


def fill(store: Any, segments: int, end: float, span: float) -> int:
    """Write 4-document traces starting over ``span`` seconds before ``end`` through the
    store's own write + index path; returns the documents written."""
    from otel_xray_collector.documents import pack
    from otel_xray_collector.ingest.validate import parse_body

    traces = segments // 4
    batch: list[Any] = []
    for index in range(traces):
        start = end - span + span * index / traces
        for body in BC._trace_documents(index, start):
            batch.extend(parse_body(body))
        if len(batch) >= 4000 or index == traces - 1:
            store.write_packed([pack(batch)])
            batch = []
            while store.index_pending(4000):
                pass
    return traces * 4


def build_store(db: str, segments: int) -> dict[str, float]:
    """Fill a store with 4-document traces over the last 6 hours."""
    from otel_xray_collector.store.open import open_store

    store = open_store(db)
    traces = segments // 4
    started = time.perf_counter()
    fill(store, segments, time.time(), 6 * 3600.0)
    elapsed = time.perf_counter() - started
    size = int(store.status()["file_bytes"])
    store.close()
    return {
        "documents": traces * 4,
        "seconds": round(elapsed, 1),
        "documents_per_second": round(traces * 4 / elapsed),
        "bytes": size,
    }


def retention_drop_vs_delete(server: Any, segments: int) -> dict[str, float]:
    """One day of ``segments`` documents (yesterday's partition) removed two ways from two
    copies of the same database: the day's partitions dropped (the retention pass with the
    clock a day on) vs the row-by-row batched delete of those traces (500 per transaction,
    documents, summaries and aggregate contributions, the retention before partitions)."""
    from otel_xray_collector.store.partitions import DAY_SECONDS, day_of, partition_name
    from otel_xray_collector.store.postgres import PostgresStore

    url = server.create_database()
    day = day_of(time.time()) - 1
    store = PostgresStore(url)
    fill(store, segments, (day + 1) * DAY_SECONDS - 600, DAY_SECONDS - 1200)
    store.close()
    copy = url.rsplit("/", 1)[0] + "/retention_copy"
    server.admin(f"CREATE DATABASE retention_copy TEMPLATE {url.rsplit('/', 1)[1]}")
    server.admin("CHECKPOINT")  # the copy's writes flushed before either is timed

    # the day wholly older than the cutoff (one hour of retention, the clock past its end)
    later = (day + 1) * DAY_SECONDS + 3600 + 1
    dropping = PostgresStore(url, clock=lambda: later)
    started = time.perf_counter()
    done = dropping.maintain_partitions(3600)
    drop = time.perf_counter() - started
    dropping.close()
    assert day in done.dropped, done

    deleting = PostgresStore(copy)
    table = partition_name("traces", day)
    started = time.perf_counter()
    deleted = 0
    while count := deleting.delete_untouched(table, float("inf"), 500):
        deleted += count
    delete = time.perf_counter() - started
    deleting.close()
    assert deleted == done.traces, (deleted, done.traces)
    return {"drop": drop, "delete": delete, "traces": deleted}


def pg_full_scan(url: str) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            with conn.cursor(name="scan") as cursor:  # server-side: streamed, not buffered
                cursor.itersize = 5000
                for _ in cursor.execute("SELECT doc FROM segments"):
                    pass
            runs.append(time.perf_counter() - started)
            conn.commit()
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--raw-count", type=int, default=200_000)
    parser.add_argument("--skip-ingest", action="store_true", help="only the query figures")
    parser.add_argument(
        "--ingest",
        default="sqlite,postgres,postgres_two",
        help="which ingest runs (comma-separated: sqlite, postgres, postgres_two)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.segments, args.seconds, args.raw_count = 20_000, 1.0, 50_000
    workdir = Path(tempfile.mkdtemp(prefix="otel-xray-bench-store-"))
    server = PostgresServer(durable=True).start()
    result: dict[str, Any] = {"bench": "store"}
    try:
        if not args.skip_ingest:
            raw = BC.raw_recvfrom_rate(args.raw_count)["rate"]
            result["raw_recvfrom_rate"] = round(raw)
            runs = {
                "sqlite": [str(workdir / "ingest.db")],
                "postgres": [server.create_database()],
            }
            shared = server.create_database()
            runs["postgres_two"] = [shared, shared]
            chosen = args.ingest.split(",")
            for name, dbs in runs.items():
                if name not in chosen:
                    continue
                measured = zero_loss(dbs, raw, args.seconds)
                result[f"{name}_zero_loss_rate"] = round(measured["best"])
                result[f"{name}_steps"] = measured["steps"]
                result[f"index_catch_up_seconds_{name}"] = measured["index_catch_up_seconds"]
            sqlite = result.get("sqlite_zero_loss_rate")
            one = result.get("postgres_zero_loss_rate")
            two = result.get("postgres_two_zero_loss_rate")
            result["postgres_vs_sqlite"] = round(one / sqlite, 3) if one and sqlite else None
            result["postgres_two_vs_one"] = round(two / one, 3) if one and two is not None else None
        url = server.create_database()
        built = build_store(url, args.segments)
        scan = pg_full_scan(url)
        queries = BC.query_latencies(url)
        result.update(
            {
                "pg_store_documents": built["documents"],
                "pg_store_build_documents_per_second": built["documents_per_second"],
                "pg_bytes_per_million_segments": round(built["bytes"] * 1e6 / built["documents"]),
                "pg_full_scan_read_seconds": round(scan, 4),
                **{f"pg_query_{k}_seconds": round(v, 4) for k, v in queries.items()},
                **{f"pg_query_{k}_ratio": round(v / scan, 4) for k, v in queries.items()},
                "cpus": os.cpu_count(),
            }
        )
        retention = retention_drop_vs_delete(server, args.segments)
        result.update(
            {
                "pg_retention_day_documents": retention["traces"] * 4,
                "pg_retention_drop_seconds": round(retention["drop"], 4),
                "pg_retention_delete_seconds": round(retention["delete"], 3),
                "pg_retention_drop_vs_delete": round(retention["drop"] / retention["delete"], 5),
            }
        )
        print(json.dumps(result))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
