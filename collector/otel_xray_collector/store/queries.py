"""Read side of the store: everything the X-Ray API operations need, as plain Python values.

Queries read the indexes kept at ingest (``traces`` rows and per-minute ``agg`` rows), never
the raw documents, except BatchGetTraces and GetTraceGraph which by definition return or
draw specific traces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from otel_xray.wire import loads

from .codec import decode
from .facts import TraceFacts
from .graph import GraphBuilder
from .model import EDGE, INFERRED_NODE, NODE, assemble, contributions
from .sql import SqlConnection, SqlDatabase
from .stats import BUCKET_SECONDS, Stats, bucket_of
from .summary import summarize

TIME_COLUMNS = {"TraceId": "id_time", "Event": "start_time", "Service": "end_time"}


class TraceQueries:
    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    # -- GetTraceSummaries -------------------------------------------------------------------

    def scan_summaries(
        self,
        start: float,
        end: float,
        range_type: str,
        cursor: tuple[float, str] | None,
        predicate: Callable[[TraceFacts], bool],
        page_size: int,
        scan_budget: int,
    ) -> tuple[list[dict[str, Any]], int, tuple[float, str] | None]:
        """Newest first: (matching summaries, traces examined, cursor for the next page)."""
        column = TIME_COLUMNS[range_type]
        where = [f"{column} >= ?", f"{column} < ?"]
        params: list[Any] = [start, end]
        if range_type == "Event":
            # active in the window: began before its end and ended after its start
            where = ["start_time < ?", "end_time >= ?"]
            params = [end, start]
        if cursor is not None:
            where.append(f"({column} < ? OR ({column} = ? AND trace_id < ?))")
            params.extend([cursor[0], cursor[0], cursor[1]])
        sql = (
            f"SELECT trace_id, {column}, revision, facts, summary, start_time, end_time "
            f"FROM traces WHERE {' AND '.join(where)} "
            f"ORDER BY {column} DESC, trace_id DESC LIMIT ?"
        )
        found: list[dict[str, Any]] = []
        examined = 0
        last: tuple[float, str] | None = None
        with self.db.read() as conn:
            for trace_id, when, revision, facts, summary, t_start, _ in conn.execute(
                sql, (*params, scan_budget + 1)
            ):
                if examined == scan_budget or len(found) == page_size:
                    return found, examined, last
                examined += 1
                last = (when, trace_id)
                if predicate(decode(facts)):
                    item = decode(summary)
                    item["Revision"] = revision
                    if range_type == "Event":
                        item["MatchedEventTime"] = max(t_start, start)
                    found.append(item)
        return found, examined, None

    # -- BatchGetTraces / GetTraceGraph -----------------------------------------------------

    def one_trace(self, trace_id: str) -> tuple[str, tuple[str, ...]]:
        """The condition selecting one trace's rows of ``segments`` or ``traces``, and its
        parameters. The PostgreSQL store adds the trace's day, so the planner reads one
        partition instead of probing the index of every day (postgres.py)."""
        return "trace_id = ?", (trace_id,)

    def load_documents(self, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self.db.read() as conn:
            for trace_id in trace_ids:
                where, params = self.one_trace(trace_id)
                docs = [
                    loads(d)
                    for (d,) in conn.execute(
                        f"SELECT doc FROM segments WHERE {where} ORDER BY seq", params
                    )
                ]
                if docs:
                    out[trace_id] = docs
        return out

    def full_traces(self, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Assembled traces: segments with folded subsegments, inferred segments, duration."""
        out: dict[str, dict[str, Any]] = {}
        for trace_id, docs in self.load_documents(trace_ids).items():
            trace = assemble(trace_id, docs)
            summary, _ = summarize(trace)
            out[trace_id] = {
                "segments": trace.segments + trace.inferred_segments + trace.orphans,
                "duration": summary.get("Duration"),
            }
        return out

    def trace_graph(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        builder = GraphBuilder()
        for trace_id, docs in self.load_documents(trace_ids).items():
            trace = assemble(trace_id, docs)
            contrib = contributions(trace, summarize(trace)[0].get("Duration"))
            builder.add_rows(
                (kind, key, stats.to_list()) for (_, kind, key), stats in contrib.items()
            )
        return builder.services()

    # -- GetServiceGraph / GetTimeSeriesServiceStatistics ------------------------------------

    def _graph_rows(
        self,
        conn: SqlConnection,
        start: float,
        end: float,
        traces: Callable[[TraceFacts], bool] | None,
    ) -> Iterator[tuple[int, int, str, list[Any]]]:
        """(bucket, kind, key, stats) of the minutes the window touches: the per-minute
        aggregates, or, for a subset of traces (a group), the contributions of those traces."""
        first = bucket_of(start)
        if traces is None:
            for bucket, kind, key, stats in conn.execute(
                "SELECT bucket, kind, key, stats FROM agg WHERE bucket >= ? AND bucket < ?",
                (first, end),
            ):
                yield bucket, kind, key, decode(stats)
            return
        # A trace contributes to the minutes its requests end in, all inside its own span.
        for facts, contrib in conn.execute(
            "SELECT facts, contrib FROM traces WHERE end_time >= ? AND start_time < ?",
            (first, end + BUCKET_SECONDS),
        ):
            if traces(decode(facts)):
                for bucket, kind, key, stats in decode(contrib):
                    if first <= bucket < end:
                        yield bucket, kind, key, stats

    def service_graph(
        self,
        start: float,
        end: float,
        traces: Callable[[TraceFacts], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """The service graph of the window; ``traces`` restricts it to the traces it accepts."""
        builder = GraphBuilder()
        with self.db.read() as conn:
            builder.add_rows(
                (kind, key, stats)
                for _, kind, key, stats in self._graph_rows(conn, start, end, traces)
            )
        return builder.services()

    def time_series(
        self,
        start: float,
        end: float,
        period: int,
        keep: Callable[[int, str], bool],
        traces: Callable[[TraceFacts], bool] | None = None,
    ) -> list[tuple[int, Stats]]:
        """Per-period sums of the aggregate rows ``keep(kind, key)`` selects, oldest first."""
        period = max(period, BUCKET_SECONDS)
        buckets: dict[int, Stats] = {}
        with self.db.read() as conn:
            for bucket, kind, key, stats in self._graph_rows(conn, start, end, traces):
                if not keep(kind, key):
                    continue
                slot = (bucket // period) * period
                found = buckets.get(slot)
                if found is None:
                    buckets[slot] = found = Stats()
                found.merge(Stats.from_list(stats))
        return sorted(buckets.items())


__all__ = ["TraceQueries", "NODE", "EDGE", "INFERRED_NODE"]
