"""XRayUdpSpanExporter with real SDK spans, the real translator and real UDP sockets."""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.exporter import XRayUdpSpanExporter
from otel_xray.sampling import XRayRemoteSampler
from otel_xray.wire import HEADER, MAX_DATAGRAM_BYTES
from tests.sampling.api_server import SamplingApiServer, sampling_rule
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon, parse_datagram


class SpanFactory:
    """Finished spans made by the real SDK, collected in memory."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "front"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("tests")

    def request(
        self, children: int = 1, child_attributes: dict[str, Any] | None = None
    ) -> list[ReadableSpan]:
        """A server span with ``children`` client calls, as Flask + requests would record."""
        self.memory.clear()
        with self.tracer.start_as_current_span(
            "GET /orders",
            kind=SpanKind.SERVER,
            attributes={
                "http.method": "GET",
                "http.url": "http://front.local/orders",
                "http.status_code": 200,
            },
        ):
            for i in range(children):
                with self.tracer.start_as_current_span(
                    "GET",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "http.method": "GET",
                        "http.url": f"http://api.example.com/items/{i}",
                        "http.status_code": 200,
                        **(child_attributes or {}),
                    },
                ):
                    pass
        return list(self.memory.get_finished_spans())

    def single(self, name: str = "work", **attributes: Any) -> ReadableSpan:
        self.memory.clear()
        with self.tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes):
            pass
        return self.memory.get_finished_spans()[0]


@pytest.fixture
def spans() -> Iterator[SpanFactory]:
    factory = SpanFactory()
    yield factory
    factory.provider.shutdown()


@pytest.fixture
def exporter(udp_daemon: UdpDaemon) -> Iterator[XRayUdpSpanExporter]:
    exp = XRayUdpSpanExporter(udp_daemon.address)
    yield exp
    exp.shutdown()


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def all_ids(document: dict[str, Any]) -> list[str]:
    ids = [document["id"]]
    for child in document.get("subsegments", []):
        ids.extend(all_ids(child))
    return ids


# -- the happy path ---------------------------------------------------------------------------


def test_a_request_arrives_as_one_segment_with_its_subsegments(
    udp_daemon: UdpDaemon, exporter: XRayUdpSpanExporter, spans: SpanFactory
) -> None:
    batch = spans.request(children=3)
    assert exporter.export(batch) is SpanExportResult.SUCCESS
    (segment,) = udp_daemon.documents(1)
    assert_valid(segment)
    assert segment["name"] == "front" and "type" not in segment
    assert [s["name"] for s in segment["subsegments"]] == ["api.example.com"] * 3
    for sub in segment["subsegments"]:
        assert sub["namespace"] == "remote" and sub["parent_id"] == segment["id"]
    counters = exporter.counters
    assert counters.spans_exported == 4 and counters.documents_sent == 4
    assert counters.datagrams_sent == 1 and counters.dropped == 0
    assert counters.bytes_sent == len(udp_daemon.datagrams[0])
    assert exporter.stats()["documents_sent"] == 4


def test_without_embedding_every_span_is_its_own_datagram(
    udp_daemon: UdpDaemon, spans: SpanFactory
) -> None:
    exp = XRayUdpSpanExporter(udp_daemon.address, embed_subsegments=False)
    assert exp.export(spans.request(children=2)) is SpanExportResult.SUCCESS
    docs = udp_daemon.documents(3)
    assert sorted("type" in d for d in docs) == [False, True, True]
    for doc in docs:
        assert_valid(doc)
    assert exp.counters.datagrams_sent == 3
    exp.shutdown()


def test_entry_point_builds_the_exporter_from_the_environment(
    udp_daemon: UdpDaemon, spans: SpanFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", udp_daemon.address)
    monkeypatch.setenv("AWS_LOG_GROUP", "/app/front, /app/shared")
    (entry_point,) = entry_points(group="opentelemetry_traces_exporter", name="awsxray")
    exp = entry_point.load()()
    assert isinstance(exp, XRayUdpSpanExporter)
    assert exp.options.log_group_names == ("/app/front", "/app/shared")
    assert exp.export([spans.single()]) is SpanExportResult.SUCCESS
    assert udp_daemon.documents(1)[0]["name"] == "front"
    exp.shutdown()


def test_translation_options_reach_the_documents(udp_daemon: UdpDaemon, spans: SpanFactory) -> None:
    exp = XRayUdpSpanExporter(
        udp_daemon.address, indexed_attributes=["customer"], tracing_name="storefront"
    )
    exp.export([spans.single(customer="alice", other="x")])
    (doc,) = udp_daemon.documents(1)
    assert doc["name"] == "storefront"
    assert doc["annotations"]["customer"] == "alice"
    exp.shutdown()


def test_url_query_is_left_out_unless_kept(udp_daemon: UdpDaemon, spans: SpanFactory) -> None:
    span = spans.single("GET /login", **{"http.url": "http://front.local/login?token=s3cr3t"})
    default = XRayUdpSpanExporter(udp_daemon.address)
    kept = XRayUdpSpanExporter(udp_daemon.address, keep_url_query=True)
    try:
        default.export([span])
        (doc,) = udp_daemon.documents(1)
        assert doc["http"]["request"]["url"] == "http://front.local/login"
        assert "s3cr3t" not in udp_daemon.datagrams[0].decode()
        udp_daemon.clear()
        kept.export([span])
        (doc,) = udp_daemon.documents(1)
        assert doc["http"]["request"]["url"] == "http://front.local/login?token=s3cr3t"
    finally:
        default.shutdown()
        kept.shutdown()


def test_centralized_rule_name_reaches_the_segment(udp_daemon: UdpDaemon) -> None:
    """The real remote sampler, fed by a real sampling API, names its rule on the span; the
    segment carries it where the X-Ray SDKs write it."""
    api = SamplingApiServer()
    api.rules = [sampling_rule("checkout-gets", priority=1, fixed_rate=1.0, method="GET")]
    sampler = XRayRemoteSampler(daemon_address=api.address, autostart=False)
    exp = XRayUdpSpanExporter(udp_daemon.address)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout"}), sampler=sampler
    )
    provider.add_span_processor(SimpleSpanProcessor(exp))
    try:
        assert sampler.refresh_rules()
        tracer = provider.get_tracer("tests")
        with tracer.start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"http.request.method": "GET"}
        ):
            pass
        (segment,) = udp_daemon.documents(1)
        assert_valid(segment)
        assert segment["aws"]["xray"]["sampling_rule_name"] == "checkout-gets"
        assert "aws.xray.sampling_rule_name" not in segment["metadata"]["default"]
    finally:
        provider.shutdown()
        sampler.shutdown()
        api.stop()


# -- addresses --------------------------------------------------------------------------------


def test_address_forms_all_deliver(udp_daemon: UdpDaemon, spans: SpanFactory) -> None:
    port = udp_daemon.port
    for address in (
        f"127.0.0.1:{port}",
        f"tcp:127.0.0.1:1 udp:127.0.0.1:{port}",
        f"localhost:{port}",
    ):
        exp = XRayUdpSpanExporter(address)
        assert exp.export([spans.single(name=address)]) is SpanExportResult.SUCCESS
        exp.shutdown()
    assert len(udp_daemon.documents(3)) == 3


def test_ipv6_loopback_daemon(spans: SpanFactory) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("::1", 0))
        daemon.settimeout(10)
        exp = XRayUdpSpanExporter(f"[::1]:{daemon.getsockname()[1]}")
        assert exp.export([spans.single()]) is SpanExportResult.SUCCESS
        data, _ = daemon.recvfrom(70_000)
        exp.shutdown()
    assert_valid(parse_datagram(data))


def test_invalid_address_argument_raises_naming_it() -> None:
    # A bad argument is a bug in the code; a bad AWS_XRAY_DAEMON_ADDRESS is logged (see
    # tests/test_daemon_address_env.py).
    with pytest.raises(ValueError, match="daemon_address"):
        XRayUdpSpanExporter("tcp:127.0.0.1:2000")


def test_daemon_down_never_raises_and_counts_the_refusals(spans: SpanFactory) -> None:
    exp = XRayUdpSpanExporter(f"127.0.0.1:{closed_udp_port()}")
    for _ in range(5):
        # UDP cannot tell a stopped daemon from a running one: the datagrams did leave.
        assert exp.export(spans.request()) is SpanExportResult.SUCCESS
        # The host's ICMP "port unreachable" becomes a pending error on the connected socket
        # (readable); the next export meets it as ECONNREFUSED, counts it and sends again.
        sock = exp._transport._sock
        assert sock is not None
        assert select.select([sock], [], [], 10)[0] == [sock]
    assert exp.counters.send_errors == 4 and exp.counters.datagrams_sent == 5
    assert exp.counters.dropped == 0
    exp.shutdown()


def test_unresolvable_host_fails_fast_counted_and_logged_once(
    spans: SpanFactory, caplog: pytest.LogCaptureFixture
) -> None:
    exp = XRayUdpSpanExporter("xray-daemon.invalid:2000")
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        results = [exp.export(spans.request(children=2)) for _ in range(5)]
    assert results == [SpanExportResult.FAILURE] * 5
    counters = exp.counters
    assert counters.dropped == 15 and counters.datagrams_sent == 0 and counters.spans_exported == 0
    # Resolved once (the next attempt is a minute away), said once.
    assert exp._transport.resolver.resolutions == 1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "xray-daemon.invalid:2000" in messages[0], messages
    exp.shutdown()


def test_nowhere_to_send_skips_translation(udp_daemon: UdpDaemon) -> None:
    """With no address the batch is dropped (counted) before any translating or encoding: a
    span the translator refuses shows it, counted as a translate error only when it was tried."""
    broken = [ReadableSpan(name="no-context", context=None)]
    reachable = XRayUdpSpanExporter(udp_daemon.address)
    assert reachable.export(broken) is SpanExportResult.FAILURE
    assert reachable.counters.translate_errors == 1
    reachable.shutdown()

    nowhere = XRayUdpSpanExporter("xray-daemon.invalid:2000")
    assert nowhere.export(broken) is SpanExportResult.FAILURE
    assert (nowhere.counters.translate_errors, nowhere.counters.dropped) == (0, 1)
    nowhere.shutdown()


# -- size limits ------------------------------------------------------------------------------


def test_oversized_span_is_truncated_counted_and_logged_once(
    udp_daemon: UdpDaemon,
    exporter: XRayUdpSpanExporter,
    spans: SpanFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        for _ in range(3):
            exporter.export([spans.single(payload="x" * 200_000, small="kept")])
    datagrams = udp_daemon.wait_for(3)
    assert all(len(d) <= MAX_DATAGRAM_BYTES for d in datagrams)
    doc = parse_datagram(datagrams[0])
    assert_valid(doc)
    assert doc["metadata"]["default"]["payload"].endswith("[truncated by otel-xray]")
    assert doc["metadata"]["default"]["small"] == "kept"
    assert exporter.counters.truncated == 3 and exporter.counters.dropped == 0
    truncation_logs = [r for r in caplog.records if "truncat" in r.getMessage()]
    assert len(truncation_logs) == 1
    assert "metadata.default.payload" in truncation_logs[0].getMessage()
    assert truncation_logs[0].name == "otel_xray.exporter"


def test_big_request_is_split_across_datagrams_without_loss(
    udp_daemon: UdpDaemon, exporter: XRayUdpSpanExporter, spans: SpanFactory
) -> None:
    batch = spans.request(children=30, child_attributes={"blob": "y" * 6_000})
    assert exporter.export(batch) is SpanExportResult.SUCCESS
    counters = exporter.counters
    assert counters.split > 0 and counters.datagrams_sent == counters.split + 1
    datagrams = udp_daemon.wait_for(counters.datagrams_sent)
    assert all(len(d) <= MAX_DATAGRAM_BYTES for d in datagrams)
    docs = [parse_datagram(d) for d in datagrams]
    delivered = sorted(i for d in docs for i in all_ids(d))
    assert delivered == sorted(format(s.context.span_id, "016x") for s in batch)
    for doc in docs:
        assert_valid(doc)


def test_a_span_that_cannot_be_translated_costs_only_itself(
    udp_daemon: UdpDaemon, exporter: XRayUdpSpanExporter, spans: SpanFactory
) -> None:
    broken = ReadableSpan(name="no context")  # a span without a SpanContext
    good = spans.single()
    assert exporter.export([broken, good]) is SpanExportResult.FAILURE
    assert udp_daemon.documents(1)[0]["id"] == format(good.context.span_id, "016x")
    counters = exporter.counters
    assert counters.translate_errors == 1 and counters.dropped == 1
    assert counters.spans_exported == 1


# -- lifecycle --------------------------------------------------------------------------------


def test_shutdown_is_idempotent_and_later_exports_fail_without_sending(
    udp_daemon: UdpDaemon, spans: SpanFactory
) -> None:
    exp = XRayUdpSpanExporter(udp_daemon.address)
    assert exp.force_flush() is True
    exp.shutdown()
    exp.shutdown()
    assert exp.export([spans.single()]) is SpanExportResult.FAILURE
    assert exp.counters.dropped == 1 and exp.counters.datagrams_sent == 0
    # Prove nothing left: a marker sent afterwards is the first thing the daemon sees.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
        marker.sendto(HEADER + b'{"id":"marker"}', ("127.0.0.1", udp_daemon.port))
    assert [d["id"] for d in udp_daemon.documents(1)] == ["marker"]


def test_forked_child_exports_through_its_own_socket(spans: SpanFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(10)
        exp = XRayUdpSpanExporter(f"127.0.0.1:{daemon.getsockname()[1]}")
        parent_span, child_span = spans.single(name="parent"), spans.single(name="child")
        assert exp.export([parent_span]) is SpanExportResult.SUCCESS
        pid = os.fork()
        if pid == 0:  # the child reports only through its exit code
            code = 1
            try:
                code = 0 if exp.export([child_span]) is SpanExportResult.SUCCESS else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        sources = {}
        for _ in range(2):
            data, source = daemon.recvfrom(70_000)
            sources[parse_datagram(data)["id"]] = source
        exp.shutdown()
    assert (
        sources[format(parent_span.context.span_id, "016x")]
        != sources[format(child_span.context.span_id, "016x")]
    )


def test_forked_child_counts_even_when_the_counters_lock_was_held_at_fork(
    spans: SpanFactory,
) -> None:
    # Another thread of the parent (its sender, say) may hold the counters' lock when a worker
    # is forked; the child must count (and show counters) with a lock of its own.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        exp = XRayUdpSpanExporter(f"127.0.0.1:{daemon.getsockname()[1]}")
        span = spans.single()
        with exp._counters_lock:  # held at fork
            pid = os.fork()
            if pid == 0:  # the child reports only through its exit code
                code = 1
                try:
                    # An inherited held lock would block here for ever: fail instead.
                    if exp._counters_lock.acquire(timeout=10):
                        exp._counters_lock.release()
                        exported = exp.export([span]) is SpanExportResult.SUCCESS
                        code = 0 if exported and exp.counters.spans_exported == 1 else 2
                    else:
                        code = 3
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        exp.shutdown()
    assert os.waitstatus_to_exitcode(status) == 0
    assert exp.counters.spans_exported == 0  # the child's export is the child's to count


def test_concurrent_exports_are_all_delivered_and_counted(
    udp_daemon: UdpDaemon, exporter: XRayUdpSpanExporter, spans: SpanFactory
) -> None:
    batches = [spans.request(children=2) for _ in range(80)]
    start = threading.Barrier(8)

    def worker(mine: list[list[ReadableSpan]]) -> None:
        start.wait()
        for batch in mine:
            exporter.export(batch)

    threads = [threading.Thread(target=worker, args=(batches[n::8],)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    docs = udp_daemon.documents(80)
    assert len({d["id"] for d in docs}) == 80
    counters = exporter.counters
    assert counters.spans_exported == 240 and counters.documents_sent == 240
    assert counters.datagrams_sent == 80 and counters.dropped == 0
