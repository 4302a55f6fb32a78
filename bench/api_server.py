"""The collector's HTTP layer: waitress (today) against the hand-made ``http.server`` one it
replaced, on the console's own queries, in the same run.

Prints ONE JSON line. One collector runs in-process with a fresh SQLite store holding
``--traces`` two-service traces (bench/console.py's generator, 10,000 by default: the console
bench's size). Its API port is the waitress server; the old server (``api/server.py`` as it was
before the swap, read from git history into a temporary module) is started beside it on the
same routes, the same store and the same status callable, so only the HTTP layer differs.

* ``<query>_ms``: median latency of sequential requests on one keep-alive connection, the two
  servers alternating request by request (GetServiceGraph and GetTraceSummaries over the
  console's 15-minute window, BatchGetTraces of 5 ids as the trace view asks, and ``/health``,
  which is the HTTP layer alone); ``<query>_ratio`` = waitress / old (< 1: waitress faster).
* the same for cheroot (CherryPy's server, the other thread-pool candidate) running the very
  same WSGI application: ``<query>_cheroot_ratio``, ``<query>_cheroot_rps_ratio`` (vs old).
* ``<query>_rps``: requests/s with ``--clients`` concurrent keep-alive clients (threads of a
  separate process, so the client's Python does not share the server's GIL) for
  ``--seconds``; ``<query>_rps_ratio`` = waitress / old (> 1: waitress faster).

Usage: python bench/api_server.py [--traces 10000] [--clients 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collector"))
sys.path.insert(0, str(ROOT / "bench"))

from console import trace_documents  # noqa: E402  (bench/console.py: the console's dataset)
from otel_xray_collector.app import Collector  # noqa: E402
from otel_xray_collector.config import CollectorConfig  # noqa: E402
from otel_xray_collector.console import STATIC_ROOT  # noqa: E402

#: The last commit with the hand-made server (the parent of the swap to waitress).
LEGACY_COMMIT = "9cf53e4cf6b2c177f8cbd6feb9209d2dbc841f9d^"
LEGACY_PATH = "collector/otel_xray_collector/api/server.py"
WINDOW = 900
BATCH = 500
JSON_HEADERS = {"Content-Type": "application/json"}


def legacy_server_class() -> Any:
    """``ApiServer`` of the old module, imported as a sibling of today's (its relative imports
    of ``..ingest.validate`` and ``.errors`` resolve to today's package)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{LEGACY_COMMIT}:{LEGACY_PATH}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="legacy-server-")) / "legacy_server.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("otel_xray_collector.api._legacy_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ApiServer


class CherootPeer:
    """The same WSGI application on cheroot (CherryPy's server), the other thread-pool
    candidate, for comparison only."""

    def __init__(self, app: Any) -> None:
        from cheroot import wsgi

        self.server = wsgi.Server(
            ("127.0.0.1", 0), app, numthreads=8, request_queue_size=1024, timeout=60
        )
        self.server.prepare()
        self.address: tuple[str, int] = self.server.bind_addr[:2]
        self.thread = threading.Thread(target=self.server.serve, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


def requests_for(trace_ids: list[str]) -> dict[str, tuple[str, str, bytes]]:
    now = time.time()
    window = {"StartTime": now - WINDOW, "EndTime": now + 5}
    return {
        "service_graph": ("POST", "/ServiceGraph", json.dumps(window).encode()),
        "trace_summaries": (
            "POST",
            "/TraceSummaries",
            json.dumps({**window, "TimeRangeType": "Event"}).encode(),
        ),
        "batch_get_traces": ("POST", "/Traces", json.dumps({"TraceIds": trace_ids[:5]}).encode()),
        "health": ("GET", "/health", b""),
    }


def call(connection: http.client.HTTPConnection, request: tuple[str, str, bytes]) -> None:
    method, path, body = request
    connection.request(method, path, body or None, JSON_HEADERS if body else {})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}")


