"""The UDP receiver child process: started and reaped with the collector, never orphaned,
bounded memory with drop-oldest, restarted if it dies, same results as the in-process path."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.documents import unpack
from otel_xray_collector.ingest.frames import Frame, FrameReader
from otel_xray_collector.ingest.udp import UdpReceiver
from otel_xray_collector.ingest.udp_child import Backlog, FrameBuilder
from otel_xray_collector.ingest.udp_process import UdpReceiverProcess

from .conftest import make_config, xray_client_for
from .support.process import CONSOLE_SCRIPT, CollectorProcess
from .support.segments import HEADER, UdpSender, frame, segment

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the receiver process is POSIX-only")


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper has stopped running)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _udp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _poll(condition: Any, timeout: float = 20.0) -> bool:
    """For cross-process facts with no event to wait on (another process's exit or counters)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_receiver_process_is_started_with_the_collector_and_reaped_by_stop(tmp_path: Path) -> None:
    collector = Collector(make_config(tmp_path / "xray.db", otlp=None)).start()
    try:
        pid = collector.status()["udp"]["receiver_pid"]
        assert pid is not None and pid != os.getpid() and _running(pid)
        sender = UdpSender(collector.udp_address)
        sender.send([segment(f"s{i}") for i in range(50)] + [b"no header"])
        sender.close()
        assert collector.wait_for_datagrams(51)
        status = collector.status()
        assert status["received"] == 51 and status["stored"] == 50
        assert status["rejected"] == {"missing_header_or_body": 1}
    finally:
        collector.stop()
    with pytest.raises(ProcessLookupError):  # exited AND reaped: no zombie left behind
        os.kill(pid, 0)


def test_kill_9_of_the_collector_leaves_no_receiver_holding_the_port(tmp_path: Path) -> None:
    victim = CollectorProcess(tmp_path / "xray.db", otlp=False)
    try:
        child = victim.status()["udp"]["receiver_pid"]
        port = victim.udp_address[1]
        assert _running(child) and not _udp_port_is_free(port)
        victim.kill()
        assert _poll(lambda: not _running(child)), "receiver outlived the collector"
        assert _poll(lambda: _udp_port_is_free(port))
    finally:
        victim.kill()


def test_sigint_to_the_process_group_still_writes_what_was_received(tmp_path: Path) -> None:
    """Ctrl-C reaches the receiver too; it ignores it and is stopped in order by the
    collector, so documents it held are written, not lost."""
    db = tmp_path / "xray.db"
    process = subprocess.Popen(
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
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        host, port = listening["udp"].rsplit(":", 1)
        docs = [segment("interrupted") for _ in range(200)]
        sender = UdpSender((host, int(port)))
        sender.send(docs)
        sender.close()
        url = "http://" + listening["tcp"] + "/status"

        def all_received() -> bool:
            import urllib.request

            with urllib.request.urlopen(url, timeout=10) as response:
                return bool(json.loads(response.read())["received"] == len(docs))

        assert _poll(all_received)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    reopened = CollectorProcess(db, otlp=False)
    try:
        client = xray_client_for(reopened.endpoint_url)
        found = set()
        for start in range(0, len(docs), 5):
            batch = [d["trace_id"] for d in docs[start : start + 5]]
            found.update(t["Id"] for t in client.batch_get_traces(TraceIds=batch)["Traces"])
        assert found == {d["trace_id"] for d in docs}
    finally:
        reopened.kill()


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_stop_hands_over_the_datagrams_already_waiting_in_the_socket() -> None:
    """Datagrams the kernel accepted before ``stop()`` are stored, even when the receiver
    process was not scheduled between their arrival and the stop (a busy machine): it wakes
    with the socket and the stop byte both readable, and must take the datagrams first."""
    delivered: list[Frame] = []
    receiver = UdpReceiverProcess("127.0.0.1", 0, delivered.append, 1024 * 1024)
    receiver.start()
    child = receiver.pid
    assert child is not None
    stopper = threading.Thread(target=receiver.stop)
    try:
        os.kill(child, signal.SIGSTOP)  # the scheduler's part, made certain
        assert _poll(lambda: _process_state(child) == "T")
        docs = [segment("waiting") for _ in range(20)]
        sender = UdpSender(receiver.address)
        sender.send(docs)  # on loopback, in the socket's buffer once sendto returns
        sender.close()
        stopper.start()
        # the stop byte is written (and the control pipe closed) before the receiver runs again
        assert _poll(lambda: receiver._control is None)
    finally:
        os.kill(child, signal.SIGCONT)
    stopper.join(timeout=60)
    assert not stopper.is_alive()
    kept = [doc.segment_id for f in delivered for doc in unpack(f.documents)]
    assert kept == [d["id"] for d in docs]
    assert receiver.received == len(docs) and receiver.spillover == 0


def test_thread_receiver_stop_hands_over_the_datagrams_already_waiting() -> None:
    """The in-process receiver's version: its thread is busy delivering one batch when the
    next arrives and the stop comes; the waiting batch is still delivered."""
    delivered: list[bytes] = []
    busy = threading.Event()
    release = threading.Event()

    def deliver(batch: list[bytes]) -> None:
        busy.set()
        release.wait(60)
        delivered.extend(batch)

    receiver = UdpReceiver("127.0.0.1", 0, deliver)
    receiver.start()
    sender = UdpSender(receiver.address)
    stopper = threading.Thread(target=receiver.stop)
    try:
        first = [frame(segment("first"))]
        sender.send(first)
        assert busy.wait(30)
        waiting = [frame(segment("waiting")) for _ in range(5)]
        sender.send(waiting)
        stopper.start()
        assert _poll(receiver._stopping.is_set)
    finally:
        release.set()
        sender.close()
    stopper.join(timeout=60)
    assert not stopper.is_alive()
    assert delivered == first + waiting


def test_a_dead_receiver_is_restarted_and_ingest_goes_on(tmp_path: Path) -> None:
    collector = Collector(make_config(tmp_path / "xray.db", otlp=None)).start()
    try:
        first = collector.status()["udp"]["receiver_pid"]
        os.kill(first, signal.SIGKILL)
        assert _poll(lambda: collector.status()["udp"]["receiver_restarts"] == 1)
        assert _poll(lambda: collector.status()["udp"]["receiver_pid"] != first)
        sender = UdpSender(collector.udp_address)
        sender.send([segment("after-restart") for _ in range(10)])
        sender.close()
        assert collector.wait_for_datagrams(10)
        assert collector.status()["stored"] == 10
    finally:
        collector.stop()
    assert not _running(first)


def test_receiver_memory_is_bounded_and_drops_the_oldest() -> None:
    """The collector stops taking frames; the receiver keeps at most its budget (plus what the
    pipe holds), drops the oldest beyond it, and the newest survive."""
    budget = 1024 * 1024
    release = threading.Event()
    delivered: list[Frame] = []
    changed = threading.Condition()

    def deliver(frame: Frame) -> None:
        release.wait(60)
        with changed:
            delivered.append(frame)
            changed.notify_all()

    receiver = UdpReceiverProcess("127.0.0.1", 0, deliver, budget)
    receiver.start()
    sent: list[str] = []
    try:
        sender = UdpSender(receiver.address)
        for _ in range(32):  # 32 x 25 x ~8 KiB: far more than the pipe plus the budget
            batch = [segment("flood", metadata={"pad": "x" * 8000}) for _ in range(25)]
            sender.send(batch)
            sent.extend(d["id"] for d in batch)
            assert _poll(lambda: receiver.received == len(sent))  # no kernel drops
        sender.close()
        assert receiver.queued_bytes <= budget
        assert receiver.spillover > 0
        release.set()
        with changed:
            assert changed.wait_for(
                lambda: sum(f.datagrams for f in delivered) + receiver.spillover == len(sent),
                timeout=30,
            )
    finally:
        release.set()
        receiver.stop()
    kept = [doc.segment_id for f in delivered for doc in unpack(f.documents)]
    assert len(kept) == len(sent) - receiver.spillover
    # what was already in the pipe comes first, then the newest; the oldest queued were dropped
    prefix = 0
    while prefix < len(kept) and kept[prefix] == sent[prefix]:
        prefix += 1
    assert kept[prefix:] == sent[len(sent) - (len(kept) - prefix) :]
    assert kept[-1] == sent[-1]


def test_backlog_drops_oldest_frames_first_then_oldest_datagrams() -> None:
    good = [
        HEADER + json.dumps(segment("same-size", start=1_700_000_000.5)).encode() for _ in range(20)
    ]
    size = len(good[0])
    assert all(len(d) == size for d in good)
    backlog = Backlog(budget=10 * size)
    for datagrams in (good[0:4] + [b"no header line"], good[4:9]):
        builder = FrameBuilder()
        for data in datagrams:
            builder.add(data)
        backlog.push(builder.finish(), builder.valid_datagrams, builder.size)
    assert backlog.spilled == 0 and backlog.queued_bytes == 9 * size
    backlog.add_raw(good[9:14])  # over budget: the oldest frame goes
    assert backlog.spilled == 4 and backlog.queued_datagrams == 10
    backlog.add_raw(good[14:15])  # then the next frame
    assert backlog.spilled == 9 and list(backlog.raw) == good[9:15]
    backlog.add_raw(good[15:20])  # no frame left: the oldest unparsed datagram goes
    assert backlog.spilled == 10 and list(backlog.raw) == good[10:20]
    assert backlog.queued_bytes == 10 * size
    read_end, write_end = os.pipe()
    try:
        assert backlog.write_some(write_end)
        os.close(write_end)
        write_end = -1
        [carried] = iter(FrameReader(read_end).read, None)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    # the dropped frame's rejected datagram is still accounted for
    assert carried.documents.total == 0 and carried.datagrams == 1
    assert carried.rejects["missing_header_or_body"][0] == 1


def test_thread_receiver_still_available(tmp_path: Path) -> None:
    collector = Collector(
        make_config(tmp_path / "xray.db", otlp=None, receiver_process=False)
    ).start()
    try:
        assert collector.status()["udp"]["receiver_pid"] is None
        sender = UdpSender(collector.udp_address)
        sender.send([segment("threaded") for _ in range(20)] + [HEADER + b"{"])
        sender.close()
        assert collector.wait_for_datagrams(21)
        status = collector.status()
        assert status["stored"] == 20 and status["rejected"] == {"invalid_json": 1}
    finally:
        collector.stop()
