"""Real instrumentation output: a Flask app and a requests client, in-process, over loopback.

Checks what an X-Ray console user looks at, in each HTTP semantic-convention mode the
instrumentations support (old, stable, both).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug.serving import make_server

from tests.translate.spans import translate

USER_AGENT = "checkout-tests/1.0"


class Traced:
    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter, port: int) -> None:
        self.provider = provider
        self.exporter = exporter
        self.port = port


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, held for the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        yield int(probe.getsockname()[1])


@pytest.fixture(params=["", "http", "http/dup"], ids=["old", "stable", "dup"])
def traced(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", request.param)
    # The instrumentations read the opt-in once per process; start each mode afresh.
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_initialized", False)
    monkeypatch.setattr(
        _OpenTelemetrySemanticConventionStability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {}
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    app = Flask("checkout")

    @app.route("/hello/<name>")
    def hello(name: str) -> str:
        return f"hello {name}"

    @app.route("/boom")
    def boom() -> str:
        raise ValueError("kaboom")

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    requests_instrumentor = RequestsInstrumentor()
    if requests_instrumentor.is_instrumented_by_opentelemetry:
        requests_instrumentor.uninstrument()
    requests_instrumentor.instrument(tracer_provider=provider)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Traced(provider, exporter, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        requests_instrumentor.uninstrument()
        FlaskInstrumentor().uninstrument_app(app)
        provider.shutdown()


def _documents(spans: Any) -> dict[int, list[dict[str, Any]]]:
    return {span.context.span_id: translate(span) for span in spans}


def _only(spans: Any, kind: SpanKind) -> ReadableSpan:
    (span,) = [span for span in spans if span.kind is kind]
    return span


def test_server_segment_and_client_subsegment(traced: Traced) -> None:
    tracer = traced.provider.get_tracer(__name__)
    with tracer.start_as_current_span("job"):
        response = requests.get(
            f"http://127.0.0.1:{traced.port}/hello/bob?x=1",
            headers={"User-Agent": USER_AGENT},
            timeout=10,
        )
    assert response.status_code == 200
    spans = traced.exporter.get_finished_spans()
    server_span = _only(spans, SpanKind.SERVER)
    client_span = _only(spans, SpanKind.CLIENT)
    job_span = _only(spans, SpanKind.INTERNAL)
    docs = _documents(spans)

    (segment,) = docs[server_span.context.span_id]
    assert segment["name"] == "checkout"
    assert "type" not in segment and "namespace" not in segment
    assert segment["parent_id"] == f"{client_span.context.span_id:016x}"
    assert segment["http"]["request"] == {
        "method": "GET",
        "url": f"http://127.0.0.1:{traced.port}/hello/bob",  # the query is left out
        "user_agent": USER_AGENT,
        "client_ip": "127.0.0.1",
    }
    assert segment["http"]["response"]["status"] == 200
    assert (segment["fault"], segment["error"]) == (False, False)
    assert segment["metadata"]["default"]["http.route"] == "/hello/<name>"

    (client,) = docs[client_span.context.span_id]
    assert client["name"] == "127.0.0.1"
    assert client["namespace"] == "remote"
    assert client["type"] == "subsegment"
    assert client["parent_id"] == f"{job_span.context.span_id:016x}"
    assert client["http"]["request"]["method"] == "GET"
    assert client["http"]["request"]["url"] == f"http://127.0.0.1:{traced.port}/hello/bob"
    # keep_url_query opts back in, for the server's URL and the call's alike.
    for span in (server_span, client_span):
        (kept,) = translate(span, keep_url_query=True)
        assert kept["http"]["request"]["url"] == f"http://127.0.0.1:{traced.port}/hello/bob?x=1"
    assert "client_ip" not in client["http"]["request"]
    assert client["http"]["response"]["status"] == 200

    (job,) = docs[job_span.context.span_id]
    assert (job["name"], job["trace_id"]) == ("checkout", segment["trace_id"])


def test_server_error_is_a_fault_with_its_exception(traced: Traced) -> None:
    response = requests.get(f"http://127.0.0.1:{traced.port}/boom", timeout=10)
    assert response.status_code == 500
    spans = traced.exporter.get_finished_spans()
    (segment,) = translate(_only(spans, SpanKind.SERVER))
    assert segment["fault"] is True
    assert segment["http"]["response"]["status"] == 500
    (exception,) = segment["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("ValueError", "kaboom")
    # The root client call: a call subsegment inside this service's own segment.
    call, service = translate(_only(spans, SpanKind.CLIENT))
    assert call["fault"] is True and service["fault"] is True
    assert call["http"]["response"]["status"] == 500


def test_connection_refused_is_a_fault_subsegment_with_the_error(
    traced: Traced, closed_port: int
) -> None:
    port = closed_port
    tracer = traced.provider.get_tracer(__name__)
    with tracer.start_as_current_span("job"), pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/orders", timeout=10)
    client_span = _only(traced.exporter.get_finished_spans(), SpanKind.CLIENT)
    (doc,) = translate(client_span)
    assert (doc["name"], doc["namespace"], doc["type"]) == ("127.0.0.1", "remote", "subsegment")
    assert doc["fault"] is True
    assert "response" not in doc["http"] or "status" not in doc["http"]["response"]
    exceptions = doc["cause"]["exceptions"]
    assert exceptions[0]["type"] in ("ConnectionError", "requests.exceptions.ConnectionError")
    assert "Max retries exceeded" in exceptions[0]["message"]
    assert "Connection refused" in exceptions[0]["message"]
    # The recorded traceback's chain (urllib3's errors underneath) follows, linked by "cause".
    for outer, inner in zip(exceptions, exceptions[1:], strict=False):
        assert outer["cause"] == inner["id"]
    assert doc["http"]["request"]["url"] == f"http://127.0.0.1:{port}/orders"
