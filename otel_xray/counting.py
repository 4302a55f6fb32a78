"""Running totals a component keeps and shows (``counters`` snapshot, ``stats()`` dict).

The exporter and the processor count what they sent, split, dropped...; each keeps a dataclass
of ints behind a lock so a snapshot is consistent while its worker thread adds to it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, replace
from typing import Any, Generic, TypeVar

C = TypeVar("C")


class Counted(Generic[C]):
    """Mixin: call ``_init_counters`` with a fresh dataclass of int fields."""

    _counters: C
    _counters_lock: threading.Lock

    def _init_counters(self, counters: C) -> None:
        self._counters = counters
        self._counters_lock = threading.Lock()

    @property
    def counters(self) -> C:
        """A consistent snapshot of the running totals."""
        with self._counters_lock:
            return replace(self._counters)  # type: ignore[type-var]

    def stats(self) -> dict[str, int]:
        """The counters as a plain dict (for logs and metrics)."""
        return asdict(self.counters)  # type: ignore[call-overload,no-any-return]

    def _add(self, **deltas: int) -> None:
        with self._counters_lock:
            counters: Any = self._counters
            for name, delta in deltas.items():
                if delta:  # most are 0 on most calls: an export that went well
                    setattr(counters, name, getattr(counters, name) + delta)
