"""Start-up problems of the console script: one line on stderr naming the flag, file, path or
port (and the listener), exit 2 for a bad argument, 1 for a runtime failure, no traceback
(docs/collector.md, "Start-up errors"). Each case runs the real console script."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.process import CONSOLE_SCRIPT


def start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The collector with loopback ephemeral ports unless ``args`` say otherwise."""
    defaults = {
        "--udp": "127.0.0.1:0",
        "--tcp": "127.0.0.1:0",
        "--otlp": "127.0.0.1:0",
        "--otlp-http": "127.0.0.1:0",
        "--db": str(tmp_path / "xray.db"),
    }
    command = [str(CONSOLE_SCRIPT), *args]
    for flag, value in defaults.items():
        if flag not in args:
            command += [flag, value]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def one_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.stdout == ""  # no listening line: nothing started
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("otel-xray-collector: ")
    return lines[0]


def failure(tmp_path: Path, code: int, *args: str) -> str:
    """Start with ``args``; check the exit code and that stderr is one line; return it."""
    run = start(tmp_path, *args)
    assert run.returncode == code, run.stderr
    return one_line(run)


@pytest.fixture
def busy_tcp_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


# -- bad arguments: exit 2 ---------------------------------------------------------------------


def test_sampling_rules_that_are_not_json(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"version": 2,\n "rules": [ {"description": }\n]}\n')
    assert failure(tmp_path, 2, "--sampling-rules", str(rules)) == (
        f"otel-xray-collector: --sampling-rules {rules}: invalid JSON at line 2 column 29:"
        " Expecting value"
    )


def test_sampling_rules_that_break_the_rules_format(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"version": 2, "default": {"fixed_target": -1, "rate": 7}}')
    assert failure(tmp_path, 2, "--sampling-rules", str(rules)) == (
        f"otel-xray-collector: --sampling-rules {rules}: default.fixed_target: -1 is negative"
    )


def test_sampling_rules_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert failure(tmp_path, 2, "--sampling-rules", str(missing)) == (
        f"otel-xray-collector: --sampling-rules {missing}: cannot read sampling rules:"
        " No such file or directory"
    )


def test_udp_garbage_is_refused_without_a_dns_lookup(tmp_path: Path) -> None:
    assert failure(tmp_path, 2, "--udp", "garbage") == (
        "otel-xray-collector: UDP ingest listener (--udp garbage): 'garbage' is not an IP"
        " address; listen on an address such as 127.0.0.1, [::1], 0.0.0.0 or localhost"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--udp", "127.0.0.1:notaport"),
            "argument --udp: invalid port 'notaport' in '127.0.0.1:notaport' (see --help)",
        ),
        (
            ("--tcp", "127.0.0.1:70000"),
            "argument --tcp: invalid port '70000' in '127.0.0.1:70000' (see --help)",
        ),
        (
            ("--retention-hours", "three"),
            "argument --retention-hours: invalid float value: 'three' (see --help)",
        ),
        (("--no-store",), "--no-store: needs --forward-endpoint"),
    ],
)
def test_unparseable_values(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    assert failure(tmp_path, 2, *args) == f"otel-xray-collector: {expected}"


def test_otlp_host_that_is_not_an_address(tmp_path: Path) -> None:
    assert failure(tmp_path, 2, "--otlp", "collector.invalid:4317").startswith(
        "otel-xray-collector: OTLP gRPC listener (--otlp collector.invalid:4317): "
        "'collector.invalid' is not an IP address"
    )


def test_db_in_a_directory_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    db = blocker / "xray.db"
    assert failure(tmp_path, 2, "--db", str(db)) == (
        f"otel-xray-collector: --db {db}: cannot open the store: {blocker}: file exists"
    )


def test_db_path_that_is_a_directory(tmp_path: Path) -> None:
    assert failure(tmp_path, 2, "--db", str(tmp_path)) == (
        f"otel-xray-collector: --db {tmp_path}: cannot open the store: unable to open database file"
    )


def test_db_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("these are my notes, not a database\n" * 20)
    assert failure(tmp_path, 2, "--db", str(db)) == (
        f"otel-xray-collector: --db {db}: cannot open the store: file is not a database"
    )


# -- runtime failures: exit 1 ------------------------------------------------------------------


def test_udp_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert failure(tmp_path, 1, "--udp", f"127.0.0.1:{port}") == (
            f"otel-xray-collector: UDP ingest listener (--udp 127.0.0.1:{port}): cannot listen:"
            " address already in use (another process is listening there)"
        )


@pytest.mark.parametrize(
    ("flag", "listener"),
    [("--tcp", "HTTP API"), ("--otlp", "OTLP gRPC"), ("--otlp-http", "OTLP HTTP")],
    ids=["http", "otlp", "otlp-http"],
)
def test_tcp_port_in_use(tmp_path: Path, busy_tcp_port: int, flag: str, listener: str) -> None:
    assert failure(tmp_path, 1, flag, f"127.0.0.1:{busy_tcp_port}") == (
        f"otel-xray-collector: {listener} listener ({flag} 127.0.0.1:{busy_tcp_port}): cannot"
        " listen: address already in use (another process is listening there)"
    )


def test_address_not_on_this_machine(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: bind, not a packet, fails.
    assert failure(tmp_path, 1, "--udp", "192.0.2.1:0") == (
        "otel-xray-collector: UDP ingest listener (--udp 192.0.2.1:0): cannot listen:"
        " address not available on this machine"
    )


def test_debug_log_level_shows_the_cause(tmp_path: Path, busy_tcp_port: int) -> None:
    run = start(tmp_path, "--tcp", f"127.0.0.1:{busy_tcp_port}", "--log-level", "debug")
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "start-up failed" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("otel-xray-collector: HTTP API listener")


def test_a_database_password_is_not_printed(tmp_path: Path) -> None:
    # A PostgreSQL URL whose server is not there: a runtime failure; the line hides the password.
    with socket.socket() as probe:  # held, never listening: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        line = failure(tmp_path, 1, "--db", f"postgresql://xray:s3cret@127.0.0.1:{port}/xray")
    assert "s3cret" not in line
