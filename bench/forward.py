"""Forwarding over OTLP, the local part: segment documents -> the gzip'd protobuf body sent.

Prints ONE JSON line. What the forwarder does per batch before the network (parse the JSON,
turn each document back into spans, find each subsegment's service, pack requests within
X-Ray's limits, encode, gzip) is timed on the documents our translator makes from a realistic
request (a server span, an SQL call, an AWS SDK call, an HTTP call with an exception, an
internal span). Peers measured in the same run on the same spans: the OpenTelemetry SDK's own
OTLP encoder (``encode_spans`` + serialise + gzip: what an application pays to send the same
spans over OTLP) as ``vs_sdk_otlp_encoder`` (time per span, ours over theirs), and the library's
translator in the other direction (span -> segment document JSON) as ``vs_translator``. The
three run interleaved, REPEAT times; figures are medians (of the per-round ratios for ratios).
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402
from otel_xray_collector.forward.otlp_convert import (  # noqa: E402
    ServiceDirectory,
    build_requests,
    convert_document,
    give_up_service,
    resolve_services,
    trim_span,
)

from otel_xray.translate import span_to_documents  # noqa: E402

REPEAT = 15
REQUESTS = 200  # 5 spans each: BATCH documents


def record() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "checkout", "cloud.provider": "aws", "cloud.platform": "aws_ec2"}
        ),
        id_generator=AwsXRayIdGenerator(),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for _ in range(REQUESTS):
        with tracer.start_as_current_span(
            "GET /cart",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.full": "http://shop.example.com/cart?id=7",
                "http.response.status_code": 200,
                "client.address": "203.0.113.9",
                "user_agent.original": "curl/8.0",
                "cart.items": 3,
            },
        ):
            with tracer.start_as_current_span(
                "SELECT",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system": "postgresql",
                    "db.name": "shop",
                    "server.address": "db.local",
                    "db.statement": "SELECT * FROM carts WHERE id = ?",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "DynamoDB.GetItem",
                kind=SpanKind.CLIENT,
                attributes={
                    "rpc.system": "aws-api",
                    "rpc.service": "DynamoDB",
                    "rpc.method": "GetItem",
                    "aws.table_name": "prices",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "POST",
                    "url.full": "http://payments.internal/charge",
                    "http.response.status_code": 503,
                },
            ) as call:
                try:
                    raise ConnectionError("payments unavailable")
                except ConnectionError as exc:
                    call.record_exception(exc)
                    call.set_status(Status(StatusCode.ERROR))
            with tracer.start_as_current_span("price cart"):
                pass
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def forward_body(texts: list[str]) -> int:
    """The forwarder's work for one batch, minus the network: bytes of gzip'd bodies."""
    converted = [convert_document(json.loads(text)) for text in texts]
    for item in resolve_services(converted, ServiceDirectory()):
        give_up_service(item)
    items = [
        (index, item.resource, span)
        for index, item in enumerate(converted)
        for span in item.spans
        if trim_span(span)
    ]
    return sum(
        len(gzip.compress(request.message.SerializeToString(), compresslevel=6))
        for request in build_requests(items)
    )


def sdk_body(spans: list[ReadableSpan]) -> int:
    return len(gzip.compress(encode_spans(spans).SerializeToString(), compresslevel=6))


def translate(spans: list[ReadableSpan]) -> int:
    return sum(len(json.dumps(doc)) for span in spans for doc in span_to_documents(span))


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    spans = record()
    texts = [json.dumps(doc) for span in spans for doc in span_to_documents(span)]
    ours, vs_sdk, vs_translator = [], [], []
    for _ in range(REPEAT):  # interleaved, so a busy moment weighs on all three alike
        mine = seconds(lambda: forward_body(texts))
        ours.append(mine)
        vs_sdk.append(mine / seconds(lambda: sdk_body(spans)))
        vs_translator.append(mine / seconds(lambda: translate(spans)))
    median = statistics.median(ours)
    print(
        json.dumps(
            {
                "bench": "forward_otlp",
                "documents": len(texts),
                "documents_per_s": round(len(texts) / median),
                "us_per_span": round(median * 1e6 / len(spans), 1),
                "vs_sdk_otlp_encoder": round(statistics.median(vs_sdk), 2),
                "vs_translator": round(statistics.median(vs_translator), 2),
                "body_bytes_per_span": round(forward_body(texts) / len(spans), 1),
                "sdk_body_bytes_per_span": round(sdk_body(spans) / len(spans), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
