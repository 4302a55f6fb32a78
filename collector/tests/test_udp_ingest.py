"""UDP ingest over a real socket: the corpus, bad datagrams among good ones, bounded memory."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.ingest.pipeline import IngestPipeline

from .support.segments import HEADER, UdpSender, new_id, segment
from .test_ingest_validation import ACCEPTED, CORPUS, REJECTED


@pytest.fixture
def sender(collector: Collector) -> Iterator[UdpSender]:
    udp = UdpSender(collector.udp_address)
    try:
        yield udp
    finally:
        udp.close()


def stored_ids(xray_client: Any, trace_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for page in xray_client.get_paginator("batch_get_traces").paginate(TraceIds=trace_ids):
        for trace in page["Traces"]:
            for seg in trace["Segments"]:
                doc = json.loads(seg["Document"])
                found.add(doc["id"])
                stack = list(doc.get("subsegments", []))
                while stack:
                    sub = stack.pop()
                    found.add(sub["id"])
                    stack.extend(sub.get("subsegments", []))
    return found


def test_corpus_over_udp_is_accepted_or_rejected_per_file(
    collector: Collector, sender: UdpSender, xray_client: Any
) -> None:
    for name in ACCEPTED + sorted(REJECTED):
        sender.send([HEADER + (CORPUS / name).read_bytes()])
    framed = sorted((CORPUS / "udp-framed").glob("*.txt"))
    sender.send([p.read_bytes() for p in framed])
    assert collector.wait_for_datagrams(sender.sent)
    status = collector.status()
    assert status["stored"] == len(ACCEPTED) + len(framed)
    assert status["rejected"] == {"missing_field": len(REJECTED)}
    trace_ids = sorted({json.loads((CORPUS / n).read_text())["trace_id"] for n in ACCEPTED})
    traces = xray_client.batch_get_traces(TraceIds=trace_ids)
    assert sorted(t["Id"] for t in traces["Traces"]) == trace_ids
    assert traces["UnprocessedTraceIds"] == []


def test_bad_datagrams_interleaved_with_good_ones_lose_nothing(
    collector: Collector, sender: UdpSender, xray_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good = [
        segment(
            "svc", subsegments=[{"name": "c", "id": new_id(), "start_time": 1.0, "end_time": 2.0}]
        )
        for _ in range(60)
    ]
    # The largest datagram IPv4 carries (65,507 B) is read whole, never truncated.
    largest = segment("big")
    largest["metadata"] = {"x": ""}
    filler = 65_507 - len(HEADER) - len(json.dumps(largest))
    largest["metadata"]["x"] = "y" * filler
    good.append(largest)
    bad = [
        b"\x00\x01garbage",
        b'{"format":"json","version":1}',
        HEADER + json.dumps(good[0])[:40].encode(),  # truncated
        b'{"format":"json","version":2}\n{}',
        HEADER + b'{"name":"x"}',
    ]
    datagrams: list[Any] = []
    for index, doc in enumerate(good):
        datagrams.append(doc)
        datagrams.append(bad[index % len(bad)])
    with caplog.at_level(logging.WARNING, logger="otel_xray_collector.ingest"):
        sender.send(datagrams)
        assert collector.wait_for_datagrams(len(datagrams))
    status = collector.status()
    assert status["stored"] == len(good)
    assert status["rejected"] == {
        "missing_header_or_body": 25,
        "invalid_json": 12,
        "invalid_header": 12,
        "missing_field": 12,
    }
    assert status["spillover"] == 0
    assert stored_ids(xray_client, [d["trace_id"] for d in good]) == (
        {d["id"] for d in good} | {s["id"] for d in good for s in d.get("subsegments", [])}
    )
    # logged once per reason (per minute), not once per datagram
    rejections = [r for r in caplog.records if "rejected segment document" in r.getMessage()]
    assert len(rejections) == 4


def test_oversize_documents_are_rejected(xray_client: Any) -> None:
    """Over UDP a body can't exceed 64 KiB; PutTraceSegments can carry one, and it is refused."""
    big = segment("big", metadata={"x": "y" * 70_000})
    answer = xray_client.put_trace_segments(TraceSegmentDocuments=[json.dumps(big)])
    [reject] = answer["UnprocessedTraceSegments"]
    assert reject["ErrorCode"] == "SegmentTooLarge" and "64 KiB" in reject["Message"]


def test_json_array_of_subsegments_in_one_datagram(
    collector: Collector, sender: UdpSender, xray_client: Any
) -> None:
    parent = segment("svc")
    subs = [
        {
            "name": f"s{i}",
            "id": new_id(),
            "trace_id": parent["trace_id"],
            "parent_id": parent["id"],
            "type": "subsegment",
            "start_time": parent["start_time"],
            "end_time": parent["end_time"],
        }
        for i in range(3)
    ]
    sender.send([HEADER + json.dumps(subs).encode(), parent])
    assert collector.wait_for_datagrams(2)
    [trace] = xray_client.batch_get_traces(TraceIds=[parent["trace_id"]])["Traces"]
    [seg] = trace["Segments"]
    assert sorted(s["name"] for s in json.loads(seg["Document"])["subsegments"]) == [
        "s0",
        "s1",
        "s2",
    ]


def test_queue_is_bounded_and_drops_the_oldest() -> None:
    pipeline = IngestPipeline(store=None, buffer_bytes=10_000)  # thread not started: fills up
    datagrams = [HEADER + json.dumps(segment(f"s{i}")).encode() for i in range(200)]
    for datagram in datagrams:
        pipeline.put_datagrams([datagram])
    counters = pipeline.counters()
    assert counters["queued_bytes"] <= 10_000
    kept = counters["queued_datagrams"]
    assert kept > 0 and counters["spillover"] == 200 - kept
    assert list(pipeline._datagrams) == datagrams[-kept:]


def test_in_progress_then_complete_over_udp(
    collector: Collector, sender: UdpSender, xray_client: Any
) -> None:
    done = segment("long", start=time.time() - 3, duration=2.0)
    running = {k: v for k, v in done.items() if k != "end_time"} | {"in_progress": True}
    sender.send([running])
    assert collector.wait_for_datagrams(1)
    [summary] = xray_client.get_trace_summaries(
        StartTime=time.time() - 60, EndTime=time.time() + 5
    )["TraceSummaries"]
    assert summary["IsPartial"] is True
    sender.send([done])
    assert collector.wait_for_datagrams(2)
    [summary] = xray_client.get_trace_summaries(
        StartTime=time.time() - 60, EndTime=time.time() + 5
    )["TraceSummaries"]
    assert summary["IsPartial"] is False and summary["Duration"] == pytest.approx(2.0)


def test_pipeline_can_be_used_without_a_running_store(tmp_path: Path) -> None:
    assert IngestPipeline(store=None).counters()["stored_seq"] == 0
