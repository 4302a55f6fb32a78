"""Fixtures for checks that treat the repository as a user does: a copy of the tree, the
distributions `python -m build` makes from it, and clean venvs with those installed.

Everything is rebuilt per test session in temporary directories: a cached wheel or venv could
hide a broken build. What those builds and installs need from the registry (the build backend,
the dependencies) comes from the wheelhouse `make test` fills before pytest
(tests/support/wheelhouse.py): no test reaches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.wheelhouse import offline

ROOT = Path(__file__).resolve().parents[2]
# What a fresh clone does not have: local venvs, caches and build output.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", ".demo", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules", "test-output",
)  # fmt: skip
INSTALL_TIMEOUT = 600


def run(
    command: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = INSTALL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment with this venv first on PATH, as after `source bin/activate`."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        env.update(extra)
        return env


def make_venv(path: Path) -> Venv:
    venv.create(path, with_pip=True)
    return Venv(path)


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a fresh clone would have it (no venvs, no build output)."""
    tree = tmp_path_factory.mktemp("clone") / "otel-xray"
    shutil.copytree(ROOT, tree, ignore=NOT_IN_A_CLONE, symlinks=True)
    return tree


@pytest.fixture(scope="session")
def dists(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Wheels and sdists of both distributions, by `python -m build` (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    for project in (source_tree, source_tree / "collector"):
        run([sys.executable, "-m", "build", "--outdir", out, project], env=offline())
    return sorted(out.iterdir())


@pytest.fixture(scope="session")
def wheel_venv(dists: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A clean venv with both built wheels installed (not editable), as `pip install` would."""
    env = make_venv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    wheels = [d for d in dists if d.suffix == ".whl"]
    run([env.python, "-m", "pip", "install", "--quiet", *wheels], env=offline())
    return env
