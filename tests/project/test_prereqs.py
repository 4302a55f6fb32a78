"""scripts/prereqs.sh: the one place that knows which system packages the suite needs.

The missing-package path is exercised for real by running the script with a PATH that hides
Chromium (and apt-get, so nothing gets installed): the machine's packages stay as they are.
"""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prereqs.sh"


def run(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), *args],
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def table() -> list[tuple[str, str, str]]:
    """The script's own package -> program table (`--table`)."""
    rows = run("/usr/bin:/bin", "--table").stdout.splitlines()
    return [(row.split()[0], row.split()[1], " ".join(row.split()[2:])) for row in rows]


def hidden_by_an_empty_path() -> list[str]:
    """The packages the script cannot find with nothing on PATH: those it looks for only there."""
    return [
        package
        for package, program, extra in table()
        if not any(Path(p, program).exists() for d in extra.split() for p in glob.glob(d))
    ]


def test_the_table_names_chromium_and_postgresql() -> None:
    assert {("chromium", "chromium"), ("postgresql", "initdb")} <= {(p, c) for p, c, _ in table()}
    assert "chromium" in hidden_by_an_empty_path()
    assert "postgresql" not in hidden_by_an_empty_path()  # found in /usr/lib/postgresql/*/bin


def test_everything_present_passes_silently() -> None:
    result = run("/usr/local/bin:/usr/bin:/bin", "--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_missing_chromium_is_one_line_naming_it_and_the_install_command(tmp_path: Path) -> None:
    # An empty directory as PATH: no chromium, and no apt-get either, so the script must report
    # instead of installing. PostgreSQL is still found in /usr/lib/postgresql/*/bin, off PATH.
    result = run(str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    missing = hidden_by_an_empty_path()
    assert result.stderr.splitlines() == [
        f"prereqs: missing {', '.join(missing)} (needed by make test); install with: "
        f"apt-get install -y {' '.join(missing)}"
    ]


def test_check_mode_reports_without_installing(tmp_path: Path) -> None:
    # --check never runs apt-get, even as root with apt-get on PATH: give it a fake apt-get that
    # would leave a mark, and hide chromium.
    marker = tmp_path / "apt-get-ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f"#!/bin/sh\necho ran > {marker}\n")
    fake.chmod(0o755)
    result = run(str(bin_dir), "--check")
    assert result.returncode == 1
    assert "missing chromium" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not marker.exists()


def test_make_test_runs_the_script_before_any_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert test_rule.split(":", 1)[1].split()[0] == "prereqs"
    assert "\tscripts/prereqs.sh\n" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test\n" in ci
    assert "apt-get" not in ci  # one script knows the packages; CI goes through make test


def test_as_root_with_apt_it_installs_the_missing_package_noninteractively(tmp_path: Path) -> None:
    # A stand-in apt-get that records its calls and installs nothing, so the script ends by
    # reporting what is still missing. Without root the script must not call apt-get at all
    # and must prefix the command with sudo.
    log = tmp_path / "apt-get.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {log}\n')
    fake.chmod(0o755)
    result = run(str(bin_dir))
    assert result.returncode == 1
    missing = hidden_by_an_empty_path()
    names, words = ", ".join(missing), " ".join(missing)
    if os.geteuid() == 0:
        assert log.read_text().splitlines() == [
            "noninteractive update -qq",
            f"noninteractive install -y -qq {words}",
        ]
        assert result.stderr.splitlines() == [
            f"prereqs: installing {words} (apt-get)",
            f"prereqs: missing {names} (needed by make test); install with: apt-get install -y "
            f"{words}",
        ]
    else:
        assert not log.exists()
        assert result.stderr.splitlines() == [
            f"prereqs: missing {names} (needed by make test); install with: sudo apt-get install "
            f"-y {words}"
        ]
