"""Forwarding over OTLP (SigV4, gzip, protobuf), ``auto`` and PutTelemetryRecords, against a
local X-Ray stand-in that verifies every signature with botocore and decodes what it gets."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from otel_xray_collector.app import Collector
from otel_xray_collector.cli import build_parser, config_from_args
from otel_xray_collector.config import format_address
from otel_xray_collector.forward.otlp import MAX_RETRY_AFTER, otlp_traces_url, retry_after_seconds
from otel_xray_collector.forward.telemetry import telemetry_record
from otel_xray_collector.forward.xray import Forwarder
from otel_xray_collector.startup import StartupError

from collector.tests.support.fake_aws import Recorder, use_fake_aws
from collector.tests.support.moto_server import DUMMY_CREDENTIALS
from collector.tests.support.sigv4_xray import OtlpReply, SigV4XRay
from otel_xray import XRayUdpSpanExporter
from otel_xray.translate.links import xray_trace_id

from .conftest import forwarding_collector, make_config, xray_client_for
from .test_end_to_end import run_sdk_app

REGION = "us-west-2"
FAR_FUTURE = 3600.0  # an interval that never fires by itself in a test
CREDENTIALS = Credentials(
    DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
)


@pytest.fixture(autouse=True)
def aws_test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_fake_aws(monkeypatch, tmp_path)


@pytest.fixture
def servers() -> Iterator[list[SigV4XRay]]:
    created: list[SigV4XRay] = []
    yield created
    for server in created:
        server.close()


@pytest.fixture
def forwarders() -> Iterator[list[Forwarder]]:
    created: list[Forwarder] = []
    yield created
    for forwarder in created:
        forwarder.stop(timeout=5)


def _server(servers: list[SigV4XRay], **kwargs: Any) -> SigV4XRay:
    server = SigV4XRay(kwargs.pop("credentials", CREDENTIALS), REGION, **kwargs)
    servers.append(server)
    return server


def _forwarder(forwarders: list[Forwarder], server: SigV4XRay, **kwargs: Any) -> Forwarder:
    kwargs.setdefault("protocol", "otlp")
    kwargs.setdefault("flush_interval", FAR_FUTURE)
    kwargs.setdefault("sleep", Recorder())
    forwarder = Forwarder(server.url, REGION, **kwargs)
    forwarders.append(forwarder)
    forwarder.start()
    return forwarder


def _collector(server: SigV4XRay, protocol: str, **settings: Any) -> Collector:
    return forwarding_collector(server.url, protocol, region=REGION, **settings)


def _checkout_provider(collector: Collector) -> TracerProvider:
    """Service ``checkout``, X-Ray ids, each span sent to the collector's UDP port as it ends."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout"}), id_generator=AwsXRayIdGenerator()
    )
    exporter = XRayUdpSpanExporter(format_address(collector.udp_address))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _document(index: int, **extra: Any) -> str:
    start = time.time() - 5
    return json.dumps(
        {
            "name": f"svc-{index}",
            "id": f"{index + 1:016x}",
            "trace_id": f"1-{int(start):08x}-{index:024x}",
            "start_time": start,
            "end_time": start + 0.25,
            **extra,
        }
    )


def test_collector_forwards_udp_segments_as_signed_gzipped_otlp(
    servers: list[SigV4XRay], tmp_path: Path
) -> None:
    server = _server(servers)
    collector = _collector(
        server, "otlp", resource_arn="arn:aws:ec2:us-west-2:123456789012:instance/i-0abc"
    )
    try:
        provider = _checkout_provider(collector)
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span(
            "POST /pay",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.response.status_code": 201},
        ) as root:
            with tracer.start_as_current_span(
                "GET", kind=SpanKind.CLIENT, attributes={"url.full": "https://bank.example/x"}
            ):
                pass
        provider.shutdown()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b'{"format":"json","version":1}\n{not json', collector.udp_address)
        assert collector.wait_for_datagrams(3)
        server.wait_for(lambda r: sum(len(o.spans) for o in r.otlp) >= 2)
        assert collector.forwarder is not None and collector.forwarder.flush()
        status = collector.status()["forwarder"]
    finally:
        collector.stop()  # the final PutTelemetryRecords goes out here

    assert server.recorded.bad_signatures == 0
    received = server.recorded.otlp
    assert all(r.headers["content-encoding"] == "gzip" for r in received)
    assert all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256") for r in received)
    spans = {span.name: span for span in server.spans()}
    assert set(spans) == {"checkout", "bank.example"}
    trace_id = root.get_span_context().trace_id.to_bytes(16, "big")
    assert {span.trace_id for span in spans.values()} == {trace_id}
    assert spans["checkout"].span_id == root.get_span_context().span_id.to_bytes(8, "big")
    assert spans["bank.example"].parent_span_id == spans["checkout"].span_id
    groups = [group for r in received for group in r.request.resource_spans]
    services = {
        kv.value.string_value
        for g in groups
        for kv in g.resource.attributes
        if kv.key == "service.name"
    }
    assert services == {"checkout"}
    assert status["protocol"] == "otlp"
    assert (status["sent"], status["otlp_spans_sent"]) == (2, 2)
    assert status["otlp_batches"] == len(received)

    (telemetry,) = server.recorded.telemetry
    assert telemetry["ResourceARN"] == "arn:aws:ec2:us-west-2:123456789012:instance/i-0abc"
    record = telemetry["TelemetryRecords"][0]
    # as the daemon counts: every datagram received, the bad one also rejected
    assert (record["SegmentsReceivedCount"], record["SegmentsSentCount"]) == (3, 2)
    assert record["SegmentsRejectedCount"] == 1


