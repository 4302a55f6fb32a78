"""Start-up errors: one line naming the flag, file or port, and an exit code that says whose
fault it is.

The rule (docs/collector.md): **2** when the command line is wrong, or a file it names is
(a value that does not parse, a listen host that is not an address of this machine, a rules
file that is missing or invalid, a ``--db`` path that cannot be opened): changing the command
fixes it. **1** when the machine refuses at run time what the command asks (a port another
process holds, an address not available now, no permission to bind): the same command may work
later. Anything raised anywhere during start-up as :class:`StartupError` is printed once by the
CLI; code that adds a flag or a listener uses :func:`argument` and :func:`listener` and gets the
same treatment.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager

BAD_ARGUMENT = 2
RUNTIME_FAILURE = 1

#: Listener names as the messages (and docs/collector.md) say them.
UDP_INGEST = "UDP ingest"
HTTP_API = "HTTP API"
OTLP_GRPC = "OTLP gRPC"
OTLP_HTTP = "OTLP HTTP"

_PLAIN_ERRORS = {
    errno.EADDRINUSE: "address already in use (another process is listening there)",
    errno.EADDRNOTAVAIL: "address not available on this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


class StartupError(Exception):
    """A start-up problem: ``subject`` (a flag and its value, a listener) and what is wrong."""

    def __init__(self, subject: str, problem: str, code: int = BAD_ARGUMENT) -> None:
        super().__init__(f"{subject}: {problem}")
        self.subject = subject
        self.problem = problem
        self.code = code

    def line(self, program: str = "otel-xray-collector") -> str:
        """The one line printed on stderr (no newline inside, whatever the cause said)."""
        return " ".join(f"{program}: {self}".split())


def redacted(value: str) -> str:
    """``value`` fit for a message: a URL's password (``postgresql://u:secret@h/db``) hidden."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.password is None:
        return value
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe(exc: BaseException) -> str:
    """A short, single-line reason for ``exc`` (no errno numbers, no class paths)."""
    if isinstance(exc, OSError) and exc.errno in _PLAIN_ERRORS:
        return _PLAIN_ERRORS[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[0].lower() + exc.strerror[1:]
        return f"{exc.filename}: {reason}" if exc.filename else reason
    return str(exc) or type(exc).__name__


@contextmanager
def argument(
    flag: str,
    value: object,
    *,
    doing: str = "",
    catch: tuple[type[BaseException], ...] = (Exception,),
) -> Iterator[None]:
    """Whatever ``catch`` raises inside becomes a bad-argument error about ``flag value``
    (``doing``, e.g. "cannot open the store", says what failed when the cause does not)."""
    try:
        yield
    except StartupError:
        raise
    except catch as exc:
        reason = describe(exc)
        prefix = f"{value}: "
        if reason.startswith(prefix):  # the cause named the file already
            reason = reason[len(prefix) :]
        problem = f"{doing}: {reason}" if doing else reason
        raise StartupError(f"{flag} {value}", problem, BAD_ARGUMENT) from exc


@contextmanager
def listener(name: str, flag: str, address: str) -> Iterator[None]:
    """Binding ``name`` on ``address`` (given by ``flag``): a value that does not parse is a bad
    argument, a refusal by the operating system a runtime failure."""
    subject = f"{name} listener ({flag} {address})"
    try:
        yield
    except StartupError:
        raise
    except (ValueError, socket.gaierror, UnicodeError) as exc:
        raise StartupError(subject, describe(exc), BAD_ARGUMENT) from exc
    except OSError as exc:
        raise StartupError(subject, f"cannot listen: {describe(exc)}", RUNTIME_FAILURE) from exc


def check_listen_host(host: str) -> None:
    """A listen host must be an IP address of this machine's kind or ``localhost``.

    A host name would be looked up in DNS at start-up (a query leaving the machine, and a
    listener whose address depends on the resolver): refused as a bad argument instead.
    """
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(
            f"{host!r} is not an IP address; listen on an address such as 127.0.0.1, "
            "[::1], 0.0.0.0 or localhost"
        ) from None


def probe_tcp_port(host: str, port: int) -> None:
    """Raise the ``OSError`` a TCP listener on ``(host, port)`` would meet, before a library
    that reports bind failures as log lines (gRPC) tries it."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        probe.bind((host, port))


def listen_address(value: str, default_port: int) -> tuple[str, int]:
    """``parse_address`` for a listener, which also needs an IP address (or localhost)."""
    from .config import parse_address

    host, port = parse_address(value, default_port)
    check_listen_host(host)
    return host, port
