"""The shop app (Flask + requests, official instrumentations) traced by configure() in-process.

Real HTTP on loopback to the app and to its backend, real UDP from the exporter to the
``udp_daemon`` fixture; every datagram must be what the X-Ray console needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from werkzeug.serving import make_server

from otel_xray.provider import configure
from tests.e2e.apps.shop import create_app
from tests.e2e.harness import get
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon


def walk(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield document
    for child in document.get("subsegments", []):
        yield from walk(child)


@pytest.fixture
def shop(
    udp_daemon: UdpDaemon, backend_url: str, closed_url: str
) -> Iterator[tuple[str, TracerProvider]]:
    provider = configure(
        "shop",
        daemon_address=udp_daemon.address,
        detectors=[],
        sampler=ALWAYS_ON,
        set_global=False,
    )
    app = create_app(backend_url, closed_url)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        RequestsInstrumentor().uninstrument()
        FlaskInstrumentor.uninstrument_app(app)
        provider.shutdown()


def test_requests_become_segments_with_remote_subsegments(
    shop: tuple[str, TracerProvider], udp_daemon: UdpDaemon, backend_url: str
) -> None:
    url, provider = shop
    assert get(f"{url}/orders") == 200
    assert provider.force_flush()
    (segment,) = udp_daemon.documents(1)
    assert_valid(segment)
    assert segment["name"] == "shop" and "type" not in segment
    assert segment["http"]["request"]["method"] == "GET"
    assert segment["http"]["request"]["url"].endswith("/orders")
    assert segment["http"]["response"]["status"] == 200
    assert segment["fault"] is False and segment["error"] is False
    (call,) = segment["subsegments"]
    assert call["name"] == "127.0.0.1"
    assert call["namespace"] == "remote"
    assert call["http"]["request"]["method"] == "GET"
    assert call["http"]["request"]["url"].startswith(f"{backend_url}/items")
    assert call["http"]["response"]["status"] == 200
    assert call["parent_id"] == segment["id"] and call["trace_id"] == segment["trace_id"]
    # X-Ray trace ids: the first 8 hex digits are the start time.
    assert int(segment["trace_id"].split("-")[1], 16) == int(segment["start_time"])


def test_refused_connection_is_a_fault_subsegment_naming_the_error(
    shop: tuple[str, TracerProvider], udp_daemon: UdpDaemon
) -> None:
    url, provider = shop
    assert get(f"{url}/broken") == 502
    assert provider.force_flush()
    (segment,) = udp_daemon.documents(1)
    for entity in walk(segment):
        assert_valid(entity)
    assert segment["fault"] is True and segment["http"]["response"]["status"] == 502
    (call,) = segment["subsegments"]
    assert call["namespace"] == "remote" and call["fault"] is True
    assert "status" not in call["http"].get("response", {}), "no response was received"
    exception = call["cause"]["exceptions"][0]
    assert exception["type"].endswith("ConnectionError")
    assert "Connection refused" in exception["message"]
    assert exception["stack"], "the stack says where the call was made"
