"""Runs in the aws-opentelemetry-distro helper venv: AWS's own OTLP-over-UDP span exporter,
wired as the distro wires it on Lambda, sends sampled (``T1S``) and unsampled (``T1U``) spans to
``AWS_XRAY_DAEMON_ADDRESS``. Prints one JSON line: the trace ids (hex) of each kind."""

from __future__ import annotations

import json
import os

from amazon.opentelemetry.distro.always_record_sampler import AlwaysRecordSampler
from amazon.opentelemetry.distro.aws_batch_unsampled_span_processor import (
    BatchUnsampledSpanProcessor,
)
from amazon.opentelemetry.distro.otlp_udp_exporter import OTLPUdpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import SpanKind

ENDPOINT = os.environ["AWS_XRAY_DAEMON_ADDRESS"]
RESOURCE = Resource.create({"service.name": "adot-lambda", "cloud.provider": "aws"})


def sampled() -> str:
    provider = TracerProvider(resource=RESOURCE, sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(OTLPUdpSpanExporter(endpoint=ENDPOINT)))
    tracer = provider.get_tracer("adot-test")
    with tracer.start_as_current_span(
        "GET /orders",
        kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "http.url": "https://api.example/orders"},
    ) as root:
        with tracer.start_as_current_span(
            "DynamoDB.Query",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "aws-api", "rpc.service": "DynamoDB"},
        ):
            pass
    provider.force_flush()
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def unsampled() -> str:
    provider = TracerProvider(resource=RESOURCE, sampler=AlwaysRecordSampler(ALWAYS_OFF))
    exporter = OTLPUdpSpanExporter(endpoint=ENDPOINT, sampled=False)
    provider.add_span_processor(BatchUnsampledSpanProcessor(span_exporter=exporter))
    tracer = provider.get_tracer("adot-test")
    with tracer.start_as_current_span("GET /health", kind=SpanKind.SERVER) as root:
        for _ in range(2):
            with tracer.start_as_current_span("check", kind=SpanKind.INTERNAL):
                pass
    provider.force_flush()
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


if __name__ == "__main__":
    print(json.dumps({"sampled": sampled(), "unsampled": unsampled()}))
