"""install_sigterm_flush: where it installs, what it leaves alone, how it chains.

The end-to-end behaviour (five requests, SIGTERM, five segments, death by the signal, the
application's own handler) is in tests/e2e/test_delivery.py; these check the rules in-process,
restoring the test runner's own SIGTERM disposition afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from otel_xray.sigterm import SigtermFlush, install_sigterm_flush


class Provider:
    """Records flushes, as a TracerProvider's force_flush would be called."""

    def __init__(self) -> None:
        self.flushes: list[int] = []

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.flushes.append(timeout_millis)
        return True


@pytest.fixture
def sigterm() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_nothing_is_installed_from_another_thread(sigterm: None) -> None:
    before = signal.getsignal(signal.SIGTERM)
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.append(install_sigterm_flush(Provider())))
    worker.start()
    worker.join(30)
    assert results == [False]
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigterm_stays_ignored(sigterm: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    assert install_sigterm_flush(Provider()) is False
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_second_configure_joins_the_installed_handler(sigterm: None) -> None:
    calls: list[int] = []

    def application(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    signal.signal(signal.SIGTERM, application)
    first, second = Provider(), Provider()
    assert install_sigterm_flush(first, 500) and install_sigterm_flush(second, 800)
    handler = signal.getsignal(signal.SIGTERM)
    assert isinstance(handler, SigtermFlush) and handler.previous is application
    handler(signal.SIGTERM, None)
    assert len(first.flushes) == 1 and len(second.flushes) == 1
    assert all(0 < timeout <= 800 for timeout in first.flushes + second.flushes)
    assert calls == [signal.SIGTERM]  # the application's handler ran, once, after the flush


def test_the_default_action_still_kills_by_the_signal_after_the_flush() -> None:
    """In a child process: the flush runs, then the process dies by SIGTERM (not an exit)."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from otel_xray.sigterm import install_sigterm_flush

        class Provider:
            def force_flush(self, timeout_millis=30_000):
                sys.stdout.write("flushed\\n")
                sys.stdout.flush()
                return True

        provider = Provider()
        assert install_sigterm_flush(provider)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # never reached past the signal
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "flushed\n", result.stderr
    assert result.returncode == -signal.SIGTERM
