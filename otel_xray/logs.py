"""Saying a recurring problem once per interval: the one mechanism the library and the collector
use for it (a daemon that is down, a name that does not resolve, a flood of bad datagrams, a
forwarding backend that refuses: each would otherwise write one line per batch, per second),
and :class:`OutageLog` for something that fails every attempt until a peer is back (its start,
a count once per interval, its end).
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


class OutageLog:
    """An outage told in three kinds of line, not one per failed attempt: the first failure,
    then at most once per ``interval`` how many more failed, then one line when it is over.

    For something that fails every attempt while a peer is away (a store that cannot serve, a
    backend that is down) and works again once it is back: the owner calls :meth:`failed` on
    each failure and :meth:`recovered` on each success (cheap when there was no outage).
    ``what`` names what fails, for the count and recovery lines ("store writes"); the first
    line is the caller's, so it can say what failed and why.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        interval: float = 60.0,
        level: int = logging.ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._down = False
        self._started = 0.0
        self._last_line = 0.0
        self._failures = 0  # in this outage
        self._unlogged = 0  # failures since the last line

    def failed(self, message: str, *args: object) -> None:
        """One more failure: ``message`` when it starts the outage, else counted (and the count
        logged when the last line is ``interval`` old)."""
        now = self._clock()
        with self._lock:
            self._failures += 1
            if not self._down:
                self._down, self._started, self._last_line, self._unlogged = True, now, now, 0
                line: tuple[str, tuple[object, ...]] | None = (message, args)
            elif now - self._last_line >= self._interval:
                line = (
                    "%s: still failing, %d more failures in the last %.0f s",
                    (self._what, self._unlogged + 1, now - self._last_line),
                )
                self._last_line, self._unlogged = now, 0
            else:
                self._unlogged += 1
                line = None
        if line is not None:
            self._logger.log(self._level, line[0], *line[1])

    def recovered(self) -> None:
        """A success: ends the outage, if there was one, with one line saying how long and how
        many attempts failed."""
        if not self._down:  # the common case, without the lock
            return
        now = self._clock()
        with self._lock:
            if not self._down:
                return
            self._down = False
            failures, self._failures = self._failures, 0
            duration = now - self._started
        self._logger.warning(
            "%s: working again after %.0f s (%d failures during the outage)",
            self._what,
            duration,
            failures,
        )
