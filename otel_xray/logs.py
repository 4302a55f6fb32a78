"""Saying a recurring problem once per interval: the one mechanism the library and the collector
use for it (a daemon that is down, a name that does not resolve, a flood of bad datagrams, a
forwarding backend that refuses: each would otherwise write one line per batch, per second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RateLimitedLog:
    """Log each ``key`` once, then at most once per ``interval``, with how many were held back.

    Messages with different keys (a rejection reason, an error kind) are limited separately;
    the default key makes one limit for everything logged through this object.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, message: str, *args: object, key: str = "", count: int = 1) -> bool:
        """Log unless ``key`` was logged less than ``interval`` ago; True when a line was written.

        ``count`` is how many occurrences this call stands for (a batch of rejections).
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + count
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0) + count - 1
        if suppressed:
            message += f" ({suppressed} similar messages suppressed)"
        self._logger.log(level, message, *args)
        return True

    def warning(self, message: str, *args: object, key: str = "", count: int = 1) -> bool:
        return self.log(logging.WARNING, message, *args, key=key, count=count)

    def forget(self, key: str = "") -> None:
        """Let the next message with ``key`` through (tests of the first message use it)."""
        with self._lock:
            self._last.pop(key, None)
            self._suppressed.pop(key, None)

    def reinit_after_fork(self) -> None:
        """The parent's lock may have been held at fork(): the child needs its own."""
        self._lock = threading.Lock()
