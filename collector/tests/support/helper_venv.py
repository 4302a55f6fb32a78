"""Separate virtual environments for peers that pin exact versions of what we also use.

AWS's ``aws-opentelemetry-distro`` pins exact OpenTelemetry versions; installed into the test
venv it would fight the project's own ranges. So it gets its own venv under the worktree's
``.venv`` directory (``.venv/<name>``), made with the interpreter running the tests and filled
offline from the wheelhouse ``make test`` fills (tests/support/wheelhouse.py) by the test venv's
pip (``pip --python``: no pip bootstrap in the helper venv). It is reused while a marker says it
holds the same requirements for the same interpreter; anything else (a different Python, changed
requirements, a half-built venv from an interrupted run) rebuilds it. A file lock makes concurrent
sessions wait for one build.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.wheelhouse import offline

VENV_ROOT = Path(__file__).resolve().parents[3] / ".venv"
MARKER = "otel-xray-helper.json"
INSTALL_TIMEOUT_S = 900


def helper_venv(name: str, requirements: list[str]) -> Path:
    """The ``python`` of ``.venv/<name>`` with ``requirements`` installed (built on first use)."""
    env = offline()  # fails the test with one line when the wheelhouse is missing
    target = VENV_ROOT / name
    python = target / "bin" / "python"
    wanted = {
        "python": sys.version,
        "base": getattr(sys, "_base_executable", sys.executable),
        "requirements": requirements,
    }
    VENV_ROOT.mkdir(exist_ok=True)
    with open(VENV_ROOT / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _matches(target / MARKER, wanted) and python.exists():
            return python
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(target)],
            check=True,
            timeout=120,
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *requirements,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise RuntimeError(
                f"installing {requirements} into {target} failed:\n{result.stderr[-4000:]}"
            )
        (target / MARKER).write_text(json.dumps(wanted, indent=2))
    return python


def _matches(marker: Path, wanted: dict[str, object]) -> bool:
    try:
        return bool(json.loads(marker.read_text()) == wanted)
    except (OSError, ValueError):
        return False
