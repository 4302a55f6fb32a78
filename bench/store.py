"""Store benchmark: SQLite vs PostgreSQL vs two collectors on one PostgreSQL; queries over a
large PostgreSQL store vs a full scan of it.

Prints ONE JSON line. Figures, all measured in the same run on the same machine, with a
PostgreSQL server of the distribution's packages started in a temporary directory (PostgreSQL's
default durability: ``fsync=on``, ``synchronous_commit=on``):

* ``{sqlite,postgres,postgres_two}_zero_loss_rate``: the highest paced UDP send rate
  (documents/s, summed over the senders) at which the collector process(es) commit every
  document, sustained for ``--seconds`` per probe, with what was queued when the senders
  stopped drained within 10 % of the probe + 0.3 s (as bench/collector.py). ``postgres_two``:
  two collector processes on one database, each sent half by its own sender. Found by
  geometric bisection of absolute rates (4,000..128,000/s; SQLite 8,000..256,000/s;
  ``--probes`` 6: within 6 %), each probe on a fresh store (a new SQLite file, a new
  database) with fresh collectors, the drain polled on every collector at once every 50 ms.
  Fractions of a raw recvfrom rate measured first, one store for all steps and a search
  ended by its first failing step made the figures land on a coarse grid decided by one
  noisy step, with the previous steps' indexing still running.
* ``postgres_two_vs_one``: the median over ``--pairs`` (5) interleaved one/two-collector
  bisections (ABBA order) of each pair's two / one, with ``postgres_two_vs_one_{min,max,
  trials}``; SQLite is bisected before every other pair (3 trials), ``postgres_vs_sqlite`` =
  median one-collector PostgreSQL rate / median SQLite rate. ``*_zero_loss_rates`` lists
  every trial (``*_zero_loss_rate`` is their median), ``*_steps`` the first trial's probes
  (``stored``: committed when the drain limit + 1 s ran out; a failing probe's rest is
  committed after). The ingest of PostgreSQL here is bound by the latency of its flushed
  commits (``fsync=on``; 80..160 µs per fdatasync on the development VM, varying between
  minutes), not by CPU: the figures move with the disk, so read them as medians with their
  spread.
* ``index_catch_up_seconds_*``: one more probe at the first trial's rate (``*_confirm``), then
  how long indexing took to catch up.
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

Usage: python bench/store.py [--segments 1000000] [--seconds 3] [--probes 6] [--pairs 5]
       [--skip-ingest | --skip-queries] [--ingest sqlite,postgres,postgres_two] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
#: The bisection's bracket per store (documents/s summed over the senders), fixed rather than
#: a fraction of the raw recvfrom rate measured at the start (which itself varies by half
#: between runs); the same width (32 ×) for both, SQLite's higher (it passed 121,000/s).
BRACKETS = {"sqlite": (8_000.0, 256_000.0), "postgres": (4_000.0, 128_000.0)}
#: How often the drain is polled, every collector at once (the limit is 0.6 s at 3 s steps).
POLL_SECONDS = 0.05
#: Numbers the senders' trace ids apart (documents of different probes never collide).
RUNS = itertools.count(2)


class Stores:
    """Fresh stores for each probe: a SQLite file, or a new database on the bench's server
    (each probe starts empty, so neither indexing left over from an earlier probe nor a
    larger table slows the next one); ``discard`` removes it after the probe."""

    def __init__(self, server: Any, workdir: Path) -> None:
        self.server, self.workdir = server, workdir
        self._files = 0

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            self._files += 1
            return str(self.workdir / f"ingest-{self._files}.db")
        return str(self.server.create_database())

    def discard(self, db: str) -> None:
        if db.startswith("postgresql://"):
            self.server.drop_database(db)
        else:
            for path in Path(db).parent.glob(Path(db).name + "*"):
                path.unlink()


def settle_all(collectors: list[Any], sent_each: int, timeout: float) -> list[dict[str, Any]]:
    """Every collector's status once it has handled what it got, polled in parallel (one
    after the other would add a poll interval per collector to the drain time)."""
    with ThreadPoolExecutor(len(collectors)) as pool:
        return list(
            pool.map(lambda c: c.settled(sent_each, timeout, interval=POLL_SECONDS), collectors)
        )


def probe(
    stores: Stores, kind: str, collectors: int, rate: float, seconds: float, catch_up: bool
) -> dict[str, Any]:
    """One paced step at ``rate`` (summed) into ``collectors`` fresh collector processes on
    one fresh store, each sent an equal share by its own sender process. Passed: every
    document committed, and what was queued when the senders stopped drained within 10 %
    of the step + 0.3 s (as bench/collector.py). ``catch_up``: then wait for indexing too."""
    db = stores.new(kind)
    procs = [BC.CollectorProcess(db) for _ in range(collectors)]
    limit = 0.1 * seconds + 0.3
    try:
        count = int(rate * seconds / collectors)
        run = next(RUNS)
        senders = [
            BC.Sender(c.udp_port, count, rate / collectors, run * 8 + k)
            for k, c in enumerate(procs)
        ]
        for sender in senders:
            sender.go.set()
        for sender in senders:
            sender.process.join()
        sent_at = time.monotonic()
        statuses = settle_all(procs, count, limit + 1.0)
        drain = time.monotonic() - sent_at
        stored = sum(s["stored"] for s in statuses)
        received = sum(s["udp"]["datagrams_received"] for s in statuses)
        step: dict[str, Any] = {
            "target_rate": round(rate),
            "sent_rate": round(sum(float(s.rate.value) for s in senders)),
            "sent": count * collectors,
            "stored": stored,
            # still in the socket buffer when the wait ran out, or dropped by the kernel
            "unreceived": count * collectors - received,
            "drain_seconds": round(drain, 2),
        }
        step["passed"] = stored == count * collectors and drain <= limit
        if catch_up:
            started = time.monotonic()
            while any(c.status()["store"]["index_lag_documents"] > 0 for c in procs):
                time.sleep(0.5)
            step["index_catch_up_seconds"] = round(time.monotonic() - started, 2)
    finally:
        for proc in procs:
            proc.stop()
        stores.discard(db)
    return step


def bisect_rate(
    stores: Stores, kind: str, collectors: int, seconds: float, probes: int
) -> dict[str, Any]:
    """The highest sustained zero-loss rate, by geometric bisection of the store's bracket
    in ``probes`` fresh probes (6 probes: within 6 % of the true figure). A probe that
    fails does not end the search: the next one tries lower, so one noisy step shifts the
    answer by a bisection step, not to the bottom of a grid. ``best`` is the sent rate of the
    highest probe that passed (0 when none did)."""
    low, high = BRACKETS[kind]
    best = 0.0
    steps = []
    for _ in range(probes):
        rate = (low * high) ** 0.5
        step = probe(stores, kind, collectors, rate, seconds, catch_up=False)
        steps.append(step)
        if step["passed"]:
            low, best = rate, max(best, step["sent_rate"])
        else:
            high = rate
    return {"best": best, "steps": steps}


def ingest(
    stores: Stores, chosen: list[str], seconds: float, probes: int, pairs: int
) -> dict[str, Any]:
    """The ingest figures: ``pairs`` interleaved one-collector / two-collector PostgreSQL
    bisections (ABBA order, so a drift of the machine's load between them falls on both
    sides), a SQLite bisection before every other pair; rates are medians over the trials,
    the two-vs-one ratio the median of the pairs' ratios, with its spread. Index catch-up:
    one more probe at each configuration's rate (first trial), waited until indexing caught
    up."""
    result: dict[str, Any] = {"ingest_probe_seconds": seconds, "ingest_probes": probes}
    configs = {
        "sqlite": ("sqlite", 1),
        "postgres": ("postgres", 1),
        "postgres_two": ("postgres", 2),
    }
    trials: dict[str, list[dict[str, Any]]] = {}
    pg = [name for name in ("postgres", "postgres_two") if name in chosen]
    for pair in range(max(pairs, 1)):
        order = pg if pair % 2 == 0 else pg[::-1]
        if "sqlite" in chosen and pair % 2 == 0:  # every other pair: SQLite is the steadier
            order = ["sqlite", *order]
        for name in order:
            kind, count = configs[name]
            trials.setdefault(name, []).append(bisect_rate(stores, kind, count, seconds, probes))
    for name, runs in trials.items():
        rates = [run["best"] for run in runs]
        result[f"{name}_zero_loss_rate"] = round(statistics.median(rates))
        result[f"{name}_zero_loss_rates"] = [round(r) for r in rates]
        result[f"{name}_steps"] = runs[0]["steps"]
        kind, count = configs[name]
        confirm = probe(
            stores, kind, count, runs[0]["best"] or BRACKETS[kind][0], seconds, catch_up=True
        )
        result[f"{name}_confirm"] = confirm
        result[f"index_catch_up_seconds_{name}"] = confirm["index_catch_up_seconds"]
    sqlite = result.get("sqlite_zero_loss_rate")
    one = result.get("postgres_zero_loss_rate")
    result["postgres_vs_sqlite"] = round(one / sqlite, 3) if one and sqlite else None
    if "postgres" in trials and "postgres_two" in trials:
        ratios = [
            two["best"] / single["best"]
            for single, two in zip(trials["postgres"], trials["postgres_two"], strict=True)
            if single["best"]
        ]
        if ratios:
            result["postgres_two_vs_one"] = round(statistics.median(ratios), 3)
            result["postgres_two_vs_one_min"] = round(min(ratios), 3)
            result["postgres_two_vs_one_max"] = round(max(ratios), 3)
            result["postgres_two_vs_one_trials"] = len(ratios)
    return result


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
    parser.add_argument("--probes", type=int, default=6, help="bisection probes per figure")
    parser.add_argument("--pairs", type=int, default=5, help="one/two-collector trial pairs")
    parser.add_argument("--skip-ingest", action="store_true", help="only the query figures")
    parser.add_argument("--skip-queries", action="store_true", help="only the ingest figures")
    parser.add_argument(
        "--ingest",
        default="sqlite,postgres,postgres_two",
        help="which ingest runs (comma-separated: sqlite, postgres, postgres_two)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.segments, args.seconds, args.probes, args.pairs = 20_000, 1.0, 3, 1
    workdir = Path(tempfile.mkdtemp(prefix="otel-xray-bench-store-"))
    server = PostgresServer(durable=True).start()
    result: dict[str, Any] = {"bench": "store", "cpus": os.cpu_count()}
    try:
        if not args.skip_ingest:
            stores = Stores(server, workdir)
            result.update(
                ingest(stores, args.ingest.split(","), args.seconds, args.probes, args.pairs)
            )
        if args.skip_queries:
            print(json.dumps(result))
            return
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
