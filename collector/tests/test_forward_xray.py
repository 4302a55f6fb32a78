"""Forwarder -> AWS X-Ray PutTraceSegments: moto as AWS, a scripted server for the failure paths."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from otel_xray_collector.forward.xray import Forwarder

from collector.tests.support.fake_aws import Recorder, use_fake_aws
from collector.tests.support.moto_server import MotoXRay
from collector.tests.support.scripted_xray import Reply, ScriptedXRay

FAR_FUTURE = 3600.0  # a flush interval that never fires by itself in a test


@pytest.fixture(autouse=True)
def aws_test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_fake_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def moto_xray() -> Iterator[MotoXRay]:
    server = MotoXRay()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def forwarders() -> Iterator[list[Forwarder]]:
    """Forwarders a test creates; stopped at the end even when the test fails."""
    created: list[Forwarder] = []
    yield created
    for forwarder in created:
        forwarder.stop(timeout=5)


@pytest.fixture
def scripted() -> Iterator[list[ScriptedXRay]]:
    servers: list[ScriptedXRay] = []
    yield servers
    for server in servers:
        server.close()


def segment(index: int, trace_index: int = 0, start: float | None = None) -> str:
    start = time.time() - 5 if start is None else start
    trace_id = f"1-{int(start):08x}-{trace_index:024x}"
    return json.dumps(
        {
            "name": f"svc-{index}",
            "id": f"{index + 1:016x}",
            "trace_id": trace_id,
            "start_time": start,
            "end_time": start + 0.25,
        },
        separators=(",", ":"),
    )


def make_forwarder(
    created: list[Forwarder], endpoint: str, start: bool = True, **options: object
) -> Forwarder:
    options.setdefault("flush_interval", FAR_FUTURE)
    options.setdefault("sleep", Recorder())
    forwarder = Forwarder(endpoint, "us-east-1", **options)  # type: ignore[arg-type]
    created.append(forwarder)
    if start:
        forwarder.start()
    return forwarder


# --- to moto (standing in for AWS X-Ray) --------------------------------------------------------


def test_documents_arrive_in_xray_signed_and_readable(
    moto_xray: MotoXRay, forwarders: list[Forwarder]
) -> None:
    start = time.time() - 5
    documents = [segment(i, trace_index=0xABC + i % 2, start=start) for i in range(4)]
    forwarder = make_forwarder(forwarders, moto_xray.url)

    for document in documents:
        forwarder.offer(document)
    assert forwarder.flush()

    client = moto_xray.client("us-east-1")
    trace_ids = sorted({json.loads(d)["trace_id"] for d in documents})
    traces = client.batch_get_traces(TraceIds=trace_ids)
    stored = sorted(s["Document"] for t in traces["Traces"] for s in t["Segments"])
    assert stored == sorted(documents)
    assert traces["UnprocessedTraceIds"] == []
    summaries = client.get_trace_summaries(StartTime=start - 300, EndTime=start + 300)
    assert trace_ids == sorted(s["Id"] for s in summaries["TraceSummaries"])
    counters = forwarder.counters()
    assert (counters["received"], counters["sent"], counters["rejected"]) == (4, 4, 0)
    assert counters["backend_errors"] == 0 and counters["buffered"] == 0


def test_invalid_documents_are_counted_as_rejected_by_xray(
    moto_xray: MotoXRay, forwarders: list[Forwarder]
) -> None:
    forwarder = make_forwarder(forwarders, moto_xray.url)

    forwarder.offer(segment(7, trace_index=0xDEF))
    forwarder.offer('{"name": "no-id-no-times"}')
    forwarder.offer("not json")
    assert forwarder.flush()

    counters = forwarder.counters()
    assert (counters["sent"], counters["rejected"], counters["retries"]) == (1, 2, 0)


def test_region_picks_the_xray_backend(moto_xray: MotoXRay, forwarders: list[Forwarder]) -> None:
    document = segment(3, trace_index=0x5EED)
    trace_id = json.loads(document)["trace_id"]
    forwarder = Forwarder(moto_xray.url, "eu-west-1", flush_interval=FAR_FUTURE)
    forwarders.append(forwarder)
    forwarder.start()

    forwarder.offer(document)
    assert forwarder.flush()

    assert moto_xray.client("eu-west-1").batch_get_traces(TraceIds=[trace_id])["Traces"]
    assert moto_xray.client("us-east-1").batch_get_traces(TraceIds=[trace_id])["Traces"] == []


# --- wire format and batching -------------------------------------------------------------------


def test_batches_of_at_most_50_signed_put_trace_segments(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay()
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url, concurrency=1)
    documents = [segment(i) for i in range(120)]

    for document in documents:
        forwarder.offer(document)
    assert forwarder.flush()

    requests = backend.requests
    assert [len(r.documents) for r in requests] == [50, 50, 20]
    assert backend.documents() == documents  # order kept, every document once
    first = requests[0]
    assert first.path == "/TraceSegments"
    assert first.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/xray/aws4_request" in first.headers["Authorization"]
    assert float(first.headers["X-Amzn-Xray-Timestamp"]) == pytest.approx(time.time(), abs=60)
    assert "otel-xray-collector/" in first.headers["User-Agent"]
    assert forwarder.counters()["sent"] == 120


def test_a_lone_document_is_sent_after_the_flush_interval(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay()
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url, flush_interval=0.05)

    forwarder.offer(segment(1))

    assert [len(r.documents) for r in backend.wait_for_requests(1)] == [1]


def test_stop_sends_what_is_buffered(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay()
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url)
    documents = [segment(i) for i in range(3)]

    for document in documents:
        forwarder.offer(document)
    forwarder.stop(timeout=5)

    assert backend.documents() == documents
    assert forwarder.counters()["sent"] == 3
    forwarder.offer(segment(9))  # after stop: counted, never sent
    assert forwarder.counters()["dropped"] == 1


# --- retries ------------------------------------------------------------------------------------


def test_throttling_5xx_and_unprocessed_are_retried_with_backoff(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    documents = [segment(i) for i in range(3)]
    retried_id = json.loads(documents[1])["id"]
    backend = ScriptedXRay(
        Reply.error(429, "ThrottledException", "Rate exceeded"),
        Reply.error(500, "InternalFailure"),
        Reply.unprocessed((retried_id, "InternalFailure")),
    )
    scripted.append(backend)
    sleep = Recorder()
    forwarder = make_forwarder(
        forwarders, backend.url, sleep=sleep, jitter=lambda: 1.0, backoff_base=0.5
    )

    for document in documents:
        forwarder.offer(document)
    assert forwarder.flush()

    sent = [r.documents for r in backend.requests]
    assert sent == [documents, documents, documents, [documents[1]]]
    assert sleep.delays == [0.5, 1.0, 2.0]  # doubling; jitter at its top
    counters = forwarder.counters()
    assert counters["sent"] == 3 and counters["rejected"] == 0 and counters["dropped"] == 0
    assert counters["retries"] == 3 and counters["backend_errors"] == 2
    assert counters["backend_throttled"] == 1 and counters["backend_5xx"] == 1


def test_jitter_spreads_the_delay_over_its_upper_half(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay(Reply.error(503, "ServiceUnavailable"))
    scripted.append(backend)
    sleep = Recorder()
    forwarder = make_forwarder(
        forwarders, backend.url, sleep=sleep, jitter=lambda: 0.0, backoff_base=0.5
    )

    forwarder.offer(segment(1))
    assert forwarder.flush()

    assert sleep.delays == [0.25]


def test_unprocessed_resends_are_capped(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    document = segment(4)
    seg_id = json.loads(document)["id"]
    backend = ScriptedXRay(default=Reply.unprocessed((seg_id, "InternalFailure")))
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url, max_unprocessed_retries=2)

    forwarder.offer(document)
    assert forwarder.flush()

    assert len(backend.requests) == 3  # the first send and two resends
    counters = forwarder.counters()
    assert (counters["sent"], counters["rejected"], counters["retries"]) == (0, 1, 2)


def test_unprocessed_documents_that_are_invalid_are_not_resent(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    documents = [segment(i) for i in range(2)]
    bad_id = json.loads(documents[0])["id"]
    backend = ScriptedXRay(Reply.unprocessed((bad_id, "MissingParam"), (None, "JSONFormatError")))
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url)

    for document in documents:
        forwarder.offer(document)
    assert forwarder.flush()

    assert len(backend.requests) == 1
    counters = forwarder.counters()
    assert (counters["rejected"], counters["retries"]) == (2, 0)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "InvalidRequestException"), (403, "AccessDeniedException"), (413, "PayloadTooLarge")],
)
def test_permanent_client_error_drops_the_batch_without_retrying(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder], status: int, error_type: str
) -> None:
    backend = ScriptedXRay(default=Reply.error(status, error_type))
    scripted.append(backend)
    sleep = Recorder()
    forwarder = make_forwarder(forwarders, backend.url, sleep=sleep)

    for i in range(5):
        forwarder.offer(segment(i))
    assert forwarder.flush()

    assert len(backend.requests) == 1 and sleep.delays == []
    counters = forwarder.counters()
    assert (counters["dropped"], counters["sent"], counters["retries"]) == (5, 0, 0)
    assert (counters["backend_errors"], counters["backend_4xx"]) == (1, 1)


def test_retries_end_after_max_retries(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay(default=Reply.error(502, "BadGateway"))
    scripted.append(backend)
    sleep = Recorder()
    forwarder = make_forwarder(
        forwarders,
        backend.url,
        sleep=sleep,
        max_retries=3,
        jitter=lambda: 1.0,
        backoff_base=1.0,
        backoff_max=3.0,
    )

    forwarder.offer(segment(1))
    assert forwarder.flush()

    assert len(backend.requests) == 4
    assert sleep.delays == [1.0, 2.0, 3.0]  # capped at backoff_max
    counters = forwarder.counters()
    assert (counters["dropped"], counters["retries"], counters["backend_5xx"]) == (1, 3, 4)


def test_unreachable_endpoint_is_retried_then_dropped(forwarders: list[Forwarder]) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on (held: nobody can)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        sleep = Recorder()
        url = f"http://127.0.0.1:{port}"
        forwarder = make_forwarder(forwarders, url, sleep=sleep, max_retries=2)
        forwarder.offer(segment(1))
        assert forwarder.flush()

    counters = forwarder.counters()
    assert counters["backend_connection_errors"] == 3 and counters["dropped"] == 1
    assert len(sleep.delays) == 2


def test_failures_are_logged_once_per_reason_per_minute(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder], caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedXRay(default=Reply.error(500, "InternalFailure"))
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url, max_retries=4, concurrency=1)

    with caplog.at_level(logging.WARNING, logger="otel_xray_collector.forward"):
        for i in range(3):
            forwarder.offer(segment(i))
            assert forwarder.flush()

    attempts = [r for r in caplog.records if "upload attempt failed" in r.getMessage()]
    batches = [r for r in caplog.records if "sending a batch" in r.getMessage()]
    assert len(backend.requests) == 15
    assert len(attempts) == 1 and len(batches) == 1
    assert forwarder.counters()["dropped"] == 3


# --- bounded buffer and shutdown ------------------------------------------------------------------


def test_full_buffer_drops_the_oldest_and_stays_bounded(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay(Reply(hold=True))
    scripted.append(backend)
    forwarder = make_forwarder(
        forwarders, backend.url, concurrency=1, batch_size=10, max_buffered_documents=100
    )
    first_batch = [segment(i) for i in range(10)]
    for document in first_batch:
        forwarder.offer(document)
    backend.wait_for_requests(1)  # the only sender is now stuck in that request

    later = [segment(100 + i) for i in range(130)]
    for document in later:
        forwarder.offer(document)

    counters = forwarder.counters()
    assert counters["spillover"] == 30
    assert counters["buffered"] == 100
    assert counters["buffered_bytes"] == sum(len(d) for d in later[30:])
    backend.release()
    assert forwarder.flush()
    assert backend.documents() == first_batch + later[30:]  # the oldest 30 were dropped
    assert forwarder.counters()["sent"] == 110


def test_byte_budget_bounds_the_buffer(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay()
    scripted.append(backend)
    forwarder = make_forwarder(forwarders, backend.url, start=False, max_buffered_bytes=1000)
    documents = [segment(i) for i in range(20)]

    for document in documents:
        forwarder.offer(document)
    forwarder.offer("x" * 1001)  # larger than the whole budget: dropped on its own

    counters = forwarder.counters()
    assert counters["buffered_bytes"] <= 1000
    kept = counters["buffered"]
    assert counters["spillover"] == 20 - kept + 1
    forwarder.start()
    assert forwarder.flush()
    assert backend.documents() == documents[20 - kept :]


def test_stop_does_not_wait_out_a_failing_backend(
    scripted: list[ScriptedXRay], forwarders: list[Forwarder]
) -> None:
    backend = ScriptedXRay(default=Reply.error(503, "ServiceUnavailable"))
    scripted.append(backend)
    clock = FakeClock()
    forwarder = make_forwarder(
        forwarders,
        backend.url,
        clock=clock,
        sleep=clock.advance,
        max_retries=1000,
        backoff_base=1.0,
    )

    forwarder.offer(segment(1))
    forwarder.stop(timeout=10)

    counters = forwarder.counters()
    assert counters["dropped"] == 1
    assert clock.now <= 10  # retried only while the stop timeout allowed
    assert 2 <= len(backend.requests) < 1000


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


# --- configuration --------------------------------------------------------------------------------


def test_region_decides_the_default_endpoint(
    monkeypatch: pytest.MonkeyPatch, forwarders: list[Forwarder]
) -> None:
    forwarders.extend([Forwarder(None, "eu-west-1"), Forwarder(None, "cn-north-1")])
    assert forwarders[0].endpoint_url == "https://xray.eu-west-1.amazonaws.com"
    assert forwarders[1].endpoint_url == "https://xray.cn-north-1.amazonaws.com.cn"
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    forwarder = Forwarder(None, None)
    forwarders.append(forwarder)
    assert forwarder.region == "ap-southeast-2"
    assert forwarder.endpoint_url == "https://xray.ap-southeast-2.amazonaws.com"


def test_no_region_is_a_clear_error(forwarders: list[Forwarder]) -> None:
    assert "AWS_REGION" not in os.environ
    with pytest.raises(ValueError, match="needs a region"):
        Forwarder(None, None)
    forwarders.append(Forwarder("http://127.0.0.1:9", None))
    assert forwarders[0].region == "us-east-1"  # a local endpoint still needs a region to sign