def latencies(
    servers: dict[str, tuple[str, int]], request: tuple[str, str, bytes], repeat: int
) -> dict[str, float]:
    connections = {name: http.client.HTTPConnection(*address) for name, address in servers.items()}
    samples: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for _ in range(repeat):
            for name, connection in connections.items():  # alternate: same moment, same load
                started = time.perf_counter()
                call(connection, request)
                samples[name].append((time.perf_counter() - started) * 1000)
    finally:
        for connection in connections.values():
            connection.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def _client_process(
    address: tuple[str, int],
    request: tuple[str, str, bytes],
    clients: int,
    seconds: float,
    result: Any,
) -> None:
    counts = [0] * clients
    deadline = time.perf_counter() + seconds

    def run(slot: int) -> None:
        connection = http.client.HTTPConnection(*address, timeout=60)
        try:
            while time.perf_counter() < deadline:
                call(connection, request)
                counts[slot] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.put(sum(counts) / (time.perf_counter() - started))


def throughput(
    address: tuple[str, int], request: tuple[str, str, bytes], clients: int, seconds: float
) -> float:
    context = mp.get_context("spawn")
    result = context.Queue()
    process = context.Process(
        target=_client_process, args=(address, request, clients, seconds, result)
    )
    process.start()
    rate = float(result.get(timeout=seconds + 120))
    process.join(timeout=30)
    return rate


def load(collector: Collector, traces: int) -> list[str]:
    rng = random.Random(42)
    now = time.time()
    documents = [d for i in range(traces) for d in trace_documents(rng, now, i)]
    host, port = collector.tcp_address
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        for offset in range(0, len(documents), BATCH):
            chunk = [json.dumps(d) for d in documents[offset : offset + BATCH]]
            body = json.dumps({"TraceSegmentDocuments": chunk}).encode()
            call(connection, ("POST", "/TraceSegments", body))
    finally:
        connection.close()
    if not collector.wait_for_datagrams(0, timeout=300):
        raise RuntimeError("the collector did not finish indexing")
    return list(dict.fromkeys(d["trace_id"] for d in documents))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    sys.setswitchinterval(0.001)  # as the console script runs the collector (cli.py)
    legacy_class = legacy_server_class()
    with tempfile.TemporaryDirectory(prefix="otel-xray-api-bench-") as scratch:
        collector = Collector(
            CollectorConfig(
                udp="127.0.0.1:0",
                tcp="127.0.0.1:0",
                otlp=None,
                otlp_http=None,
                db=str(Path(scratch) / "xray.db"),
                retention_hours=0,
                max_db_mb=0,
            )
        ).start()
        try:
            trace_ids = load(collector, args.traces)
            assert collector.operations is not None
            legacy = legacy_class(
                "127.0.0.1", 0, collector.operations.routes, collector.status, STATIC_ROOT
            )
            legacy.start()
            assert collector._api is not None
            cheroot = CherootPeer(collector._api.app)
            cheroot.start()
            try:
                servers = {
                    "old": legacy.address,
                    "waitress": collector.tcp_address,
                    "cheroot": cheroot.address,
                }
                result: dict[str, Any] = {"bench": "api_server", "traces": args.traces}
                for name, request in requests_for(trace_ids).items():
                    median = latencies(servers, request, args.repeat)
                    rates = {
                        server: throughput(address, request, args.clients, args.seconds)
                        for server, address in servers.items()
                    }
                    result[f"{name}_ms"] = {k: round(v, 2) for k, v in median.items()}
                    result[f"{name}_ratio"] = round(median["waitress"] / median["old"], 3)
                    result[f"{name}_rps"] = {k: round(v, 1) for k, v in rates.items()}
                    result[f"{name}_rps_ratio"] = round(rates["waitress"] / rates["old"], 3)
                    result[f"{name}_cheroot_ratio"] = round(median["cheroot"] / median["old"], 3)
                    result[f"{name}_cheroot_rps_ratio"] = round(rates["cheroot"] / rates["old"], 3)
                result["clients"] = args.clients
                result["cpus"] = os.cpu_count()
                print(json.dumps(result))
            finally:
                cheroot.stop()
                legacy.stop()
        finally:
            collector.stop()


if __name__ == "__main__":
    main()
