"""CPU per traced request: aws-xray-sdk vs OpenTelemetry alone vs OpenTelemetry + otel-xray.

Prints ONE JSON line. One request = a SERVER span with the attributes the Flask/WSGI
instrumentation sets, one CLIENT HTTP call (the requests instrumentation's attributes) and one
SQL span (a DB-API instrumentation's), recorded and shipped by:

* ``xray_sdk``: ``aws-xray-sdk``'s recorder (segment + two subsegments, HTTP and SQL metadata
  set as its Flask middleware and patches do), its own UDP emitter;
* ``otel``: the OpenTelemetry SDK alone: a ``BatchSpanProcessor`` with a no-op exporter (the
  SDK's lifecycle, context handling and default processor, nothing shipped);
* ``otel_xray``: the OpenTelemetry SDK + otel-xray's default setup (``configure()``'s
  processor and exporter: translate, encode, one datagram per request);
* ``otel_otlp``: the OpenTelemetry SDK + a ``BatchSpanProcessor`` whose exporter runs the
  official OTLP protobuf encoder (``encode_spans`` + ``SerializeToString``), the work an OTLP
  exporter does before its network call.

All OpenTelemetry variants use the same resource, ``ALWAYS_ON`` sampling and the X-Ray id
generator, so they differ only in what happens after a span ends. Every datagram goes to a
daemon stand-in in another process (bench/exporter.py's ``Drain``), which reads continuously.

CPU is the process's (``time.process_time``: every thread, so the background senders and batch
workers are counted); each sample is ``REQUESTS`` requests followed by ``force_flush``, so a
variant's background work falls in its own sample. Samples are taken round-robin (see
``bench.exporter.race``) and the medians compared.

Targets: ``added_vs_otel`` (what otel-xray adds on top of OpenTelemetry alone, relative to it)
<= 0.15 and ``otel_xray_vs_otel_otlp`` <= 0.6.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from bench.exporter import RESOURCE, Drain, client_attributes, server_attributes  # noqa: E402
from otel_xray import configure  # noqa: E402

REQUESTS = 400
REPEAT = 15

SQL = "SELECT id, stock FROM items WHERE order_id = %s"


def sql_attributes() -> dict[str, str | int]:
    return {
        "db.system": "postgresql",
        "db.name": "inventory",
        "db.user": "shop",
        "db.statement": SQL,
        "net.peer.name": "db.internal",
        "net.peer.port": 5432,
    }


class NoopExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class OtlpEncodeExporter(SpanExporter):
    """The OTLP exporters' work before the network: protobuf messages, then bytes."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS


#: Makes ``count`` requests, numbered from ``base`` (each with its own URLs).
Requests = Callable[[int, int], None]


def otel_requests(provider: TracerProvider) -> Requests:
    tracer = provider.get_tracer("bench")
    start = tracer.start_as_current_span

    def run(base: int, count: int = REQUESTS) -> None:
        for i in range(base, base + count):
            with start(
                "GET /orders/<int:order_id>", kind=SpanKind.SERVER, attributes=server_attributes(i)
            ):
                with start("GET", kind=SpanKind.CLIENT, attributes=client_attributes(i, 1)):
                    pass
                with start("SELECT inventory", kind=SpanKind.CLIENT, attributes=sql_attributes()):
                    pass

    return run


def otel_provider(processor: object) -> TracerProvider:
    provider = TracerProvider(
        sampler=ALWAYS_ON, resource=RESOURCE, id_generator=AwsXRayIdGenerator()
    )
    provider.add_span_processor(processor)  # type: ignore[arg-type]
    return provider


