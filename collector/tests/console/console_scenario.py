"""Two real Flask services traced with OpenTelemetry and exported with our UDP exporter.

``front`` answers ``/checkout`` by calling ``back`` over HTTP with ``requests`` (so the map
gets a traced front -> back edge) and ``/health`` by itself. Stopping ``back`` closes its
port, so ``front``'s next calls fail with "connection refused" and answer 500, exactly what
a user sees when a downstream host dies.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

import requests
from flask import Flask, jsonify
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from werkzeug.serving import BaseWSGIServer, make_server

from otel_xray.exporter import XRayUdpSpanExporter


class ServerSpanCounter(SpanProcessor):
    """Signals each finished SERVER span: the last span a request produces in a service.

    It is registered after the exporting processor, so when it sees a span end, that span's
    datagram has already been sent.
    """

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            with self._changed:
                self._count += 1
                self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._count >= count, timeout):
                raise AssertionError(f"only {self._count} of {count} server spans finished")


class TracedService:
    """One Flask app on 127.0.0.1:<ephemeral> with its own TracerProvider (its service name)."""

    def __init__(self, name: str, app: Flask, daemon_address: str) -> None:
        self.name = name
        self.app = app
        self.exporter = XRayUdpSpanExporter(daemon_address=daemon_address)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": name}), id_generator=AwsXRayIdGenerator()
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.server_spans = ServerSpanCounter()
        self.provider.add_span_processor(self.server_spans)
        FlaskInstrumentor().instrument_app(app, tracer_provider=self.provider)
        self._server: BaseWSGIServer | None = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"flask-{name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: later connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def close(self) -> None:
        self.stop()
        FlaskInstrumentor().uninstrument_app(self.app)
        self.provider.shutdown()


def build_back() -> Flask:
    app = Flask("back")

    @app.get("/price")
    def price() -> Any:
        return jsonify(price=42)

    return app


def build_front(back_url: str) -> Flask:
    app = Flask("front")

    @app.get("/checkout")
    def checkout() -> Any:
        response = requests.get(f"{back_url}/price", timeout=5)
        return jsonify(total=response.json()["price"])

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    return app


class Shop:
    """front + back, exporting to one collector, plus a plain (untraced) HTTP client."""

    def __init__(self, daemon_address: str) -> None:
        self.back = TracedService("back", build_back(), daemon_address)
        self.front = TracedService("front", build_front(self.back.url), daemon_address)
        self._requests = RequestsInstrumentor()
        self._requests.instrument(tracer_provider=self.front.provider)
        self.front_requests = 0
        self.back_requests = 0

    def get(self, path: str) -> int:
        """Call front with urllib (not instrumented, so front's segment is the trace root)."""
        self.front_requests += 1
        if path.startswith("/checkout") and self.back_alive:
            self.back_requests += 1
        try:
            with urllib.request.urlopen(self.front.url + path, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    @property
    def back_alive(self) -> bool:
        return self.back._server is not None

    def wait_exported(self) -> int:
        """Wait until every request's spans were sent; return the datagrams sent so far."""
        self.front.server_spans.wait_for(self.front_requests)
        self.back.server_spans.wait_for(self.back_requests)
        return (
            self.front.exporter.counters.datagrams_sent + self.back.exporter.counters.datagrams_sent
        )

    def close(self) -> None:
        self._requests.uninstrument()
        self.front.close()
        self.back.close()
