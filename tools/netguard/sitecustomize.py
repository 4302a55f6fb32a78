"""Puts the loopback guard into every Python process that has this directory on PYTHONPATH.

Python imports ``sitecustomize`` at start-up; the root ``conftest.py`` and the demo put this
directory first on ``PYTHONPATH``, which every subprocess inherits. A ``sitecustomize`` that
this one shadows (a distribution's) is still run afterwards.
"""

from __future__ import annotations

import importlib
import os
import sys

if os.environ.get("LOOPBACK_GUARD_LOG"):
    import loopback_guard

    loopback_guard.install()


def _run_shadowed() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    this = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        if this is not None:
            sys.modules["sitecustomize"] = this


_run_shadowed()
