"""Running totals a component keeps and shows (``counters`` snapshot, ``stats()`` dict).

The exporter and the processor count what they sent, split, dropped...; each keeps a dataclass
of ints behind a lock so a snapshot is consistent while its worker thread adds to it. The lock
is re-created in a forked child (:mod:`otel_xray.fork`): a parent thread holding it at fork time
would otherwise leave the child's counters locked for ever.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, replace
from typing import Any, Generic, TypeVar

from otel_xray import fork

C = TypeVar("C")


class Counted(Generic[C]):
    """Mixin: call ``_init_counters`` with a fresh dataclass of int fields.

    Registers the object with :mod:`otel_xray.fork`; a subclass that owns more per-process
    state extends ``_after_fork_in_child`` and calls ``super()._after_fork_in_child()``.
    """

    _counters: C
    _counters_lock: threading.Lock

    def _init_counters(self, counters: C) -> None:
        self._counters = counters
        self._counters_lock = threading.Lock()
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        # The totals stay (the child inherited them); the lock must be the child's own.
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
