from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.udp import UdpDaemon


@pytest.fixture
def udp_daemon() -> Iterator[UdpDaemon]:
    """A real UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""
    daemon = UdpDaemon()
    try:
        yield daemon
    finally:
        daemon.close()
