"""pytest plugin: the loopback guard for the whole session and every process it starts.

At configure time it installs the guard in the pytest process and exports the variables that
install it in every Python subprocess (``PYTHONPATH`` with this directory, the violations log;
added to environments that tests pass explicitly too),
plus ``AWS_EC2_METADATA_DISABLED=true`` so no EC2 detector probes 169.254.169.254 (tests that
exercise the detector set their own loopback metadata server). At the end, any recorded line
fails the run and is printed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import loopback_guard
import pytest

_log: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _log
    inherited = os.environ.get(loopback_guard.LOG_ENV)
    if inherited:
        _log = Path(inherited)  # a session inside a guarded run: report into the same log
    else:
        _log = Path(tempfile.mkdtemp(prefix="loopback-guard-")) / "violations.log"
    os.environ.update(loopback_guard.environment(_log))
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    loopback_guard.install()
    _guard_explicit_environments(_log)


def _guard_explicit_environments(log: Path) -> None:
    """Subprocesses started with an environment of their own (``env={"PATH": ...}``) get the
    guard too. A test that wants a process unguarded, or guarded into another log, says so by
    setting ``LOOPBACK_GUARD_LOG`` in that environment (to ``""`` or to its own file)."""
    original = subprocess.Popen.__init__
    if getattr(original, "_loopback_guard", False):
        return

    def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        env = kwargs.get("env")
        if env is not None and loopback_guard.LOG_ENV not in env:
            kwargs["env"] = {**env, **loopback_guard.environment(log, env)}
        original(self, *args, **kwargs)

    __init__._loopback_guard = True  # type: ignore[attr-defined]
    subprocess.Popen.__init__ = __init__  # type: ignore[method-assign]


def _violations() -> list[str]:
    return loopback_guard.violations(_log) if _log is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _violations():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = _violations()
    if lines:
        terminalreporter.section("loopback guard: traffic outside loopback", red=True, bold=True)
        for line in lines:
            terminalreporter.line(line, red=True)
        terminalreporter.line(f"({len(lines)} violation(s), log: {_log})", red=True)
