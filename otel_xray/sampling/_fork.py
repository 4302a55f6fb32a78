"""Re-initialise sampler state in a child process after ``os.fork()``.

Pre-fork servers (gunicorn, uWSGI, Celery prefork) import the app, which builds the sampler,
then fork workers. In the child, a lock that another parent thread held at fork time stays held
forever, and no poller thread exists. Objects that own either register here and get
``_after_fork_in_child()`` called in the child; they are held weakly so registering never keeps a
sampler alive.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

_logger = logging.getLogger("otel_xray.sampling")


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    _registered.add(obj)


def _run_in_child() -> None:
    for obj in list(_registered):
        try:
            obj._after_fork_in_child()
        except Exception:  # never break the child process over sampling state
            _logger.exception("otel_xray sampling: resetting state after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_in_child)
