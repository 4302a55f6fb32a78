"""SIGTERM flushes what has ended, then the signal takes the course it would have taken.

Python's default SIGTERM action kills the process without running ``atexit``, so the SDK's
exit-time flush never runs: every Kubernetes rollout and ``docker stop`` lost the spans of the
last requests. :func:`install_sigterm_flush` installs, from the main thread only, a handler that

1. flushes the tracer providers (``force_flush``, bounded: 1 s by default), then
2. does what would have happened without it: calls the handler that was installed before
   (an application's own), or, when that was the default action, restores the default and
   raises the signal again, so the process still dies *by SIGTERM* (``returncode == -15``
   for its parent, 143 for a shell: supervisors see what they always saw).

It installs nothing when SIGTERM is ignored (``SIG_IGN``) or handled outside Python, nor in a
non-main thread (where ``signal.signal`` is not allowed). A handler the application installs
*after* ours simply replaces it, and nothing is wrapped or patched to prevent that: such a
handler either returns (the process goes on, and the sender keeps sending) or ends the process
through ``sys.exit``/``SystemExit``, and then ``atexit`` runs the provider's shutdown, which
flushes. Only ``os._exit`` or a re-raised default action from such a handler skips that, which
is the application's explicit choice. The sender sends each segment within milliseconds of its
request's end anyway, so the flush only has the last few to deliver.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import weakref
from types import FrameType
from typing import Any, Protocol

_logger = logging.getLogger("otel_xray.sigterm")


class Flushable(Protocol):
    def force_flush(self, timeout_millis: int = 30_000) -> bool: ...


class SigtermFlush:
    """The installed handler: flush every registered provider, then chain to ``previous``."""

    def __init__(self, previous: Any, timeout_millis: int) -> None:
        self.previous = previous
        self.timeout_millis = timeout_millis
        self._providers: list[weakref.ReferenceType[Flushable]] = []

    def add(self, provider: Flushable, timeout_millis: int) -> None:
        self._providers.append(weakref.ref(provider))
        self.timeout_millis = max(self.timeout_millis, timeout_millis)

    def flush(self) -> None:
        """Flush every live provider, all within one ``timeout_millis`` budget; never raises."""
        deadline = time.monotonic() + self.timeout_millis / 1000
        for reference in self._providers:
            provider = reference()
            if provider is None:
                continue
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                break
            try:
                provider.force_flush(left)
            except Exception:  # the signal must take its course whatever happened here
                _logger.exception("Flushing spans on SIGTERM failed")

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        self.flush()
        previous = self.previous
        if callable(previous):
            return previous(signum, frame)
        # The default action: terminate by the signal, exactly as without us.
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return None


def install_sigterm_flush(provider: Flushable, timeout_millis: int = 1000) -> bool:
    """Flush ``provider`` on SIGTERM before the signal's usual effect; True when installed.

    Called again (another ``configure()``), it adds the provider to the handler already in
    place rather than stacking handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        _logger.debug("Not in the main thread: SIGTERM handler not installed")
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
    except (AttributeError, ValueError):  # no SIGTERM on this platform
        return False
    if isinstance(current, SigtermFlush):
        current.add(provider, timeout_millis)
        return True
    if current is signal.SIG_IGN or current is None:
        # Ignored on purpose, or handled by C code we cannot chain to: leave it alone.
        _logger.debug("SIGTERM is ignored or handled outside Python: handler not installed")
        return False
    handler = SigtermFlush(current, timeout_millis)
    handler.add(provider, timeout_millis)
    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError) as exc:  # embedded interpreters without signal support
        _logger.debug("Cannot install the SIGTERM handler: %s", exc)
        return False
    return True


__all__ = ["SigtermFlush", "install_sigterm_flush"]