def test_aws_xray_sdk_segments_reach_otlp_through_auto(
    servers: list[SigV4XRay], tmp_path: Path
) -> None:
    """The real aws-xray-sdk (streaming subsegments separately, embedding others, a second
    service joined by the trace header) -> UDP -> collector in ``auto`` mode, told
    CloudWatchLogs -> OTLP spans with the right tree, services, statuses and attributes."""
    server = _server(servers, destinations=["CloudWatchLogs"])
    collector = _collector(server, "auto")
    try:
        forwarder = collector.forwarder
        assert forwarder is not None and forwarder.wait_for_destination_checks(1)
        assert forwarder.active_protocol == "otlp"
        ids = run_sdk_app(format_address(collector.udp_address))
        assert collector.wait_for_datagrams(ids["datagrams"])
        server.wait_for(lambda r: sum(len(o.spans) for o in r.otlp) >= 9)
        assert forwarder.flush()
        counters = forwarder.counters()
    finally:
        collector.stop()

    assert server.recorded.segments == [] and server.recorded.bad_signatures == 0
    spans = {span.span_id.hex(): span for span in server.spans()}
    assert len(spans) == 9
    assert {span.trace_id for span in spans.values()} == {
        bytes.fromhex(ids["trace_id"][2:10] + ids["trace_id"][11:])
    }
    services = {}
    for received in server.recorded.otlp:
        for group in received.request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in group.resource.attributes}
            for scope in group.scope_spans:
                services.update({span.span_id.hex(): resource for span in scope.spans})
    root, inventory = spans[ids["root"]], spans[ids["inventory"]]
    assert services[ids["root"]]["service.name"] == "checkout"
    assert services[ids["root"]]["telemetry.sdk.language"] == "python"
    assert services[ids["inventory"]]["service.name"] == "inventory"
    for child in ("payments", "database", "inventory_call", "charge"):
        assert spans[ids[child]].parent_span_id.hex() == ids["root"]
        assert services[ids[child]]["service.name"] == "checkout", child
    assert inventory.parent_span_id.hex() == ids["inventory_call"]

    ERROR, UNSET = trace_pb2.Status.STATUS_CODE_ERROR, trace_pb2.Status.STATUS_CODE_UNSET  # noqa: N806
    assert root.kind == trace_pb2.Span.SPAN_KIND_SERVER and root.status.code == ERROR  # 502
    assert inventory.status.code == UNSET  # a server answering 404 did nothing wrong
    assert spans[ids["inventory_call"]].status.code == ERROR  # the caller's 404
    assert spans[ids["inventory_call"]].kind == trace_pb2.Span.SPAN_KIND_CLIENT
    root_attrs = {kv.key: kv.value for kv in root.attributes}
    assert root_attrs["http.request.method"].string_value == "POST"
    assert root_attrs["client.address"].string_value == "127.0.0.1"
    assert root_attrs["enduser.id"].string_value == "alice"
    assert root_attrs["tier"].string_value == "gold"
    database = {kv.key: kv.value.string_value for kv in spans[ids["database"]].attributes}
    assert database["db.connection_string"] == "postgresql://db.example:5432"
    assert (database["db.namespace"], database["db.system"]) == ("orders", "PostgreSQL")
    (event,) = spans[ids["charge"]].events
    event_attrs = {kv.key: kv.value.string_value for kv in event.attributes}
    assert (event_attrs["exception.type"], event_attrs["exception.message"]) == (
        "ValueError",
        "card declined",
    )
    assert counters["sent"] == ids["datagrams"] and counters["otlp_unknown_service"] == 0


