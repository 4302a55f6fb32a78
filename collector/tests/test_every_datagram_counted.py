"""Issue 15 case 11: every datagram is counted, empty ones included, with either receiver."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from otel_xray_collector.app import Collector

from .conftest import make_config
from .support.segments import HEADER, frame, segment


@pytest.mark.parametrize(
    "receiver_process",
    [
        pytest.param(
            True,
            id="receiver-process",
            marks=pytest.mark.skipif(os.name != "posix", reason="POSIX-only receiver"),
        ),
        pytest.param(False, id="thread"),
    ],
)
def test_empty_datagrams_are_received_and_rejected_as_empty(
    tmp_path: Path, receiver_process: bool
) -> None:
    collector = Collector(
        make_config(tmp_path / "xray.db", otlp=None, receiver_process=receiver_process)
    ).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(5):
                udp.sendto(b"", collector.udp_address)
            udp.sendto(frame(segment("after-empty")), collector.udp_address)
            udp.sendto(HEADER, collector.udp_address)
        assert collector.wait_for_datagrams(7, timeout=30)
        status = collector.status()
        assert status["received"] == 7 and status["udp"]["datagrams_received"] == 7
        assert status["rejected"] == {"empty": 5, "missing_header_or_body": 1}
        assert status["stored"] == 1
        # every datagram is accounted for: stored, rejected or spilled
        assert status["stored"] + sum(status["rejected"].values()) + status["spillover"] == 7
    finally:
        collector.stop()
