"""Per-second reservoirs: "the first N traces of every second are sampled".

Seconds are wall-clock epoch seconds (``int(clock())``), as in the X-Ray SDKs, so N traces are
taken between ``…:05.000`` and ``…:05.999`` however the requests are spread.

A reservoir is shared by every thread that starts spans. It takes a small lock to count, but
once a second's budget is spent it records that second, and every further request in that
second is refused without touching the lock: under load, when a sampler runs most, the lock is
off the path (bench/sampler.py measures the cost).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from otel_xray import fork as _fork

Clock = Callable[[], float]


class Reservoir:
    """Admits up to ``capacity`` takes per wall-clock second."""

    __slots__ = ("capacity", "_lock", "_second", "_used", "_full_second", "__weakref__")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._second = -1
        self._used = 0
        self._full_second = -1
        _fork.register(self)

    def take(self, now: float) -> bool:
        second = int(now)
        if second == self._full_second or self.capacity <= 0:
            return False
        with self._lock:
            if second != self._second:
                self._second = second
                self._used = 0
            if self._used >= self.capacity:
                self._full_second = second
                return False
            self._used += 1
            return True

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