def test_a_collector_forwarding_to_another_one_reports_its_telemetry_there(
    tmp_path: Path,
) -> None:
    """Our own X-Ray API as the upstream: PutTraceSegments and PutTelemetryRecords (as botocore
    serialises them) are both accepted, and the upstream shows who sent what."""
    upstream = Collector(make_config(Path(":memory:"), otlp=None)).start()
    try:
        config = make_config(
            Path(":memory:"),
            otlp=None,
            forward_endpoint=upstream.endpoint_url,
            region=REGION,
            resource_arn="arn:aws:ecs:us-west-2:123456789012:task/demo",
        )
        edge = Collector(config).start()
        try:
            document = _document(7)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(
                    b'{"format":"json","version":1}\n' + document.encode(), edge.udp_address
                )
            assert edge.wait_for_datagrams(1)
            assert edge.forwarder is not None and edge.forwarder.flush()
        finally:
            edge.stop()  # the final PutTelemetryRecords
        (received,) = upstream.status()["telemetry_records"]
        trace_id = json.loads(document)["trace_id"]
        client = xray_client_for(upstream.endpoint_url)
        traces = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    finally:
        upstream.stop()
    assert [json.loads(segment["Document"]) for segment in traces[0]["Segments"]] == [
        json.loads(document)
    ]
    assert received["ResourceARN"] == "arn:aws:ecs:us-west-2:123456789012:task/demo"
    assert received["record"]["SegmentsSentCount"] == 1
    assert received["record"]["SegmentsReceivedCount"] == 1


def test_over_otlp_to_another_collector_the_segments_come_out_as_they_went_in(
    tmp_path: Path,
) -> None:
    """Library exporter -> UDP -> collector (forwarding over OTLP: segments back to spans) ->
    another collector's ``POST /v1/traces`` (spans to segments again) -> boto3: the stored
    documents are the ones first sent, field for field, bar what only a span can hold."""
    upstream = Collector(make_config(Path(":memory:"), otlp=None, otlp_http=None)).start()
    try:
        edge = forwarding_collector(
            upstream.endpoint_url, "otlp", region=REGION, telemetry_interval=None
        )
        try:
            provider = _checkout_provider(edge)
            tracer = provider.get_tracer("test")
            with tracer.start_as_current_span(
                "POST /pay",
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "POST",
                    "url.full": "http://shop.example/pay",
                    "http.response.status_code": 502,
                    "order.id": "o-1",
                },
            ) as root:
                with tracer.start_as_current_span(
                    "GET",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "http.request.method": "GET",
                        "url.full": "https://bank.example/x",
                        "http.response.status_code": 503,
                    },
                ):
                    pass
            provider.shutdown()
            assert edge.wait_for_datagrams(2)
            assert edge.forwarder is not None and edge.forwarder.flush()
            assert edge.forwarder.counters()["otlp_spans_sent"] == 2
            trace_id = xray_trace_id(root.get_span_context().trace_id)
            client = xray_client_for(edge.endpoint_url)
            sent = [
                json.loads(s["Document"])
                for s in client.batch_get_traces(TraceIds=[trace_id])["Traces"][0]["Segments"]
            ]
        finally:
            edge.stop()
        assert upstream.wait_for_datagrams(0)  # what /v1/traces stored is indexed too
        stored = [
            json.loads(s["Document"])
            for s in xray_client_for(upstream.endpoint_url).batch_get_traces(TraceIds=[trace_id])[
                "Traces"
            ][0]["Segments"]
        ]
    finally:
        upstream.stop()

    assert len(stored) == len(sent) == 2
    by_id = {doc["id"]: doc for doc in stored}
    for original in sent:
        echoed = by_id[original["id"]]
        for key in ("name", "trace_id", "parent_id", "type", "namespace", "fault", "error", "http"):
            assert echoed.get(key) == original.get(key), key
        assert echoed["start_time"] == pytest.approx(original["start_time"], abs=1e-6)
        assert echoed["end_time"] == pytest.approx(original["end_time"], abs=1e-6)
    assert by_id[f"{root.get_span_context().span_id:016x}"]["metadata"]["default"]["order.id"] == (
        "o-1"
    )


