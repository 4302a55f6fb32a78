"""Root conftest: the loopback guard for the whole run, and fixtures shared by both suites."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.udp import UdpDaemon

# The guard (tools/netguard) fails the run when this process or any Python process it starts
# tries to reach beyond loopback; it also disables the EC2 metadata probe for every process.
sys.path.insert(0, str(Path(__file__).parent / "tools" / "netguard"))
pytest_plugins = ["pytest_loopback_guard"]


@pytest.fixture
def udp_daemon() -> Iterator[UdpDaemon]:
    """A real UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""
    daemon = UdpDaemon()
    try:
        yield daemon
    finally:
        daemon.close()
