"""The console script as a process: listening line, clean shutdown, kill -9 durability."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .conftest import xray_client_for
from .support.postgres import BOTH_STORES
from .support.process import CONSOLE_SCRIPT, CollectorProcess
from .support.segments import HEADER, segment

pytestmark = BOTH_STORES


def test_listening_line_and_sigterm_shutdown(collector_process: CollectorProcess) -> None:
    event = collector_process.listening
    assert event["event"] == "listening"
    assert event["db"] == str(collector_process.db)
    for key in ("udp", "tcp", "otlp"):
        host, port = event[key].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
    assert collector_process.status()["stored"] == 0
    assert collector_process.terminate() == 0
    assert "shutting down" in collector_process.stderr_text()


def test_udp_documents_survive_a_restart(tmp_path: Path) -> None:
    docs = [segment("persisted") for _ in range(20)]
    first = CollectorProcess(tmp_path / "xray.db", otlp=False)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for doc in docs:
                udp.sendto(HEADER + json.dumps(doc).encode(), first.udp_address)
        # On loopback a datagram is in the collector's socket buffer once sendto returns; SIGTERM
        # stores everything received before it, including what still waits in that buffer
        # because the receiver was not scheduled yet (test_udp_receiver_process proves both).
        assert first.terminate() == 0
    finally:
        first.kill()
    second = CollectorProcess(tmp_path / "xray.db", otlp=False)
    try:
        client = xray_client_for(second.endpoint_url)
        found = client.batch_get_traces(TraceIds=[d["trace_id"] for d in docs[:25]])
        assert {t["Id"] for t in found["Traces"]} == {d["trace_id"] for d in docs}
    finally:
        second.kill()


def _stored_trace_ids(client: Any, trace_ids: list[str]) -> set[str]:
    found: set[str] = set()
    paginator = client.get_paginator("batch_get_traces")
    for start in range(0, len(trace_ids), 500):
        for page in paginator.paginate(TraceIds=trace_ids[start : start + 500]):
            found.update(t["Id"] for t in page["Traces"])
    return found


def test_kill_9_mid_ingest_keeps_every_acknowledged_document(tmp_path: Path) -> None:
    db = tmp_path / "xray.db"
    victim = CollectorProcess(db, otlp=False)
    acknowledged: list[str] = []
    udp_sent: list[str] = []
    stop = threading.Event()

    def flood() -> None:  # UDP traffic keeps the writer busy while we kill it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while len(udp_sent) < 3000:
                for _ in range(50):
                    doc = segment("flood")
                    udp_sent.append(doc["trace_id"])
                    udp.sendto(HEADER + json.dumps(doc).encode(), victim.udp_address)
                # pace in bursts so this thread doesn't starve the test's HTTP calls of the GIL
                if stop.wait(0.002):
                    return

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        client = xray_client_for(victim.endpoint_url)
        committed_udp = 0
        for _ in range(10):
            batch = [segment("acked") for _ in range(10)]
            answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in batch])
            assert answer["UnprocessedTraceSegments"] == []
            acknowledged.extend(d["trace_id"] for d in batch)
        # Kill only once some of the flood is committed too, so both paths are exercised.
        # /status counts only committed documents: a lower bound of what must survive.
        deadline = time.monotonic() + 30
        while committed_udp <= 0 and time.monotonic() < deadline:
            committed_udp = victim.status()["stored"] - len(acknowledged)
        victim.kill()
    finally:
        stop.set()
        flooder.join()
        victim.kill()
    assert committed_udp > 0
    survivor = CollectorProcess(db, otlp=False)
    try:
        client = xray_client_for(survivor.endpoint_url)
        assert _stored_trace_ids(client, acknowledged) == set(acknowledged)
        assert len(_stored_trace_ids(client, udp_sent)) >= committed_udp
    finally:
        survivor.kill()


def test_module_entry_point_prints_version() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "otel_xray_collector.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and "otel-xray-collector" in run.stdout


def test_a_hostile_sampling_rules_file_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    rules = tmp_path / "sampling-rules.json"
    rules.write_text('{"version": 2, "default": {"fixed_target": 1, "rate": ' + "9" * 5000 + "}}")
    run = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--otlp",
            "off",
            "--otlp-http",
            "off",
            "--db",
            str(tmp_path / "x.db"),
            "--sampling-rules",
            str(rules),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2  # a bad argument (docs/collector.md, "Start-up errors")
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f"--sampling-rules {rules}: default.rate: a 5000-digit integer" in lines[0]
    assert run.stdout == ""
