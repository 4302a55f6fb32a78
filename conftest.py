"""Root conftest: the loopback guard for the whole run, and fixtures shared by both suites."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.udp import UdpDaemon

# The guard (tools/netguard) fails the run when this process or any Python process it starts
# tries to reach beyond loopback; it also disables the EC2 metadata probe for every process.
sys.path.insert(0, str(Path(__file__).parent / "tools" / "netguard"))
pytest_plugins = ["pytest_loopback_guard"]


# Fuzz tests (marker ``fuzz``): a few examples in every run so ``make test`` stays fast; ``make
# fuzz`` selects the ``fuzz`` profile through OTEL_XRAY_FUZZ_PROFILE for a much larger budget.
# No deadline: this machine is shared, and a slow example is not a failure (bench/ measures time).
FUZZ_PROFILE_ENV = "OTEL_XRAY_FUZZ_PROFILE"
settings.register_profile(
    "quick", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get(FUZZ_PROFILE_ENV, "quick"))


@pytest.fixture
def udp_daemon() -> Iterator[UdpDaemon]:
    """A real UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""
    daemon = UdpDaemon()
    try:
        yield daemon
    finally:
        daemon.close()
