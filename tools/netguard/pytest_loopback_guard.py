"""pytest plugin: the loopback guard for the whole session and every process it starts.

At configure time it installs the guard in the pytest process and exports the variables that
install it in every Python subprocess (``PYTHONPATH`` with this directory, the violations log),
plus ``AWS_EC2_METADATA_DISABLED=true`` so no EC2 detector probes 169.254.169.254 (tests that
exercise the detector set their own loopback metadata server). At the end, any recorded line
fails the run and is printed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
