"""Rebuilding per-process state in a child after ``os.fork()``: the one mechanism for it.

Pre-fork servers (gunicorn, uWSGI, Celery prefork) import the app, which builds the provider,
sampler, processor and exporter, then fork workers. In the child a lock another parent thread
held at fork time stays held forever, no background thread exists, and a socket is shared with
the parent. Objects that own any of these call :func:`register` and get
``_after_fork_in_child()`` called in each child, right after the fork; they are held weakly, so
registering never keeps an object alive.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

_logger = logging.getLogger("otel_xray")


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child this process forks from now on."""
    _registered.add(obj)


def _run_in_child() -> None:
    for obj in list(_registered):
        try:
            obj._after_fork_in_child()
        except Exception:  # never break the child process over tracing state
            _logger.exception("otel_xray: rebuilding %s after fork failed", type(obj).__name__)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_in_child)
