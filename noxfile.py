"""The library's tests against both ends of the OpenTelemetry range pyproject.toml allows.

The translator reads span internals of the SDK (``_attributes``, ``_events``, ``_status``, ...),
so the floor of ``opentelemetry-sdk`` is a claim that needs a test, not a guess. ``sdk_oldest``
pins every ``opentelemetry-*`` requirement (API, SDK, sdk-extension-aws, the instrumentations)
at the lower bound written in pyproject.toml; ``sdk_newest`` lets pip take the newest the ranges
allow. Both run tests/ minus the parts that need the collector or only check repository files.
Run through ``make test-sdk-range`` (``.ci/run`` calls it after ``make test``).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# Test tools the library's tests import, taken with their ranges from the `test` extra (the rest
# of that extra serves the collector, browser and lint suites). The demo extra brings Flask,
# requests, boto3, moto and the instrumentations the end-to-end tests run.
LIBRARY_TEST_TOOLS = {
    "pytest",
    "pytest-timeout",
    "jsonschema",
    "aws-xray-sdk",
    "opentelemetry-propagator-aws-xray",
    "cryptography",
    "orjson",
    "hypothesis",  # the root conftest.py configures its profiles
}
# tests/ parts outside the library: the scenario runs the collector, examples/ and project/ check
# repository files (manifests, Dockerfiles, docs, packaging).
NOT_LIBRARY = ["tests/scenario", "tests/examples", "tests/project"]

# One line in the log naming the versions this session really ran against.
PRINT_VERSIONS = (
    "import importlib.metadata as m; print('opentelemetry versions:', *sorted("
    "f'{d.name}=={d.version}' for d in m.distributions() if d.name.startswith('opentelemetry-')))"
)

nox.options.error_on_missing_interpreters = True

_NAME = re.compile(r"^[A-Za-z0-9._-]+")


def _name(requirement: str) -> str:
    match = _NAME.match(requirement)
    assert match, requirement
    return match.group(0).lower()


def _test_tools() -> list[str]:
    return [r for r in PROJECT["optional-dependencies"]["test"] if _name(r) in LIBRARY_TEST_TOOLS]


def _requirements() -> list[str]:
    """The library's own dependencies, the demo extra and the library's test tools."""
    return [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["demo"], *_test_tools()]


def _floor_pins() -> list[str]:
    """`name==floor` for every opentelemetry-* requirement with a lower bound."""
    pins: dict[str, str] = {}
    for requirement in _requirements():
        name = _name(requirement)
        floor = re.search(r">=\s*([^,;\s]+)", requirement)
        if name.startswith("opentelemetry-") and floor:
            pins[name] = f"{name}=={floor.group(1)}"
    return sorted(pins.values())


def _run_library_tests(session: nox.Session, pins: list[str]) -> None:
    # The project itself as a built wheel (not editable), with the pins in the same resolve.
    session.install(".[demo]", *_test_tools(), *pins)
    session.run("python", "-c", PRINT_VERSIONS)
    ignores = [f"--ignore={path}" for path in NOT_LIBRARY]
    session.run("python", "-m", "pytest", "tests", *ignores, "-q", "-p", "no:cacheprovider")


@nox.session(python=sys.executable)
def sdk_oldest(session: nox.Session) -> None:
    """tests/ with every opentelemetry-* package at the floor pyproject.toml states."""
    _run_library_tests(session, _floor_pins())


@nox.session(python=sys.executable)
def sdk_newest(session: nox.Session) -> None:
    """tests/ with the newest opentelemetry-* packages the ranges allow."""
    _run_library_tests(session, [])
