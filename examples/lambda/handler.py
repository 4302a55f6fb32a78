"""An AWS Lambda function traced with otel-xray.

Lambda (with Active Tracing on) creates the function's own segment and hands its id to the
runtime in ``_X_AMZN_TRACE_ID``; ``XRayLambdaPropagator`` reads it, so the handler's span hangs
under Lambda's segment in the same trace, and the invocation's HTTP headers (API Gateway, ALB)
are used when Lambda did not sample. Spans go over UDP to the daemon Lambda runs next to the
function (``AWS_XRAY_DAEMON_ADDRESS`` is set by Lambda).

Deploy with handler ``handler.handler``; see README.md.
"""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource, get_aggregated_resources
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Tracer

from otel_xray import XRayLambdaPropagator, XRayUdpSpanExporter, put_annotation, put_metadata
from otel_xray.detectors.lambda_ import LambdaResourceDetector

PROPAGATOR = XRayLambdaPropagator()
PRICES = {"apple": 1.25, "pear": 0.9, "plum": 2.4}

provider: TracerProvider | None = None


def build_provider(exporter: SpanExporter | None = None) -> TracerProvider:
    """The tracer provider, built once per execution environment (the cold start).

    ``SimpleSpanProcessor``: Lambda freezes the process between invocations, so a batching
    thread might hold spans until the next one; a UDP send per span costs microseconds.
    """
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "lambda")
    resource = get_aggregated_resources(
        [LambdaResourceDetector()], Resource.create({"service.name": name})
    )
    tracer_provider = TracerProvider(resource=resource, id_generator=AwsXRayIdGenerator())
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter or XRayUdpSpanExporter()))
    return tracer_provider


def _tracer() -> Tracer:
    global provider
    if provider is None:
        provider = build_provider()
    return provider.get_tracer("examples.lambda")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Price an item: ``{"pathParameters": {"item": "apple"}}`` (API Gateway proxy shape)."""
    tracer = _tracer()
    headers = event.get("headers") or {}
    parent = PROPAGATOR.extract(headers)
    attributes = {
        "faas.invocation_id": context.aws_request_id,
        "cloud.resource_id": context.invoked_function_arn,
        "faas.trigger": "http" if headers else "other",
    }
    with tracer.start_as_current_span(
        context.function_name, context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        item = (event.get("pathParameters") or {}).get("item", "")
        put_annotation("item", item)
        put_metadata("request_id", context.aws_request_id, namespace="lambda")
        with tracer.start_as_current_span("lookup-price"):
            price = PRICES.get(item)
        if price is None:
            response = {"statusCode": 404, "body": json.dumps({"error": f"no such item: {item}"})}
        else:
            response = {"statusCode": 200, "body": json.dumps({"item": item, "price": price})}
        # The status code decides the segment's error (4xx) / fault (5xx) flags.
        span.set_attribute("http.response.status_code", response["statusCode"])
        return response
