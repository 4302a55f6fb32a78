"""Per-span translator cost for typical spans (Flask server, requests client), in microseconds.

Prints one JSON line: µs/span for each span shape, and the OTel SDK span lifecycle cost measured
in the same run (start + 12 attributes + end through a SimpleSpanProcessor with a no-op
exporter) with the translator's share of it, so machines of different speed compare.

``*_span_us`` translate the same span again and again: everything it touches stays in the CPU
caches. ``distinct_requests_span_us`` translates 600 requests' spans (a server span and two
client calls each, every request with its own URLs) once per pass, as an exporter meets them:
the spans come from memory, trace ids and URLs are new each time. That is the figure
``bench/exporter.py``'s ``translate_ns_per_span`` is comparable with, and it runs ~1.4x the
hot one. (Before the authority cache in ``names.url_host``, an lru cache keyed by whole URLs
missed on every client span and ``urlsplit`` ran each time; the hot figures never showed it.)
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from otel_xray.translate import TranslateOptions, span_to_documents

FLASK_SERVER = {
    "http.method": "GET",
    "http.server_name": "127.0.0.1",
    "http.scheme": "http",
    "net.host.name": "127.0.0.1:45621",
    "http.host": "127.0.0.1:45621",
    "net.host.port": 45621,
    "http.target": "/hello/bob?x=1",
    "net.peer.ip": "127.0.0.1",
    "net.peer.port": 53630,
    "http.user_agent": "python-requests/2.32.3",
    "http.flavor": "1.1",
    "http.route": "/hello/<name>",
}
REQUESTS_CLIENT = {
    "http.request.method": "GET",
    "url.full": "http://127.0.0.1:46189/hello/bob?x=1",
    "user_agent.original": "python-requests/2.32.3",
    "server.address": "127.0.0.1",
    "network.peer.address": "127.0.0.1",
    "server.port": 46189,
    "network.peer.port": 46189,
    "http.response.status_code": 200,
    "network.protocol.version": "1.1",
}


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


class _Null(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _per_call_us(func: Callable[[], Any], rounds: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(rounds):
            func()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best * 1e6


def _distinct_requests(resource: Resource, requests: int = 600) -> list[ReadableSpan]:
    collected = _Collect()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("bench")
    for i in range(requests):
        server_attributes = {**FLASK_SERVER, "http.target": f"/hello/user{i}?x={i}"}
        with tracer.start_as_current_span(
            "GET /hello/<name>", kind=SpanKind.SERVER, attributes=server_attributes
        ):
            for j in range(2):
                url = f"http://127.0.0.1:46189/items/{i}-{j}?x=1"
                with tracer.start_as_current_span(
                    "GET", kind=SpanKind.CLIENT, attributes={**REQUESTS_CLIENT, "url.full": url}
                ):
                    pass
    provider.shutdown()
    return collected.spans


def main() -> None:
    resource = Resource.create({"service.name": "bench"})
    collected = _Collect()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("bench")
    with tracer.start_as_current_span("GET /hello/<name>", kind=SpanKind.SERVER) as server:
        server.set_attributes(FLASK_SERVER)
        server.set_attribute("http.status_code", 200)
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as client:
            client.set_attributes(REQUESTS_CLIENT)
            client.set_status(StatusCode.UNSET)
    client_span, server_span = collected.spans
    options = TranslateOptions.build(environ={})

    null_provider = TracerProvider(resource=resource)
    null_provider.add_span_processor(SimpleSpanProcessor(_Null()))
    null_tracer = null_provider.get_tracer("bench")

    def lifecycle() -> None:
        with null_tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER) as span:
            span.set_attributes(FLASK_SERVER)

    distinct = _distinct_requests(resource)
    gc.collect()
    gc.freeze()  # made just now: keep the GC's young collections from walking them

    def translate_distinct() -> None:
        for span in distinct:
            span_to_documents(span, options)

    rounds = 20000
    server_us = _per_call_us(lambda: span_to_documents(server_span, options), rounds)
    client_us = _per_call_us(lambda: span_to_documents(client_span, options), rounds)
    distinct_us = _per_call_us(translate_distinct, 10) / len(distinct)
    lifecycle_us = _per_call_us(lifecycle, rounds // 4)
    print(
        json.dumps(
            {
                "bench": "translate_profile",
                "flask_server_span_us": round(server_us, 2),
                "requests_client_span_us": round(client_us, 2),
                "distinct_requests_span_us": round(distinct_us, 2),
                "sdk_span_lifecycle_us": round(lifecycle_us, 2),
                "server_translate_vs_lifecycle": round(server_us / lifecycle_us, 3),
                "client_translate_vs_lifecycle": round(client_us / lifecycle_us, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
