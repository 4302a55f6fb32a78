"""Loopback-only network guard for the test suite and the demo.

Installed into a Python process, it refuses every attempt to reach an address outside
127.0.0.0/8 and ::1 before the system call runs (so no packet leaves), and appends one line
naming the address and the process (pid and command line) to the file named by
``LOOPBACK_GUARD_LOG``. Whoever started the processes (the root ``conftest.py``, the demo) reads
that file at the end and fails when it has lines.

What it checks: ``connect``, ``connect_ex``, ``sendto`` and ``sendmsg`` on every Python socket
(through the interpreter's audit hook, which runs before the system call and cannot be
bypassed by holding on to the original methods); and the resolver entry points
``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr`` and
``getnameinfo`` (wrapped in ``socket``), because resolving a name the machine does not know
sends a DNS query to the configured nameserver, which is off the machine.

Name policy: numeric addresses need no resolver; ``localhost``, ``*.localhost`` and the names
in ``/etc/hosts`` are answered locally. Names under the reserved ``.invalid`` domain (RFC 6761)
get ``EAI_NONAME`` from the guard itself, which is what a resolver answers for them, minus the
query: tests and the demo use such names to show a DNS failure without leaving the machine.
Every other name is a violation.

There is no allow list: the suite installs from the local wheelhouse that `make test` fills
before pytest starts (tests/support/wheelhouse.py), so no test process needs the registry.

What it cannot see: sockets opened by C extensions (gRPC core, libpq) and non-Python programs
(Chromium is started with background networking disabled instead).

Standard library only, importable by any Python 3.9+ (helper venvs use it too).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

LOG_ENV = "LOOPBACK_GUARD_LOG"
HOSTS_FILE = "/etc/hosts"
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class LoopbackGuardError(PermissionError):
    """A connect or send to an address outside loopback, refused before the system call."""


class LoopbackGuardNameError(socket.gaierror):
    """A name the guard will not let the resolver look up (or that is reserved as invalid)."""


_real: dict[str, Any] = {}
_hosts_names: set[str] | None = None


def _command_line() -> str:
    try:
        with open(f"/proc/{os.getpid()}/cmdline", "rb") as handle:
            parts = handle.read().split(b"\0")
        return " ".join(part.decode("utf-8", "replace") for part in parts if part)
    except OSError:
        return " ".join([sys.executable, *sys.argv])


def record(what: str) -> str:
    """Append one violation line to the log (one ``write`` so lines never interleave)."""
    line = f"pid={os.getpid()} cmd={_command_line()!r}: {what}"
    path = os.environ.get(LOG_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)
    sys.stderr.write(f"loopback guard: {line}\n")
    return line


def _ip(host: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_local_address(host: object) -> bool:
    """Loopback, or the unspecified address (Linux connects that to the local host)."""
    address = _ip(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _hosts() -> set[str]:
    global _hosts_names
    if _hosts_names is None:
        names: set[str] = set()
        try:
            with open(HOSTS_FILE, encoding="utf-8", errors="replace") as handle:
                for raw in handle:
                    fields = raw.split("#", 1)[0].split()
                    names.update(name.lower().rstrip(".") for name in fields[1:])
        except OSError:
            pass
        _hosts_names = names
    return _hosts_names


def _name_verdict(host: object) -> str:
    """ "ok" (no query leaves the machine), "invalid" (reserved: answer NONAME) or "outside"."""
    if host is None:
        return "ok"
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return "ok"
    name = host.strip().lower().rstrip(".")
    if not name or _ip(name) is not None:
        return "ok"
    if name == "localhost" or name.endswith(".localhost") or name in _hosts():
        return "ok"
    if name == "invalid" or name.endswith(".invalid"):
        return "invalid"
    return "outside"


def _check_name(host: object, call: str) -> None:
    verdict = _name_verdict(host)
    if verdict == "invalid":
        # Exactly what the resolver raises for a name that does not exist.
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if verdict == "outside":
        line = record(f"{call}({host!r}): resolving a non-local name sends DNS off the machine")
        raise LoopbackGuardNameError(socket.EAI_NONAME, f"loopback guard: {line}")


def _check_address(sock: socket.socket, address: object, call: str) -> None:
    if sock.family not in _INET_FAMILIES or not isinstance(address, tuple) or not address:
        return
    host = address[0]
    if is_local_address(host):
        return
    if _ip(host) is None:
        # A host name: the C code would resolve it itself, so apply the resolver policy, then
        # check every address it resolves to.
        _check_name(host, call)
        for *_, sockaddr in _real["getaddrinfo"](host, address[1], sock.family):
            if not is_local_address(sockaddr[0]):
                break
        else:
            return
    line = record(f"{call} to {address!r} (outside 127.0.0.0/8 and ::1)")
    raise LoopbackGuardError(errno.EACCES, f"loopback guard: {line}")


_SEND_EVENTS = {"socket.connect": "connect", "socket.sendto": "sendto", "socket.sendmsg": "sendmsg"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """The interpreter calls this before the system call of every connect/connect_ex, sendto
    and sendmsg on any Python socket: raising here stops the call, so nothing is sent."""
    call = _SEND_EVENTS.get(event)
    if call is not None and args[1] is not None:
        _check_address(args[0], args[1], call)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    flags = kwargs.get("flags", args[4] if len(args) > 4 else 0)
    if not flags & socket.AI_NUMERICHOST:  # numeric-only lookups never query a resolver
        _check_name(host, "getaddrinfo")
    return _real["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host: Any) -> Any:
    _check_name(host, "gethostbyname")
    return _real["gethostbyname"](host)


def _gethostbyname_ex(host: Any) -> Any:
    _check_name(host, "gethostbyname_ex")
    return _real["gethostbyname_ex"](host)


def _check_reverse(host: Any, call: str) -> None:
    if _ip(host) is not None and not is_local_address(host):
        line = record(f"{call}({host!r}): a reverse lookup sends DNS off the machine")
        raise LoopbackGuardNameError(socket.EAI_NONAME, f"loopback guard: {line}")
    _check_name(host, call)


def _gethostbyaddr(host: Any) -> Any:
    _check_reverse(host, "gethostbyaddr")
    return _real["gethostbyaddr"](host)


def _getnameinfo(sockaddr: Any, flags: int) -> Any:
    if isinstance(sockaddr, tuple) and sockaddr and not flags & socket.NI_NUMERICHOST:
        _check_reverse(sockaddr[0], "getnameinfo")
    return _real["getnameinfo"](sockaddr, flags)


def install() -> None:
    """Wrap the socket calls in this process (idempotent; forks inherit it)."""
    if _real:
        return
    sys.addaudithook(_audit)  # cannot be removed: forks and threads stay guarded
    for name, function in (
        ("getaddrinfo", _getaddrinfo),
        ("gethostbyname", _gethostbyname),
        ("gethostbyname_ex", _gethostbyname_ex),
        ("gethostbyaddr", _gethostbyaddr),
        ("getnameinfo", _getnameinfo),
    ):
        _real[name] = getattr(socket, name)
        setattr(socket, name, function)


def violations(path: str | os.PathLike[str]) -> list[str]:
    """The lines recorded so far in the log at ``path`` (none when it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def environment(
    log_path: str | os.PathLike[str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables that put the guard into every Python process started with ``base``
    (default: this process's environment) plus them."""
    here = os.path.dirname(os.path.abspath(__file__))
    current = (os.environ if base is None else base).get("PYTHONPATH", "")
    paths = [here, *(p for p in current.split(os.pathsep) if p)]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), LOG_ENV: os.fspath(log_path)}
