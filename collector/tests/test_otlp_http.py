"""OTLP/HTTP: the official Python exporter (protobuf, gzip) and raw OTLP/JSON, on the OTLP/HTTP
listener and on the API port; what they store is read back with boto3. Then the answers the
OTLP/HTTP specification asks for: partial success, 400/413/415/503 with a ``google.rpc.Status``
in the request's encoding, and 404 for any other path whatever the body."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address

from .conftest import make_config

LISTENERS = ["otlp_http", "api"]


def url(collector: Collector, listener: str, path: str = "/v1/traces") -> str:
    if listener == "api":
        return collector.endpoint_url + path
    address = collector.otlp_http_address
    assert address is not None
    return f"http://{format_address(address)}{path}"


def xray_id(otel_trace_id: int) -> str:
    text = f"{otel_trace_id:032x}"
    return f"1-{text[:8]}-{text[8:]}"


def make_spans(service: str) -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otlp-http-test")
    with tracer.start_as_current_span(
        "GET /cart",
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.full": "http://shop/cart",
            "http.response.status_code": 200,
        },
    ):
        with tracer.start_as_current_span("load cart"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("listener", LISTENERS)
def test_the_official_exporter_with_gzip_is_stored(
    collector: Collector, xray_client: Any, listener: str
) -> None:
    spans = make_spans(f"shop-{listener}")
    exporter = OTLPSpanExporter(
        endpoint=url(collector, listener), compression=Compression.Gzip, timeout=10
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert collector.wait_for_datagrams(0)
    trace_id = xray_id(spans[0].context.trace_id)
    (stored,) = xray_client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    segment = json.loads(stored["Segments"][0]["Document"])
    assert segment["name"] == f"shop-{listener}"
    assert segment["http"]["request"]["url"] == "http://shop/cart"
    assert [sub["name"] for sub in segment["subsegments"]] == ["load cart"]
    assert collector.status()["otlp_http"]["documents_submitted"] >= 2


def otlp_json(trace_id: str, span_id: str, **span: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "raw"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "POST /pay",
                                "kind": 2,  # SPAN_KIND_SERVER, as an enum number
                                "startTimeUnixNano": str(now - 5_000_000),  # int64 as text
                                "endTimeUnixNano": now,
                                "attributes": [
                                    {
                                        "key": "http.request.method",
                                        "value": {"stringValue": "POST"},
                                    },
                                    {
                                        "key": "http.response.status_code",
                                        "value": {"intValue": "503"},
                                    },
                                ],
                                "status": {"code": 2, "message": "down"},
                                "someFutureField": {"ignored": True},
                                **span,
                            }
                        ],
                    }
                ],
            }
        ]
    }


def post(
    target: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes, Any]:
    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read(), response
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read(), error


@pytest.mark.parametrize("listener", LISTENERS)
def test_raw_otlp_json_is_stored_and_answered_in_json(
    collector: Collector, xray_client: Any, listener: str
) -> None:
    trace_hex = f"{int(time.time()):08x}" + "ab" * 12
    body = json.dumps(otlp_json(trace_hex, "0123456789abcdef")).encode()
    status, content_type, answer, _ = post(url(collector, listener), body, "application/json")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(answer) == {}  # no partial success
    assert collector.wait_for_datagrams(0)
    trace_id = f"1-{trace_hex[:8]}-{trace_hex[8:]}"
    (stored,) = xray_client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    segment = json.loads(stored["Segments"][0]["Document"])
    assert (segment["name"], segment["id"]) == ("json-svc", "0123456789abcdef")
    assert segment["fault"] is True
    assert segment["http"]["response"]["status"] == 503


@pytest.mark.parametrize("media", ["application/json", "application/x-protobuf"])
def test_bad_spans_are_a_partial_success_in_the_request_encoding(
    collector: Collector, media: str
) -> None:
    good = otlp_json(f"{int(time.time()):08x}" + "cd" * 12, "1111111111111111")
    bad = otlp_json("00" * 16, "2222222222222222")  # an all-zero trace id
    good["resourceSpans"] += bad["resourceSpans"]
    if media == "application/json":
        body = json.dumps(good).encode()
    else:
        from otel_xray_collector.api.otlp_http import decode_request

        body = decode_request(json.dumps(good).encode(), "application/json").SerializeToString()
    status, content_type, answer, _ = post(url(collector, "otlp_http"), body, media)
    assert (status, content_type) == (200, media)
    if media == "application/json":
        partial = json.loads(answer)["partialSuccess"]
        assert partial["rejectedSpans"] == "1"  # int64 in OTLP/JSON is text
    else:
        partial = trace_service_pb2.ExportTraceServiceResponse.FromString(answer).partial_success
        assert partial.rejected_spans == 1
    assert "trace_id is all zeroes" in str(partial)


def status_of(answer: bytes, media: str) -> status_pb2.Status:
    if media == "application/json":
        parsed = json.loads(answer)
        return status_pb2.Status(code=parsed.get("code", 0), message=parsed.get("message", ""))
    return status_pb2.Status.FromString(answer)


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize(
    ("media", "body", "headers", "expected"),
    [
        ("application/x-protobuf", b"\xff\xff\xff\xff", {}, 400),
        ("application/json", b"{not json", {}, 400),
        ("application/json", b"[1, 2]", {}, 400),
        ("application/json", json.dumps({"resourceSpans": 5}).encode(), {}, 400),
        (
            "application/json",
            json.dumps(otlp_json("zz" * 16, "0123456789abcdef")).encode(),
            {},
            400,
        ),
        ("application/x-protobuf", b"not gzip", {"Content-Encoding": "gzip"}, 400),
        ("application/x-protobuf", gzip.compress(b"x")[:-4], {"Content-Encoding": "gzip"}, 400),
        ("application/x-protobuf", b"", {"Content-Encoding": "br"}, 415),
    ],
)
def test_undecodable_requests_are_4xx_with_a_status_in_their_encoding(
    collector: Collector,
    listener: str,
    media: str,
    body: bytes,
    headers: dict[str, str],
    expected: int,
) -> None:
    status, content_type, answer, _ = post(url(collector, listener), body, media, headers)
    assert (status, content_type) == (expected, media)
    assert status_of(answer, media).message


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_gzip_bomb_is_413(collector: Collector, listener: str) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KiB
    status, content_type, answer, _ = post(
        url(collector, listener), bomb, "application/x-protobuf", {"Content-Encoding": "gzip"}
    )
    assert status == 413
    assert "decompressed body is over" in status_of(answer, content_type).message
    assert exporter_still_works(collector, listener)


def exporter_still_works(collector: Collector, listener: str) -> bool:
    exporter = OTLPSpanExporter(endpoint=url(collector, listener), timeout=10)
    try:
        return exporter.export(make_spans("after")) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def test_a_body_over_the_listener_limit_is_413(tmp_path: Path) -> None:
    with Collector(make_config(tmp_path / "x.db", otlp=None)) as collector:
        huge = b"\0" * (17 * 1024 * 1024)  # over 16 MiB (OTLP/HTTP) and 8 MiB (API port)
        for listener in LISTENERS:
            try:
                status = post(url(collector, listener), huge, "application/x-protobuf")[0]
            except (ConnectionResetError, BrokenPipeError, urllib.error.URLError):
                pytest.fail("the 413 must be answered, not the connection reset")
            assert status == 413, listener


@pytest.mark.parametrize("listener", LISTENERS)
def test_other_paths_and_methods_and_media_types(collector: Collector, listener: str) -> None:
    protobuf = trace_service_pb2.ExportTraceServiceRequest().SerializeToString() + b"\x0a\x00"
    for path in ("/v1/metrics", "/v1/logs", "/v1/traces/x", "/"):
        status = post(url(collector, listener, path), protobuf, "application/x-protobuf")[0]
        assert status == 404, path
    status = post(url(collector, listener), b"{}", "text/plain")[0]
    assert status == 415
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url(collector, listener), timeout=10)
    assert caught.value.code in (404, 405)


def test_a_full_pipeline_is_503_with_retry_after(tmp_path: Path) -> None:
    config = make_config(tmp_path / "x.db", otlp=None, max_waiting_documents=1)
    with Collector(config) as busy:
        body = json.dumps(otlp_json(f"{int(time.time()):08x}" + "ef" * 12, "3333333333333333"))
        request = json.loads(body)
        spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
        spans.append({**spans[0], "spanId": "4444444444444444"})
        status, content_type, answer, response = post(
            url(busy, "otlp_http"), json.dumps(request).encode(), "application/json"
        )
    assert status == 503
    assert response.headers["Retry-After"] == "1"
    assert "cannot accept" in status_of(answer, content_type).message


def test_the_listener_can_be_turned_off(tmp_path: Path) -> None:
    with Collector(make_config(tmp_path / "x.db", otlp=None, otlp_http=None)) as collector:
        assert collector.otlp_http_address is None
        assert collector.listening_event()["otlp_http"] is None
        assert exporter_still_works(collector, "api")  # /v1/traces stays on the API port
