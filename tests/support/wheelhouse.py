"""The local wheelhouse: every distribution the suite installs into clean venvs, as wheels.

Tests never reach the package registry (the loopback guard refuses it): `make test`'s install
step runs ``python -m tests.support.wheelhouse`` before pytest, which downloads into
``.venv/wheelhouse`` what those installs need, and tests install from there with pip's own
environment variables (``offline``). Environment variables rather than command-line options so
that documented commands run exactly as written (``pip install . ./collector``) and
``python -m build``'s isolated environment (pip underneath) finds the build backend the same way.

What goes in, derived from the projects wherever possible:

- both pyproject.toml files' ``[build-system] requires`` (``python -m build``, editable installs),
- both projects with the ``demo`` extra (their runtime dependencies; ``make demo`` in a fresh
  tree and the wheel venvs), pip itself (that ``make demo`` upgrades it),
- ``tests/wheelhouse.txt``: what the documented commands install beyond those,
- each file of ``SEPARATE`` in a resolve of its own: peers that pin exact versions the projects'
  ranges exclude (aws-opentelemetry-distro for the ADOT venv).

Distributions published only as sdists are built into wheels here, so an offline install never
needs a build backend the wheelhouse lacks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
#: Written last by ``fill`` (the Makefile's target): a wheelhouse without it is incomplete.
STAMP = WHEELHOUSE / ".filled"
PROJECTS = (ROOT, ROOT / "collector")
#: What tests install in clean venvs beyond the projects, their extras and build backends.
EXTRA = ROOT / "tests" / "wheelhouse.txt"
#: Requirement files resolved on their own (exact pins that conflict with the projects' ranges).
ADOT = ROOT / "collector" / "tests" / "support" / "adot-requirements.txt"
SEPARATE = (ADOT,)
#: Files whose change makes the wheelhouse out of date (the Makefile's prerequisites too).
INPUTS = (*(p / "pyproject.toml" for p in PROJECTS), EXTRA, *SEPARATE, Path(__file__))

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normal(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    assert match, requirement
    return normal(match.group(1))


def read_requirements(path: Path) -> list[str]:
    """A requirements file's lines minus comments and blanks."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _pyproject(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "pyproject.toml").read_text())


def build_requirements() -> list[str]:
    """Both projects' ``[build-system] requires``, each once."""
    found: dict[str, None] = {}
    for project in PROJECTS:
        found.update(dict.fromkeys(_pyproject(project)["build-system"]["requires"]))
    return list(found)


def covered_names() -> set[str]:
    """Names of the distributions an offline install can get: the requirements the wheelhouse
    is filled from, the projects' dependencies and extras included (not their dependencies)."""
    names = {requirement_name(r) for r in [*build_requirements(), "pip"]}
    for project in PROJECTS:
        table = _pyproject(project)["project"]
        names.add(normal(table["name"]))
        requirements = [
            *table["dependencies"],
            *table.get("optional-dependencies", {}).get("demo", []),
        ]
        names.update(requirement_name(r) for r in requirements)
    for path in (EXTRA, *SEPARATE):
        names.update(requirement_name(r) for r in read_requirements(path))
    return names


def problem() -> str | None:
    """Why the wheelhouse cannot serve an install (missing or older than its inputs), or None."""
    if not STAMP.is_file():
        return f"no wheelhouse at {WHEELHOUSE}: run `make test` (its install step fills it)"
    stale = [p.relative_to(ROOT) for p in INPUTS if p.stat().st_mtime > STAMP.stat().st_mtime]
    if stale:
        names = ", ".join(map(str, stale))
        return f"wheelhouse {WHEELHOUSE} is older than {names}: run `make test` to refill it"
    return None


def offline(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with pip confined to the wheelhouse.

    Fails the calling test with one line when the wheelhouse is missing or out of date.
    """
    reason = problem()
    if reason is not None:
        import pytest

        pytest.fail(reason, pytrace=False)
    env = dict(os.environ if env is None else env)
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return env


def _pip(*args: str | Path) -> None:
    command = [sys.executable, "-m", "pip", *map(str, args), "--quiet", "--progress-bar", "off"]
    print("wheelhouse:", " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)


def fill() -> None:
    """(Re)fill the wheelhouse from the registry; the stamp goes last."""
    import shutil

    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    projects = [f"{PROJECTS[0]}[demo]", *PROJECTS[1:]]
    _pip("download", "-d", WHEELHOUSE, "pip", *build_requirements(), *projects, "-r", EXTRA)
    for requirements in SEPARATE:
        _pip("download", "-d", WHEELHOUSE, "-r", requirements)
    for sdist in sorted(WHEELHOUSE.glob("*.tar.gz")) + sorted(WHEELHOUSE.glob("*.zip")):
        _pip("wheel", "--no-deps", "-w", WHEELHOUSE, sdist)
        sdist.unlink()
    STAMP.write_text("".join(f"{p.relative_to(ROOT)}\n" for p in INPUTS))


if __name__ == "__main__":
    fill()
