"""The wheelhouse `make test` fills covers every install the tests make, and a missing one fails
the test that needs it with one line (tests/support/wheelhouse.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.project.test_docs import APP_REQUIREMENTS, documented_installs
from tests.support import wheelhouse


def _named_packages(command: str) -> list[str]:
    """The registry packages a `pip install` command names (not paths, not options)."""
    words = shlex.split(command)[2:]
    return [w for w in words if not w.startswith(("-", ".", "/"))]


def test_every_package_a_test_installs_is_in_the_wheelhouse_requirements() -> None:
    installed = [p for c in documented_installs() for p in _named_packages(c)]
    installed += APP_REQUIREMENTS + wheelhouse.read_requirements(wheelhouse.ADOT)
    assert installed  # the documented installs were found
    covered = wheelhouse.covered_names()
    missing = sorted({wheelhouse.requirement_name(p) for p in installed} - covered)
    assert not missing, f"add to {wheelhouse.EXTRA.relative_to(wheelhouse.ROOT)}: {missing}"


def test_the_wheelhouse_holds_only_wheels_and_none_of_the_projects() -> None:
    """Wheels only: an offline sdist build could need a backend the wheelhouse lacks. And no
    build of otel-xray itself, which an install could take instead of the tree under test."""
    names = [p.name for p in wheelhouse.WHEELHOUSE.iterdir() if p != wheelhouse.STAMP]
    assert names and all(n.endswith(".whl") for n in names), names
    assert not [n for n in names if n.startswith("otel_xray")], names


def test_a_missing_wheelhouse_fails_with_one_line_naming_make_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheelhouse, "STAMP", tmp_path / "absent" / ".filled")
    with pytest.raises(pytest.fail.Exception) as failure:
        wheelhouse.offline()
    message = str(failure.value)
    assert "\n" not in message and "run `make test`" in message, message


def test_offline_confines_pip_to_the_wheelhouse() -> None:
    env = wheelhouse.offline({"PATH": "/usr/bin"})
    assert env["PIP_NO_INDEX"] == "1"
    assert env["PIP_FIND_LINKS"] == str(wheelhouse.WHEELHOUSE)
    assert env["PATH"] == "/usr/bin"
