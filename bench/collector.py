"""Collector benchmark: UDP ingest with zero loss vs a raw recvfrom loop; queries vs a full scan.

Prints ONE JSON line. Figures, all measured in the same run on the same machine:

* ``raw_recvfrom_rate``: datagrams/s a bare Python ``recvfrom`` loop receives from the same
  sender process (the ceiling for any Python receiver here).
* ``udp_zero_loss_rate``: the highest paced send rate (documents/s) at which the collector
  process (the console script) receives, validates and commits every document, sustained for
  ``--seconds`` per step, with what was queued when the sender stopped drained within 10 %
  of the step (so the 64 MiB buffer can't hide a deficit); ``udp_ratio`` = that / the raw
  rate (target >= 0.5).
  ``index_catch_up_seconds``: how long indexing (summaries, graph aggregates) then needed to
  catch up; indexing is deliberately deferred while datagrams are waiting.
* ``otlp_http_{protobuf,json}_spans_per_second``: spans/s the collector process takes on its
  OTLP/HTTP listener from one keep-alive client posting 512-span batches back to back (each
  answered after its documents are committed), in protobuf and in OTLP/JSON;
  ``otlp_http_protobuf_vs_udp_ratio`` = protobuf spans/s / the UDP zero-loss documents/s.
* ``query_*``: over a store of ``--segments`` documents (4 per trace, spread over 6 hours):
  median latency of GetServiceGraph (whole window), GetTraceSummaries (first page, and with a
  filter) through the HTTP API, beside one full scan of the stored segments (read every
  document, and read+decode); ratios are query / read-only scan (target <= 0.1).

Usage: python bench/collector.py [--segments 1000000] [--seconds 4] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from otel_xray.wire import HEADER

ROOT = Path(__file__).resolve().parents[1]
#: Spans per OTLP/HTTP request: the SDK BatchSpanProcessor's default export batch.
OTLP_BATCH_SPANS = 512
sys.path.insert(0, str(ROOT / "collector"))

TEMPLATE = (
    b'{"trace_id":"1-%08x-%024x","id":"%016x","name":"svc-%d","start_time":%.6f,'
    b'"end_time":%.6f,"http":{"request":{"method":"GET","url":"http://svc/api/%d",'
    b'"client_ip":"127.0.0.1","user_agent":"bench"},"response":{"status":%d}},'
    b'"subsegments":[{"id":"%016x","name":"downstream","start_time":%.6f,"end_time":%.6f,'
    b'"namespace":"remote","http":{"request":{"url":"http://downstream/"},'
    b'"response":{"status":200}}}]}'
)


def datagram(index: int, now: float, run: int) -> bytes:
    status = 500 if index % 50 == 0 else 200
    return HEADER + TEMPLATE % (
        int(now),
        (run << 64) + index,
        index + 1,
        index % 7,
        now,
        now + 0.01,
        index % 20,
        status,
        (run << 48) + (index << 8) + 1,
        now,
        now + 0.005,
    )


def _sender(port: int, count: int, rate: float, run: int, ready: Any, go: Any, result: Any) -> None:
    now = time.time()
    payloads = [datagram(i, now, run) for i in range(count)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    address = ("127.0.0.1", port)
    ready.set()
    go.wait()
    start = time.perf_counter()
    for i, payload in enumerate(payloads):
        sock.sendto(payload, address)
        if rate and not i & 63:
            # Sleep (not spin) when ahead: a real sender's only cost is its sendto calls, and a
            # spinning pacer would take a whole core from the receiver being measured.
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0.0002:
                time.sleep(ahead)
    result.value = count / max(time.perf_counter() - start, 1e-9)


class Sender:
    """A separate process that prebuilds ``count`` unique datagrams, then sends them paced."""

    def __init__(self, port: int, count: int, rate: float, run: int) -> None:
        self.ready, self.go = mp.Event(), mp.Event()
        self.rate = mp.Value("d", 0.0)
        self.process = mp.Process(
            target=_sender, args=(port, count, rate, run, self.ready, self.go, self.rate)
        )
        self.process.start()
        self.ready.wait(120)

    def run(self) -> float:
        self.go.set()
        self.process.join()
        return float(self.rate.value)


def raw_recvfrom_rate(count: int) -> dict[str, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sender = Sender(sock.getsockname()[1], count, 0.0, 1)
    sock.settimeout(1.0)
    received = 0
    first = last = 0.0
    sender.go.set()
    try:
        while True:
            sock.recvfrom(65535)
            last = time.perf_counter()
            if not received:
                first = last
            received += 1
    except TimeoutError:
        pass
    sender.process.join()
    sock.close()
    rate = (received - 1) / (last - first) if received > 1 else 0.0
    return {
        "rate": rate,
        "received": received,
        "sent": count,
        "send_rate": float(sender.rate.value),
    }


class CollectorProcess:
    def __init__(self, db: Path, otlp_http: str = "off") -> None:
        script = Path(sys.executable).with_name("otel-xray-collector")
        self.process = subprocess.Popen(
            [
                str(script),
                "--udp",
                "127.0.0.1:0",
                "--tcp",
                "127.0.0.1:0",
                "--otlp",
                "off",
                "--otlp-http",
                otlp_http,
                "--db",
                str(db),
                "--log-level",
                "error",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        event = json.loads(self.process.stdout.readline())
        self.udp_port = int(event["udp"].rsplit(":", 1)[1])
        self.url = "http://" + event["tcp"]
        self.otlp_http = event.get("otlp_http")

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/status", timeout=30) as response:
            return dict(json.loads(response.read()))

    def settled(
        self, sent_total: int, timeout: float = 120.0, interval: float = 0.2
    ) -> dict[str, Any]:
        """Poll every ``interval`` s until every datagram the socket got is written or dropped
        (no event to await across processes); when fewer than ``sent_total`` arrived, until
        that count stood still for 0.2 s too, in case the kernel still holds some. A short
        ``interval`` measures the drain time closely (bench/store.py polls every 50 ms)."""
        deadline = time.monotonic() + timeout
        previous, since = -1, 0.0
        while True:
            status = self.status()
            now = time.monotonic()
            ingest = status["ingest"]
            handled = ingest["datagrams_processed"] + ingest["spillover"]
            received = status["udp"]["datagrams_received"]
            if handled == received and ingest["queued_datagrams"] == 0:
                if received >= sent_total or (received == previous and now - since >= 0.2):
                    return status
                if received != previous:
                    previous, since = received, now
            if now > deadline:
                return status
            time.sleep(interval)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def otlp_requests(count: int, spans: int, media: str) -> list[bytes]:
    """``count`` OTLP/HTTP bodies of ``spans`` spans each (a server span with an HTTP call and
    a child, the SDK exporters' batch shape), encoded as ``media``."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    bodies = []
    now = time.time_ns()
    for request_index in range(count):
        request = trace_service_pb2.ExportTraceServiceRequest()
        group = request.resource_spans.add()
        name = group.resource.attributes.add()
        name.key, name.value.string_value = "service.name", "bench-otlp"
        scope_spans = group.scope_spans.add()
        scope_spans.scope.name = "bench"
        for index in range(spans):
            span = scope_spans.spans.add()
            trace_number = request_index * spans + index
            span.trace_id = (now // 1_000_000_000 << 96 | trace_number + 1).to_bytes(16, "big")
            span.span_id = (trace_number + 1).to_bytes(8, "big")
            span.name = "GET /api"
            span.kind = 2
            span.start_time_unix_nano = now - 5_000_000
            span.end_time_unix_nano = now
            for key, value in (("http.request.method", "GET"), ("url.full", "http://svc/api")):
                attribute = span.attributes.add()
                attribute.key, attribute.value.string_value = key, value
            status = span.attributes.add()
            status.key, status.value.int_value = "http.response.status_code", 200
        if media == "application/json":
            document = json_format.MessageToDict(request)
            for group_dict in document["resourceSpans"]:
                for scope_dict in group_dict["scopeSpans"]:
                    for span_dict in scope_dict["spans"]:  # OTLP/JSON ids are hex
                        for key in ("traceId", "spanId"):
                            span_dict[key] = base64.b64decode(span_dict[key]).hex()
            bodies.append(json.dumps(document).encode())
        else:
            bodies.append(request.SerializeToString())
    return bodies


def otlp_http_ingest(workdir: Path, requests: int, spans: int) -> dict[str, float]:
    """Spans/s the collector process takes over OTLP/HTTP (acknowledged = committed), one
    keep-alive client sending batches back to back, protobuf then JSON."""
    collector = CollectorProcess(workdir / "otlp-http.db", otlp_http="127.0.0.1:0")
    try:
        host, port = collector.otlp_http.rsplit(":", 1)
        rates = {}
        for media in ("application/x-protobuf", "application/json"):
            bodies = otlp_requests(requests, spans, media)
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            started = time.perf_counter()
            for body in bodies:
                connection.request("POST", "/v1/traces", body, {"Content-Type": media})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"OTLP/HTTP {media}: HTTP {response.status}")
            rates[media] = requests * spans / (time.perf_counter() - started)
            connection.close()
        return {
            "protobuf": rates["application/x-protobuf"],
            "json": rates["application/json"],
        }
    finally:
        collector.stop()


def udp_zero_loss(ceiling: float, seconds: float, workdir: Path) -> dict[str, Any]:
    collector = CollectorProcess(workdir / "ingest.db")
    steps = []
    best = 0.0
    sent_total = 0
    try:
        for run, fraction in enumerate((0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0), 2):
            rate = ceiling * fraction
            count = int(rate * seconds)
            before = collector.status()
            sender = Sender(collector.udp_port, count, rate, run)
            actual = sender.run()
            sent_at = time.monotonic()
            sent_total += count
            after = collector.settled(sent_total)
            drain = time.monotonic() - sent_at
            stored = after["stored"] - before["stored"]
            step = {
                "target_rate": round(rate),
                "sent_rate": round(actual),
                "sent": count,
                "stored": stored,
                "kernel_drops": sent_total - after["udp"]["datagrams_received"],
                "spillover": after["spillover"],
                "drain_seconds": round(drain, 2),
            }
            steps.append(step)
            # Sustained = nothing lost AND the collector kept pace: what was still queued
            # when the sender stopped drained within 10 % of the step's duration (a backlog
            # that a bigger buffer merely hides does not count).
            if stored != count or drain > 0.1 * seconds + 0.3:
                break
            best = max(best, actual)
        started = time.monotonic()
        while collector.status()["store"]["index_lag_documents"] > 0:
            time.sleep(0.5)
        catch_up = time.monotonic() - started
    finally:
        collector.stop()
    return {"best": best, "steps": steps, "index_catch_up_seconds": round(catch_up, 2)}


def build_store(path: Path, segments: int) -> dict[str, float]:
    """Fill a store with 4-document traces through the store's own write + index path."""
    from otel_xray_collector.ingest.validate import parse_body
    from otel_xray_collector.store.sqlite import SqliteStore

    store = SqliteStore(str(path))
    now = time.time()
    span = 6 * 3600.0
    traces = segments // 4
    started = time.perf_counter()
    batch: list[Any] = []
    for index in range(traces):
        start = now - span + span * index / traces
        for body in _trace_documents(index, start):
            batch.extend(parse_body(body))
        if len(batch) >= 4000:
            store.write(batch)
            batch = []
            while store.index_pending(4000):
                pass
    store.write(batch)
    while store.index_pending(4000):
        pass
    elapsed = time.perf_counter() - started
    store.close()
    return {
        "documents": traces * 4,
        "seconds": round(elapsed, 1),
        "documents_per_second": round(traces * 4 / elapsed),
    }


def _trace_documents(index: int, start: float) -> list[bytes]:
    trace_id = f"1-{int(start):08x}-{index:024x}"
    ids = [f"{(index << 8) + k:016x}" for k in range(8)]
    status = 500 if index % 40 == 0 else (429 if index % 97 == 0 else 200)
    frontend = {
        "trace_id": trace_id,
        "id": ids[0],
        "name": f"frontend-{index % 3}",
        "start_time": start,
        "end_time": start + 0.2,
        "origin": "AWS::EC2::Instance",
        "http": {
            "request": {
                "method": "GET",
                "url": f"http://front/api/{index % 20}",
                "client_ip": "10.0.0.1",
                "user_agent": "bench",
            },
            "response": {"status": status},
        },
        "annotations": {"customer": f"c{index % 100}"},
        "user": f"u{index % 50}",
        "subsegments": [
            {
                "id": ids[1],
                "name": "backend",
                "namespace": "remote",
                "traced": True,
                "start_time": start + 0.01,
                "end_time": start + 0.15,
                "http": {"request": {"url": "http://backend/"}, "response": {"status": status}},
            },
            {
                "id": ids[2],
                "name": "DynamoDB",
                "namespace": "aws",
                "start_time": start + 0.15,
                "end_time": start + 0.17,
                "aws": {"operation": "GetItem", "table_name": "orders"},
            },
        ],
    }
    backend = {
        "trace_id": trace_id,
        "id": ids[3],
        "name": "backend",
        "parent_id": ids[1],
        "start_time": start + 0.02,
        "end_time": start + 0.14,
        "http": {"request": {"url": "http://backend/"}, "response": {"status": status}},
        "subsegments": [
            {
                "id": ids[4],
                "name": "worker",
                "namespace": "remote",
                "traced": True,
                "start_time": start + 0.03,
                "end_time": start + 0.12,
            }
        ],
    }
    worker = {
        "trace_id": trace_id,
        "id": ids[5],
        "name": "worker",
        "parent_id": ids[4],
        "start_time": start + 0.04,
        "end_time": start + 0.11,
        "subsegments": [
            {
                "id": ids[6],
                "name": "api.partner.example",
                "namespace": "remote",
                "start_time": start + 0.05,
                "end_time": start + 0.1,
                "http": {
                    "request": {"url": "https://api.partner.example/"},
                    "response": {"status": 200},
                },
            }
        ],
    }
    streamed = {
        "trace_id": trace_id,
        "id": ids[7],
        "name": "orders-db",
        "type": "subsegment",
        "parent_id": ids[3],
        "namespace": "remote",
        "start_time": start + 0.05,
        "end_time": start + 0.06,
        "sql": {"url": "postgresql://db/orders"},
    }
    return [json.dumps(d).encode() for d in (frontend, backend, worker, streamed)]


def full_scan(path: Path) -> dict[str, float]:
    import sqlite3

    from otel_xray.wire import loads

    conn = sqlite3.connect(str(path))
    started = time.perf_counter()
    count = 0
    for _ in conn.execute("SELECT doc FROM segments"):
        count += 1
    read_only = time.perf_counter() - started
    started = time.perf_counter()
    for (doc,) in conn.execute("SELECT doc FROM segments"):
        loads(doc)
    decode = time.perf_counter() - started
    conn.close()
    return {"rows": count, "read_seconds": read_only, "read_decode_seconds": decode}


def query_latencies(path: Path) -> dict[str, float]:
    from otel_xray_collector.app import Collector
    from otel_xray_collector.config import CollectorConfig

    collector = Collector(
        CollectorConfig(
            udp="127.0.0.1:0",
            tcp="127.0.0.1:0",
            otlp=None,
            otlp_http=None,
            db=str(path),
            retention_hours=0,
            max_db_mb=0,
        )
    )
    collector.start()
    try:
        now = time.time()
        window = {"StartTime": now - 6 * 3600 - 60, "EndTime": now + 60}

        def timed(path_: str, body: dict[str, Any]) -> float:
            request = urllib.request.Request(
                collector.endpoint_url + path_,
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as response:
                    payload = json.loads(response.read())
                runs.append(time.perf_counter() - started)
            assert payload, path_
            return statistics.median(runs)

        return {
            "service_graph": timed("/ServiceGraph", window),
            "trace_summaries": timed("/TraceSummaries", {**window, "TimeRangeType": "Event"}),
            "trace_summaries_filtered": timed(
                "/TraceSummaries",
                {
                    **window,
                    "TimeRangeType": "Event",
                    "FilterExpression": (
                        'service("backend") { fault } AND http.url CONTAINS "/api/1"'
                    ),
                },
            ),
        }
    finally:
        collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--raw-count", type=int, default=400_000)
    parser.add_argument("--otlp-requests", type=int, default=100, help="OTLP/HTTP batches")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.segments, args.seconds, args.raw_count = 40_000, 1.0, 100_000
        args.otlp_requests = 10
    workdir = Path(tempfile.mkdtemp(prefix="otel-xray-bench-"))
    try:
        raw = raw_recvfrom_rate(args.raw_count)
        ingest = udp_zero_loss(raw["rate"], args.seconds, workdir)
        otlp_http = otlp_http_ingest(workdir, args.otlp_requests, OTLP_BATCH_SPANS)
        store_path = workdir / "queries.db"
        built = build_store(store_path, args.segments)
        scan = full_scan(store_path)
        queries = query_latencies(store_path)
        result = {
            "bench": "collector",
            "raw_recvfrom_rate": round(raw["rate"]),
            "raw_recvfrom_loss": raw["sent"] - raw["received"],
            "udp_zero_loss_rate": round(ingest["best"]),
            "udp_ratio": round(ingest["best"] / raw["rate"], 3) if raw["rate"] else None,
            "udp_steps": ingest["steps"],
            "index_catch_up_seconds": ingest["index_catch_up_seconds"],
            "otlp_http_protobuf_spans_per_second": round(otlp_http["protobuf"]),
            "otlp_http_json_spans_per_second": round(otlp_http["json"]),
            "otlp_http_protobuf_vs_udp_ratio": round(otlp_http["protobuf"] / ingest["best"], 3)
            if ingest["best"]
            else None,
            "store_documents": built["documents"],
            "store_build_documents_per_second": built["documents_per_second"],
            "full_scan_read_seconds": round(scan["read_seconds"], 4),
            "full_scan_read_decode_seconds": round(scan["read_decode_seconds"], 4),
            **{f"query_{k}_seconds": round(v, 4) for k, v in queries.items()},
            **{f"query_{k}_ratio": round(v / scan["read_seconds"], 4) for k, v in queries.items()},
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
