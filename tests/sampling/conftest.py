from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sampling.api_server import SamplingApiServer


class FakeClock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sampling_api() -> Iterator[SamplingApiServer]:
    server = SamplingApiServer()
    try:
        yield server
    finally:
        server.stop()
