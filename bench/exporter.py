"""Per-span cost of the awsxray exporter against its peers, on the same realistic spans.

Prints ONE JSON line. Spans: 600 requests as Flask + requests record them (one SERVER span with
the WSGI/Flask attributes and two CLIENT spans with the requests attributes each), exported in
BatchSpanProcessor-sized batches (512). Measured in the same run, medians of REPEAT runs:

* ``ours_ns_per_span``: ``XRayUdpSpanExporter.export`` (translate + encode + embed + sendto to a
  loopback UDP socket drained by a thread), embedding on (the default); ``ours_no_embed_*`` off;
* ``translate_ns_per_span``: ``span_to_documents`` alone (the translator's share);
* ``otlp_ns_per_span``: the official OTLP encoder on the same spans (``encode_spans`` +
  ``SerializeToString``), the work an OTLP exporter does before its network call;
* ``sdk_lifecycle_ns_per_span``: the SDK creating the same spans (start_span with the same
  attributes + end) with a no-op span processor: the cost the application already pays;
* ``encode_*_ns_per_doc``: encoding the translated documents with orjson vs the stdlib.

Targets: ``ours_vs_sdk_lifecycle`` <= 0.2 and ``otlp_vs_ours`` >= 4.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind  # noqa: E402

from otel_xray import encode  # noqa: E402
from otel_xray.exporter import XRayUdpSpanExporter  # noqa: E402
from otel_xray.translate import DEFAULT_OPTIONS, span_to_documents  # noqa: E402

REQUESTS = 600
BATCH = 512
REPEAT = 7

RESOURCE = Resource.create(
    {
        "service.name": "front",
        "service.version": "1.4.2",
        "cloud.provider": "aws",
        "cloud.platform": "aws_ec2",
        "cloud.region": "eu-west-1",
        "cloud.availability_zone": "eu-west-1a",
        "host.id": "i-0123456789abcdef0",
        "host.type": "m5.large",
    }
)


def server_attributes(i: int) -> dict[str, Any]:
    return {
        "http.method": "GET",
        "http.server_name": "127.0.0.1",
        "http.scheme": "http",
        "net.host.name": "front.internal",
        "net.host.port": 8080,
        "http.host": "front.internal:8080",
        "http.target": f"/orders/{i}?expand=items",
        "net.peer.ip": "10.0.3.17",
        "net.peer.port": 52344,
        "http.user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "http.flavor": "1.1",
        "http.route": "/orders/<int:order_id>",
        "http.status_code": 200,
    }


def client_attributes(i: int, j: int) -> dict[str, Any]:
    return {
        "http.method": "GET",
        "http.url": f"http://inventory.internal:8081/items/{i}-{j}?fields=stock",
        "http.status_code": 200 if j else 503,
        "http.user_agent": "python-requests/2.31.0",
    }


def record(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("bench")
    for i in range(REQUESTS):
        with tracer.start_as_current_span(
            "GET /orders/<int:order_id>", kind=SpanKind.SERVER, attributes=server_attributes(i)
        ):
            for j in range(2):
                with tracer.start_as_current_span(
                    "GET", kind=SpanKind.CLIENT, attributes=client_attributes(i, j)
                ):
                    pass


def make_spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    record(provider)
    provider.shutdown()
    return list(memory.get_finished_spans())


def batches(spans: Sequence[ReadableSpan]) -> list[Sequence[ReadableSpan]]:
    return [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]


def median_ns_per_item(run: Callable[[], None], items: int) -> float:
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - start) / items)
    return statistics.median(samples)


class Drain:
    """A loopback UDP socket read by a thread, so sends never hit a full receive buffer."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self.sock.recv(70_000)
            if data == b"stop":
                return
            self.received += 1

    def close(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"stop", self.sock.getsockname())
        self._thread.join(5)
        self.sock.close()


def measure_exporter(spans: list[ReadableSpan], drain: Drain, embed: bool) -> dict[str, float]:
    exporter = XRayUdpSpanExporter(drain.address, embed_subsegments=embed)
    groups = batches(spans)

    def run() -> None:
        for group in groups:
            exporter.export(group)

    cost = median_ns_per_item(run, len(spans))
    counters = exporter.counters
    exporter.shutdown()
    assert counters.dropped == 0, counters
    return {
        "ns_per_span": cost,
        "datagrams_per_span": counters.datagrams_sent / counters.spans_exported,
        "bytes_per_span": counters.bytes_sent / counters.spans_exported,
    }


def measure_sdk_lifecycle(spans: list[ReadableSpan]) -> float:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SpanProcessor())  # no-op: the SDK's own work only
    tracer = provider.get_tracer("bench")
    prepared = [(s.name, s.kind, dict(s.attributes or {})) for s in spans]

    def run() -> None:
        start_span = tracer.start_span
        for name, kind, attributes in prepared:
            start_span(name, kind=kind, attributes=attributes).end()

    cost = median_ns_per_item(run, len(spans))
    provider.shutdown()
    return cost


def main() -> None:
    spans = make_spans()
    groups = batches(spans)
    drain = Drain()
    try:
        embedded = measure_exporter(spans, drain, embed=True)
        flat = measure_exporter(spans, drain, embed=False)
    finally:
        drain.close()

    def translate_all() -> None:
        for span in spans:
            span_to_documents(span, DEFAULT_OPTIONS)

    translate_ns = median_ns_per_item(translate_all, len(spans))
    documents = [d for span in spans for d in span_to_documents(span, DEFAULT_OPTIONS)]

    def encode_each(dumps: Callable[[Any], bytes]) -> Callable[[], None]:
        def run() -> None:
            for document in documents:  # bodies are not kept, as in the exporter's trace loop
                dumps(document)

        return run

    encode_orjson = median_ns_per_item(encode_each(encode.dumps_orjson), len(documents))
    encode_json = median_ns_per_item(encode_each(encode.dumps_json), len(documents))
    otlp_ns = median_ns_per_item(
        lambda: [encode_spans(group).SerializeToString() for group in groups], len(spans)
    )
    sdk_ns = measure_sdk_lifecycle(spans)

    ours = embedded["ns_per_span"]
    result = {
        "bench": "exporter",
        "spans": len(spans),
        "batch": BATCH,
        "repeat": REPEAT,
        "encoder": encode.ENCODER_NAME,
        "ours_ns_per_span": round(ours),
        "ours_no_embed_ns_per_span": round(flat["ns_per_span"]),
        "translate_ns_per_span": round(translate_ns),
        "otlp_ns_per_span": round(otlp_ns),
        "sdk_lifecycle_ns_per_span": round(sdk_ns),
        "ours_vs_sdk_lifecycle": round(ours / sdk_ns, 3),
        "otlp_vs_ours": round(otlp_ns / ours, 2),
        "embed_datagrams_per_span": round(embedded["datagrams_per_span"], 3),
        "no_embed_datagrams_per_span": round(flat["datagrams_per_span"], 3),
        "no_embed_vs_embed_cost": round(flat["ns_per_span"] / ours, 2),
        "embed_bytes_per_span": round(embedded["bytes_per_span"]),
        "encode_orjson_ns_per_doc": round(encode_orjson),
        "encode_json_ns_per_doc": round(encode_json),
        "json_vs_orjson": round(encode_json / encode_orjson, 2),
        "targets": {
            "ours_vs_sdk_lifecycle<=0.2": ours / sdk_ns <= 0.2,
            "otlp_vs_ours>=4": otlp_ns / ours >= 4,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
