"""The suite-wide loopback guard (tools/netguard) catches subprocesses before a packet leaves.

Each probe runs in a real subprocess started the way tests start apps (the session's
environment), but with its own violations log so that the deliberate violations here do not
fail the session. The addresses are from the documentation ranges (RFC 5737, RFC 3849).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import loopback_guard

ROOT = Path(__file__).resolve().parents[1]


def run_guarded(code: str, log: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, loopback_guard.LOG_ENV: str(log), **extra_env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_session_exports_the_guard_and_disables_the_ec2_probe() -> None:
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ[loopback_guard.LOG_ENV]
    assert str(ROOT / "tools" / "netguard") in os.environ["PYTHONPATH"].split(os.pathsep)


def test_udp_connect_outside_is_refused_before_the_system_call(tmp_path: Path) -> None:
    log = tmp_path / "violations.log"
    result = run_guarded(
        """
        import errno, socket, sys
        import loopback_guard
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.connect(("192.0.2.1", 2000))
        except loopback_guard.LoopbackGuardError:
            print("refused")
        try:
            sock.getpeername()
        except OSError as exc:
            # ENOTCONN: the connect system call never ran.
            print("not connected" if exc.errno == errno.ENOTCONN else exc)
        print("pid", __import__("os").getpid())
        """,
        log,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert out[:2] == ["refused", "not connected"]
    pid = out[2].split()[1]
    (line,) = loopback_guard.violations(log)
    assert f"pid={pid}" in line
    assert "-c" in line and "sock.connect" in line  # the command line of the process
    assert "connect to ('192.0.2.1', 2000)" in line


def test_udp_sendto_outside_is_refused_before_any_datagram(tmp_path: Path) -> None:
    log = tmp_path / "violations.log"
    result = run_guarded(
        """
        import socket
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.sendto(b"{}", ("2001:db8::1", 2000))
        except PermissionError as exc:
            print("refused")
        # A real sendto binds the socket to an ephemeral port first; it is still unbound.
        print(sock.getsockname()[1])
        """,
        log,
    )
    assert result.stdout.split() == ["refused", "0"], result.stderr
    (line,) = loopback_guard.violations(log)
    assert "sendto to ('2001:db8::1', 2000)" in line


def test_tcp_and_dns_outside_are_caught_and_loopback_is_not(tmp_path: Path) -> None:
    log = tmp_path / "violations.log"
    result = run_guarded(
        """
        import socket, urllib.request
        for call in (
            lambda: socket.create_connection(("198.51.100.7", 80), timeout=5),
            lambda: socket.getaddrinfo("example.com", 443),
            lambda: urllib.request.urlopen("http://169.254.169.254/latest/api/token"),
        ):
            try:
                call()
                print("passed")
            except OSError:
                print("refused")
        # Loopback in every spelling, and AF_UNIX, stay allowed.
        server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        server.bind(("::1", 0))
        client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        client.connect(("::1", server.getsockname()[1]))
        client.send(b"x")
        v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v4.sendto(b"x", ("127.0.0.2", 9))
        socket.getaddrinfo("localhost", 80)
        a, b = socket.socketpair()
        a.send(b"y")
        print(server.recv(1).decode(), b.recv(1).decode())
        """,
        log,
    )
    assert result.stdout.split() == ["refused", "refused", "refused", "x", "y"], result.stderr
    lines = loopback_guard.violations(log)
    assert len(lines) == 3
    assert "('198.51.100.7', 80)" in lines[0]
    assert "getaddrinfo('example.com')" in lines[1]
    assert "169.254.169.254" in lines[2]


def test_reserved_and_numeric_only_lookups_are_not_violations(tmp_path: Path) -> None:
    """The demo's DNS failure (back.invalid) is answered by the guard, as a resolver would."""
    log = tmp_path / "violations.log"
    result = run_guarded(
        """
        import socket, requests
        try:
            socket.getaddrinfo("back.invalid", 8080)
        except socket.gaierror as exc:
            print(exc.errno == socket.EAI_NONAME)
        try:
            requests.get("http://back.invalid:8080/", timeout=5)
        except requests.ConnectionError as exc:
            print("Name or service not known" in str(exc))
        try:  # a numeric-only lookup of a name never reaches a resolver
            socket.getaddrinfo("xray-service", 2000, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            print("numeric-only")
        """,
        log,
    )
    assert result.stdout.split() == ["True", "True", "numeric-only"], result.stderr
    assert loopback_guard.violations(log) == []


def test_a_violation_fails_the_pytest_session_naming_it(tmp_path: Path) -> None:
    """Run a pytest session (with the guard plugin, its own log) whose test reaches outside."""
    (tmp_path / "test_outside.py").write_text(
        textwrap.dedent(
            """
            import socket, subprocess, sys

            def test_a_subprocess_reaches_outside():
                # The app swallows the error, as apps do; the session must fail anyway.
                subprocess.run([sys.executable, "-c",
                    "import socket\\n"
                    "try: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                    ".sendto(b'x', ('203.0.113.9', 53))\\n"
                    "except OSError: pass"], check=True)
            """
        )
    )
    env = {**os.environ, loopback_guard.LOG_ENV: ""}  # "": the inner session keeps its own log
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pytest_loopback_guard", "-p", "no:cacheprovider"]
        + ["-q", str(tmp_path / "test_outside.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "loopback guard: traffic outside loopback" in result.stdout
    assert "sendto to ('203.0.113.9', 53)" in result.stdout


def test_default_ec2_probe_is_caught_unless_disabled_as_the_suite_does(tmp_path: Path) -> None:
    """configure() with default detectors on a machine whose /sys cannot tell (a container)."""
    code = """
        from otel_xray import configure
        provider = configure("probe", batch=False, set_global=False)
        print(provider.resource.attributes.get("cloud.platform"))
        provider.shutdown()
        """
    base = {k: v for k, v in os.environ.items() if k not in ("AWS_EC2_METADATA_DISABLED",)}
    no_sysfs = {"OTEL_XRAY_SYSFS_ROOT": str(tmp_path / "no-sys"), "AWS_XRAY_SDK_ENABLED": "true"}
    probing_log = tmp_path / "probing.log"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**base, **no_sysfs, loopback_guard.LOG_ENV: str(probing_log)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None"]  # the app goes on, without EC2 attributes
    assert any("169.254.169.254" in line for line in loopback_guard.violations(probing_log))

    disabled_log = tmp_path / "disabled.log"
    result = run_guarded(code, disabled_log, **no_sysfs)  # the session's AWS_EC2_METADATA_DISABLED
    assert result.returncode == 0, result.stderr
    assert loopback_guard.violations(disabled_log) == []


def test_subprocesses_with_an_environment_of_their_own_are_guarded_too() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; print('loopback_guard' in sys.modules)"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["True"], result.stderr