def xray_sdk_requests(address: str) -> Requests:
    from aws_xray_sdk.core.models import http
    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    recorder = AWSXRayRecorder()
    recorder.configure(
        service="front",
        sampling=False,
        daemon_address=address,
        context_missing="LOG_ERROR",
        plugins=(),
    )

    def run(base: int, count: int = REQUESTS) -> None:
        for i in range(base, base + count):
            segment = recorder.begin_segment("front")
            segment.put_http_meta(http.URL, f"http://front.internal:8080/orders/{i}")
            segment.put_http_meta(http.METHOD, "GET")
            segment.put_http_meta(http.USER_AGENT, server_attributes(i)["http.user_agent"])
            segment.put_http_meta(http.CLIENT_IP, "10.0.3.17")
            call = recorder.begin_subsegment("inventory.internal", "remote")
            assert call is not None
            call.put_http_meta(http.URL, f"http://inventory.internal:8081/items/{i}-1")
            call.put_http_meta(http.METHOD, "GET")
            call.put_http_meta(http.STATUS, 200)
            recorder.end_subsegment()
            query = recorder.begin_subsegment("inventory@db.internal", "remote")
            assert query is not None
            query.set_sql(
                {
                    "database_type": "postgresql",
                    "url": "db.internal:5432",
                    "user": "shop",
                    "sanitized_query": SQL,
                }
            )
            recorder.end_subsegment()
            segment.put_http_meta(http.STATUS, 200)
            recorder.end_segment()

    return run


def measure(drain: Drain) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    """Every setup's median CPU per request (µs), and otel-xray's processor and exporter
    counters."""
    providers: dict[str, TracerProvider] = {
        "otel": otel_provider(BatchSpanProcessor(NoopExporter())),
        "otel_xray": configure(
            "front",
            resource=RESOURCE,
            sampler=ALWAYS_ON,
            daemon_address=drain.address,
            set_global=False,
        ),
        "otel_otlp": otel_provider(BatchSpanProcessor(OtlpEncodeExporter())),
    }
    runs: dict[str, Requests] = {"xray_sdk": xray_sdk_requests(drain.address)}
    for name, provider in providers.items():
        runs[name] = otel_requests(provider)
    flushes: dict[str, Callable[[], object]] = {
        name: provider.force_flush for name, provider in providers.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up: caches, lazily built plans, first socket use
        run(0, REQUESTS)
    for flush in flushes.values():
        flush()
    for round_ in range(REPEAT):
        for name, run in runs.items():
            gc.collect()
            start = time.process_time_ns()
            run((round_ + 1) * REQUESTS, REQUESTS)
            flush_ours = flushes.get(name)
            if flush_ours is not None:
                flush_ours()
            samples[name].append((time.process_time_ns() - start) / REQUESTS / 1000)
    ours = providers["otel_xray"]._active_span_processor._span_processors[0]
    counters = ours.stats()  # type: ignore[attr-defined]
    exporter_counters = ours.exporter.stats()  # type: ignore[attr-defined]
    for provider in providers.values():
        provider.shutdown()
    us = {name: statistics.median(values) for name, values in samples.items()}
    return counters, exporter_counters, us


def main() -> None:
    drain = Drain()
    drain.follow()  # the stand-in reads all along, in its own process
    try:
        counters, exporter_counters, us = measure(drain)
    finally:
        drain.pause()
        drain.close()
    assert counters["dropped_queue_full"] == 0 and exporter_counters["dropped"] == 0
    added = us["otel_xray"] - us["otel"]
    result = {
        "bench": "request",
        "requests_per_sample": REQUESTS,
        "repeat": REPEAT,
        "cpu_us_per_request": {name: round(value, 1) for name, value in us.items()},
        "added_by_otel_xray_us": round(added, 1),
        "added_vs_otel": round(added / us["otel"], 3),
        "otel_xray_vs_otel_otlp": round(us["otel_xray"] / us["otel_otlp"], 3),
        "otel_xray_vs_xray_sdk": round(us["otel_xray"] / us["xray_sdk"], 3),
        "otel_vs_xray_sdk": round(us["otel"] / us["xray_sdk"], 3),
        "datagrams_per_request": round(
            exporter_counters["datagrams_sent"] / (REQUESTS * (REPEAT + 1)), 3
        ),
        "targets": {
            "added_vs_otel<=0.15": added / us["otel"] <= 0.15,
            "otel_xray_vs_otel_otlp<=0.6": us["otel_xray"] / us["otel_otlp"] <= 0.6,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