def test_429_and_503_are_retried_honouring_retry_after(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(
        servers,
        otlp_script=[OtlpReply(429, retry_after="7"), OtlpReply(503), OtlpReply(200)],
    )
    sleep = Recorder()
    forwarder = _forwarder(forwarders, server, sleep=sleep, backoff_base=0.1)
    for index in range(3):
        forwarder.offer(_document(index))
    assert forwarder.flush()

    assert len(server.recorded.otlp) == 1 and len(server.spans()) == 3
    assert sleep.delays[0] == 7.0  # the server asked for longer than the backoff
    assert sleep.delays[1] < 7.0
    counters = forwarder.counters()
    assert (counters["otlp_retries"], counters["retries"]) == (2, 2)
    assert (counters["backend_throttled"], counters["backend_5xx"]) == (1, 1)
    assert (counters["sent"], counters["dropped"], counters["otlp_batches"]) == (3, 0, 1)


def test_400_is_not_retried_and_its_documents_are_dropped(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers, otlp_script=[OtlpReply(400)])
    forwarder = _forwarder(forwarders, server)
    for index in range(4):
        forwarder.offer(_document(index))
    assert forwarder.flush()
    counters = forwarder.counters()
    assert (counters["backend_4xx"], counters["retries"]) == (1, 0)
    assert (counters["dropped"], counters["otlp_spans_failed"], counters["sent"]) == (4, 4, 0)
    assert server.recorded.otlp == []


def test_a_wrong_signature_gets_403_and_is_not_retried(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    # The stand-in knows another secret for the same key: every signature is wrong.
    other = Credentials(CREDENTIALS.access_key, "not-the-secret", CREDENTIALS.token)
    server = _server(servers, credentials=other)
    assert server.signature_problem("/v1/traces", {}, b"") == "not SigV4-signed"
    forwarder = _forwarder(forwarders, server)
    forwarder.offer(_document(0))
    assert forwarder.flush()
    assert server.recorded.bad_signatures == 1
    counters = forwarder.counters()
    assert (counters["backend_4xx"], counters["dropped"], counters["retries"]) == (1, 1, 0)


def test_partial_success_counts_rejected_spans_and_logs_once_per_interval(
    servers: list[SigV4XRay], forwarders: list[Forwarder], caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(
        servers,
        otlp_script=[
            OtlpReply(rejected_spans=1, error_message="span too old"),
            OtlpReply(rejected_spans=2, error_message="span too old"),
        ],
    )
    forwarder = _forwarder(forwarders, server)
    caplog.set_level(logging.WARNING, logger="otel_xray_collector.forward")
    for batch in range(2):
        for index in range(3):
            forwarder.offer(_document(batch * 10 + index))
        assert forwarder.flush()
    counters = forwarder.counters()
    assert (counters["otlp_spans_rejected"], counters["rejected"]) == (3, 3)
    assert (counters["otlp_spans_sent"], counters["otlp_batches"]) == (3, 2)
    messages = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert messages == ["AWS X-Ray refused 1 of 3 spans: span too old"]


def test_a_json_partial_success_is_read_too(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers, otlp_script=[OtlpReply(rejected_spans=2, json=True)])
    forwarder = _forwarder(forwarders, server)
    for index in range(3):
        forwarder.offer(_document(index))
    assert forwarder.flush()
    counters = forwarder.counters()
    assert (counters["otlp_spans_rejected"], counters["otlp_spans_sent"]) == (2, 1)


def test_retry_after_as_seconds_or_http_date_capped() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("86400") == MAX_RETRY_AFTER
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds(later) or 0) <= 30
    assert retry_after_seconds(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_connection_refused_is_retried_and_counted_for_telemetry(
    forwarders: list[Forwarder],
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on (held: nobody can)
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        sleep = Recorder()
        forwarder = Forwarder(
            closed, REGION, protocol="otlp", flush_interval=FAR_FUTURE, sleep=sleep, max_retries=2
        )
        forwarders.append(forwarder)
        forwarder.start()
        forwarder.offer(_document(0))
        assert forwarder.flush()
    counters = forwarder.counters()
    assert (counters["backend_connection_refused"], counters["backend_connection_errors"]) == (3, 3)
    assert (counters["otlp_retries"], counters["dropped"]) == (2, 1)
    assert len(sleep.delays) == 2
    record = telemetry_record(counters, 0.0)
    assert record["BackendConnectionErrors"]["ConnectionRefusedCount"] == 3
    assert record["BackendConnectionErrors"]["OtherCount"] == 0


def test_many_spans_are_split_into_requests_within_x_rays_limits(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers)
    forwarder = _forwarder(forwarders, server)
    # 12 documents of 1,000 embedded subsegments each: 12,012 spans, more than one request holds.
    for index in range(12):
        start = time.time() - 5
        children = [
            {
                "name": "work",
                "id": f"{index:04x}{child:012x}",
                "start_time": start,
                "end_time": start + 0.1,
            }
            for child in range(1, 1001)
        ]
        forwarder.offer(_document(index, subsegments=children))
    # 40 documents of ~150 KB each: 6 MB, more than one request may carry.
    for index in range(100, 140):
        forwarder.offer(_document(index, metadata={"debug": {"blob": "x" * 150_000}}))
    assert forwarder.flush(timeout=60)

    received = server.recorded.otlp
    assert len(server.spans()) == 12 * 1001 + 40
    assert len(received) >= 3
    assert all(len(r.spans) <= 10_000 for r in received)
    assert all(r.decoded_bytes <= 5_000_000 for r in received)
    assert all(span.ByteSize() <= 200 * 1024 for span in server.spans())
    assert forwarder.counters()["otlp_batches"] == len(received)


def test_oversized_spans_are_trimmed_and_hopeless_ones_counted(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers)
    forwarder = _forwarder(forwarders, server)
    forwarder.offer(_document(1, metadata={"debug": {"blob": "x" * 300_000}}, annotations={"a": 1}))
    forwarder.offer(_document(2, annotations={f"k{i}": "y" * 900 for i in range(400)}))
    forwarder.offer(_document(3, in_progress=True))
    forwarder.offer("{not json")
    assert forwarder.flush()
    counters = forwarder.counters()
    assert (counters["otlp_spans_trimmed"], counters["otlp_spans_too_large"]) == (1, 1)
    assert (counters["otlp_documents_in_progress"], counters["otlp_documents_invalid"]) == (1, 1)
    assert counters["rejected"] == 2
    (span,) = server.spans()
    assert span.name == "svc-1"
    assert {kv.key for kv in span.attributes} == {"a", "aws.xray.annotations"}


def _services(server: SigV4XRay) -> dict[str, str]:
    """Span name -> the service.name of the resource it was sent under."""
    out = {}
    for received in server.recorded.otlp:
        for group in received.request.resource_spans:
            service = next(
                kv.value.string_value
                for kv in group.resource.attributes
                if kv.key == "service.name"
            )
            for scope in group.scope_spans:
                out.update({span.name: service for span in scope.spans})
    return out


def test_a_subsegment_sent_before_its_segment_waits_and_goes_under_its_service(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers)
    # one document per batch, so the subsegment is sent (and held) before its segment arrives
    forwarder = _forwarder(forwarders, server, otlp_batch_documents=1)
    segment = json.loads(_document(1, name="checkout"))
    child = dict(segment, name="db", id="00000000000000c1", parent_id=segment["id"])
    child["type"] = "subsegment"
    forwarder.offer(json.dumps(child))
    forwarder.offer(json.dumps(dict(segment, subsegments=[])))
    server.wait_for(lambda r: sum(len(o.spans) for o in r.otlp) >= 2)
    assert forwarder.flush()
    assert _services(server) == {"checkout": "checkout", "db": "checkout"}
    counters = forwarder.counters()
    assert (counters["otlp_unknown_service"], counters["otlp_documents_waiting"]) == (0, 0)
    assert counters["sent"] == 2


def test_a_subsegment_whose_segment_never_comes_is_sent_as_unknown_service(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers)
    forwarder = _forwarder(forwarders, server, otlp_batch_documents=1, otlp_subsegment_hold=0.05)
    orphan = json.loads(_document(2, name="cache"))
    orphan.update(type="subsegment", parent_id="00000000000000ff")
    forwarder.offer(json.dumps(orphan))
    # no flush: the forwarder's own clock gives up on the segment
    server.wait_for(lambda r: len(r.otlp) == 1)
    assert _services(server) == {"cache": "unknown_service"}
    assert forwarder.flush()
    assert forwarder.counters()["otlp_unknown_service"] == 1


def test_auto_follows_get_trace_segment_destination_and_keeps_the_last_answer(
    servers: list[SigV4XRay], forwarders: list[Forwarder], caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(servers, destinations=["XRay", "CloudWatchLogs", 500])
    caplog.set_level(logging.INFO, logger="otel_xray_collector.forward")
    forwarder = _forwarder(forwarders, server, protocol="auto", destination_interval=FAR_FUTURE)
    assert forwarder.wait_for_destination_checks(1)  # asked at start
    assert forwarder.active_protocol == "segments"
    forwarder.offer(_document(0))
    assert forwarder.flush()
    assert len(server.recorded.segments) == 1 and server.recorded.otlp == []

    assert forwarder.refresh_destination() == "otlp"
    forwarder.offer(_document(1))
    assert forwarder.flush()
    assert [span.name for span in server.spans()] == ["svc-1"]
    assert len(server.recorded.segments) == 1

    assert forwarder.refresh_destination() == "otlp"  # a failed call changes nothing
    counters = forwarder.counters()
    assert (counters["destination_checks"], counters["destination_errors"]) == (3, 1)
    assert counters["destination"] == {"Destination": "CloudWatchLogs", "Status": "ACTIVE"}
    switches = [r for r in caplog.records if "from now on" in r.getMessage()]
    assert len(switches) == 1 and "CloudWatchLogs" in switches[0].getMessage()
    assert server.recorded.bad_signatures == 0


def test_auto_starts_with_segments_when_the_destination_is_unknown(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers, destinations=[503])
    forwarder = _forwarder(forwarders, server, protocol="auto", destination_interval=FAR_FUTURE)
    assert forwarder.wait_for_destination_checks(1)
    assert forwarder.active_protocol == "segments"
    assert forwarder.counters()["destination"] is None


def test_put_telemetry_records_reports_each_interval_like_the_daemon(
    servers: list[SigV4XRay], forwarders: list[Forwarder]
) -> None:
    server = _server(servers, otlp_script=[OtlpReply(503)])
    identity = {"EC2InstanceId": "i-0abc", "Hostname": "build-7", "ResourceARN": ""}
    forwarder = _forwarder(
        forwarders, server, telemetry_interval=FAR_FUTURE, telemetry_identity=identity
    )
    assert forwarder.send_telemetry()
    assert server.recorded.telemetry == []  # nothing until the first segment, as the daemon

    for index in range(3):
        forwarder.offer(_document(index))
    assert forwarder.flush()
    assert forwarder.send_telemetry()
    forwarder.offer(_document(9))
    assert forwarder.flush()
    assert forwarder.send_telemetry()

    first, second = server.recorded.telemetry
    assert {k: first[k] for k in identity} == identity
    (record,) = first["TelemetryRecords"]
    assert isinstance(record["Timestamp"], (int, float))
    assert record["SegmentsReceivedCount"] == 3
    assert record["SegmentsSentCount"] == 3
    assert (record["SegmentsSpilloverCount"], record["SegmentsRejectedCount"]) == (0, 0)
    assert record["BackendConnectionErrors"] == {
        "TimeoutCount": 0,
        "ConnectionRefusedCount": 0,
        "HTTPCode4XXCount": 0,
        "HTTPCode5XXCount": 1,
        "UnknownHostCount": 0,
        "OtherCount": 0,
    }
    (later,) = second["TelemetryRecords"]
    assert (later["SegmentsReceivedCount"], later["SegmentsSentCount"]) == (1, 1)
    assert later["BackendConnectionErrors"]["HTTPCode5XXCount"] == 0
    assert forwarder.counters()["telemetry_records_sent"] == 2


def test_otlp_url_of_the_aws_endpoint_and_of_an_explicit_one() -> None:
    assert otlp_traces_url(None, "eu-west-1") == "https://xray.eu-west-1.amazonaws.com/v1/traces"
    assert (
        otlp_traces_url(None, "cn-north-1") == "https://xray.cn-north-1.amazonaws.com.cn/v1/traces"
    )
    assert (
        otlp_traces_url("http://127.0.0.1:4000/", "us-east-1") == "http://127.0.0.1:4000/v1/traces"
    )


def test_cli_forward_protocol_flag(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["--forward-endpoint", "aws", "--forward-protocol", "auto"])
    assert config_from_args(args).forward_protocol == "auto"
    assert config_from_args(parser.parse_args([])).forward_protocol == "segments"
    with pytest.raises(SystemExit) as bad_choice:
        parser.parse_args(["--forward-protocol", "smoke-signals"])
    assert bad_choice.value.code == 2
    assert "--forward-protocol" in capsys.readouterr().err
    with pytest.raises(StartupError, match="--forward-protocol: needs --forward-endpoint"):
        config_from_args(parser.parse_args(["--forward-protocol", "otlp"]))
