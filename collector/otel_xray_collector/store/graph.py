"""Service graph responses (GetServiceGraph / GetTraceGraph) from merged node and edge stats."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .codec import NodeKey, parse_edge_key, parse_node_key
from .model import CLIENT, EDGE, INFERRED_NODE, NODE
from .stats import Stats


class GraphBuilder:
    """Accumulates aggregate rows, then numbers nodes in a stable order and renders them."""

    def __init__(self) -> None:
        self.nodes: dict[NodeKey, Stats] = {}
        self.inferred: set[NodeKey] = set()
        self.real: set[NodeKey] = set()
        self.edges: dict[tuple[NodeKey, NodeKey], Stats] = {}

    def add_rows(self, rows: Iterable[tuple[int, str, list[Any]]]) -> None:
        """Rows of (kind, key text, stats list) as stored in ``agg`` or a trace contribution."""
        for kind, key_text, values in rows:
            stats = Stats.from_list(values)
            if kind == EDGE:
                edge = parse_edge_key(key_text)
                found = self.edges.get(edge)
                if found is None:
                    self.edges[edge] = found = Stats()
                found.merge(stats)
            else:
                node = parse_node_key(key_text)
                (self.inferred if kind == INFERRED_NODE else self.real).add(node)
                found = self.nodes.get(node)
                if found is None:
                    self.nodes[node] = found = Stats()
                found.merge(stats)

    def services(self) -> list[dict[str, Any]]:
        keys = set(self.nodes)
        for source, target in self.edges:
            keys.add(source)
            keys.add(target)
        ordered = sorted(keys, key=lambda k: (k[0], k[1] or "", k[2] or ""))
        ids = {key: index for index, key in enumerate(ordered)}
        roots = {target for source, target in self.edges if source[1] == CLIENT}
        out_edges: dict[NodeKey, list[dict[str, Any]]] = {key: [] for key in ordered}
        for (source, target), stats in sorted(self.edges.items(), key=lambda e: ids[e[0][1]]):
            edge: dict[str, Any] = {
                "ReferenceId": ids[target],
                "SummaryStatistics": stats.api_statistics(),
                "ResponseTimeHistogram": stats.api_histogram(),
                "Aliases": [],
            }
            _times(edge, stats)
            out_edges[source].append(edge)
        services = []
        for key in ordered:
            service: dict[str, Any] = {
                "ReferenceId": ids[key],
                "Name": key[0],
                "Names": [key[0]],
                "Root": key in roots,
                "State": "active" if key in self.real else "unknown",
                "Edges": out_edges[key],
            }
            if key[1]:
                service["Type"] = key[1]
            if key[2]:
                service["AccountId"] = key[2]
            if key[1] != CLIENT:
                stats = self.nodes.get(key) or Stats()
                _times(service, stats)
                service["SummaryStatistics"] = stats.api_statistics()
                service["DurationHistogram"] = stats.api_histogram(durations=True)
                service["ResponseTimeHistogram"] = stats.api_histogram()
            else:
                times = Stats()
                for (source, _), edge_stats in self.edges.items():
                    if source == key:
                        times.touch(edge_stats.smin, edge_stats.emax)
                _times(service, times)
            services.append(service)
        return services


def _times(target: dict[str, Any], stats: Stats) -> None:
    if stats.smin is not None:
        target["StartTime"] = stats.smin
    if stats.emax is not None:
        target["EndTime"] = stats.emax


__all__ = ["GraphBuilder", "NODE", "EDGE", "INFERRED_NODE"]
