"""Resolving the daemon's address and sending datagrams to it.

The part of talking to the daemon with state, threads and sockets; *where* the daemon is and
how documents are framed is :mod:`otel_xray.wire`. Logs under ``otel_xray.daemon``.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from otel_xray import fork
from otel_xray.logs import RateLimitedLog
from otel_xray.wire import Endpoint

SocketAddress = tuple[Any, ...]
#: A resolved UDP destination: (address family, socket address to connect to).
Destination = tuple[int, SocketAddress]
Resolve = Callable[[str, int], Destination]
Spawn = Callable[[Callable[[], None]], None]

#: How long a resolved host name is trusted, and the least time between two resolutions.
REFRESH_INTERVAL_S = 60.0
#: After a send error the name is re-resolved (in the background) at most this often.
ERROR_REFRESH_INTERVAL_S = 5.0

_logger = logging.getLogger("otel_xray.daemon")


def resolve_udp(host: str, port: int) -> Destination:
    """Resolve ``host`` for UDP, preferring IPv4 like the daemon's default listener does.

    ``localhost`` commonly resolves to both ``::1`` and ``127.0.0.1`` while daemons bind
    ``127.0.0.1:2000`` or ``0.0.0.0:2000``: taking the first IPv6 answer would lose everything.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
    if not infos:
        raise OSError(f"no address for {host}")
    best = min(infos, key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return int(best[0]), tuple(best[4])


def numeric_destination(endpoint: Endpoint) -> Destination | None:
    """The destination of an IP-literal endpoint, found without any DNS; None for names."""
    try:
        infos = socket.getaddrinfo(
            endpoint.host, endpoint.port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError):
        return None
    return int(infos[0][0]), tuple(infos[0][4])


def _spawn_daemon_thread(target: Callable[[], None]) -> None:
    threading.Thread(target=target, name="otel-xray-resolve", daemon=True).start()


class AddressResolver:
    """Where datagrams go, resolving a host name rarely and never per span.

    IP literals never touch DNS. A host name (the ``xray-service:2000`` Kubernetes service) is
    resolved when first needed on the exporting thread (the batch processor's worker, not the
    application), then trusted for ``refresh_interval`` seconds. Refreshes — periodic, or after a
    send error — run in a background thread while sends keep using the known address, so a slow
    resolver never stalls export. With no address at all, a new synchronous attempt is made at
    most once per ``refresh_interval``; until then callers get ``None`` immediately.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        refresh_interval: float = REFRESH_INTERVAL_S,
        error_refresh_interval: float = ERROR_REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        resolve: Resolve = resolve_udp,
        spawn: Spawn = _spawn_daemon_thread,
    ) -> None:
        self.endpoint = endpoint
        self._refresh_interval = refresh_interval
        self._error_refresh_interval = error_refresh_interval
        self._clock = clock
        self._resolve = resolve
        self._spawn = spawn
        self._fixed = numeric_destination(endpoint)
        self._current: Destination | None = self._fixed
        self._resolved_at = 0.0
        self._attempted_at: float | None = None
        self._stale = False
        self._refreshing = False
        self._lock = threading.Lock()
        self._log = RateLimitedLog(_logger, refresh_interval, clock)
        #: Number of resolution attempts (synchronous and background), for tests and stats.
        self.resolutions = 0
        self.last_error: BaseException | None = None

    @property
    def is_literal(self) -> bool:
        return self._fixed is not None

    def destination(self) -> Destination | None:
        """The address to send to now, or None when the name cannot be resolved."""
        if self._fixed is not None:
            return self._fixed
        now = self._clock()
        with self._lock:
            current = self._current
            attempted = self._attempted_at
            if current is None:
                if attempted is not None and now - attempted < self._refresh_interval:
                    return None
                self._attempted_at = now
                # Holding the lock makes concurrent first exports wait for this one answer
                # instead of each resolving (or each giving up).
                return self._resolve_locked()
            assert attempted is not None
            since_attempt = now - attempted
            due = (self._stale and since_attempt >= self._error_refresh_interval) or (
                now - self._resolved_at >= self._refresh_interval
                and since_attempt >= self._refresh_interval
            )
            start_refresh = due and not self._refreshing
            if start_refresh:
                self._refreshing = True
                self._attempted_at = now
        if start_refresh:
            try:
                self._spawn(self._refresh)
            except RuntimeError:  # no new threads at interpreter shutdown: keep the address
                with self._lock:
                    self._refreshing = False
        return current

    def invalidate(self) -> None:
        """A send failed: the name may point elsewhere now (a rescheduled daemon pod)."""
        if self._fixed is None:
            with self._lock:
                self._stale = True

    def reinit_after_fork(self) -> None:
        # A refresh thread of the parent does not exist in the child: forget it was running.
        self._lock = threading.Lock()
        self._refreshing = False
        self._log.reinit_after_fork()

    def _resolve_locked(self) -> Destination | None:
        self.resolutions += 1
        try:
            found = self._resolve(self.endpoint.host, self.endpoint.port)
        except (OSError, UnicodeError) as exc:
            self.last_error = exc
            self._log.warning(
                "Cannot resolve X-Ray daemon address %s: %s; spans are dropped until it resolves"
                " (next attempt in %.0f s)",
                self.endpoint,
                exc,
                self._refresh_interval,
            )
            return None
        self._current = found
        self._resolved_at = self._clock()
        self._stale = False
        return found

    def _refresh(self) -> None:
        self.resolutions += 1
        try:
            found: Destination | None = self._resolve(self.endpoint.host, self.endpoint.port)
        except (OSError, UnicodeError) as exc:
            found = None
            self.last_error = exc
            self._log.warning(
                "Cannot re-resolve X-Ray daemon address %s: %s; still sending to %s",
                self.endpoint,
                exc,
                self._current[1] if self._current else None,
            )
        with self._lock:
            if found is not None:
                if found != self._current:
                    _logger.info("X-Ray daemon %s now resolves to %s", self.endpoint, found[1])
                self._current = found
                self._resolved_at = self._clock()
                self._stale = False
            self._refreshing = False


class UdpTransport:
    """A non-blocking UDP socket connected to the daemon, safe across threads and fork().

    Connected, so the kernel fixes the peer once: each send skips the address lookup, replies
    from any other host are dropped by the kernel, and nothing stays bound to a wildcard
    address waiting for strangers. When the resolver hands out a new address (a rescheduled
    daemon pod), a new socket is connected to it and the old one closed. A connected UDP
    socket reports the ICMP "port unreachable" of a stopped daemon as ``ECONNREFUSED`` on a
    later send: :class:`Sender` counts that as a send error and tries the datagram once more.
    Non-blocking because a full socket buffer must cost a dropped datagram, never a stalled
    application. After ``fork()`` (gunicorn pre-fork workers, multiprocessing) the child
    forgets the parent's socket (:mod:`otel_xray.fork`) and opens its own on first use.
    """

    def __init__(self, endpoint: Endpoint, resolver: AddressResolver | None = None) -> None:
        self.endpoint = endpoint
        self.resolver = resolver if resolver is not None else AddressResolver(endpoint)
        self._sock: socket.socket | None = None
        self._peer: Destination | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._log = RateLimitedLog(_logger)
        fork.register(self)

    def sender(self) -> Sender | None:
        """A :class:`Sender` for the datagrams of one export call, or None when nothing can be
        sent now (closed, no address, no socket): the address and socket are looked up once
        per call rather than once per datagram."""
        if self._closed:
            return None
        destination = self.resolver.destination()
        if destination is None:
            return None
        sock = self._socket(destination)
        if sock is None:
            return None
        return Sender(self, sock, destination[1])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock, self._peer = self._sock, None, None
        if sock is not None:
            sock.close()

    def _socket(self, destination: Destination) -> socket.socket | None:
        """The socket connected to ``destination``, reconnecting when the address changed."""
        sock = self._sock
        if sock is not None and self._peer == destination:
            return sock
        with self._lock:
            if self._closed:
                return None
            if self._sock is not None and self._peer == destination:
                return self._sock
            family, address = destination
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            except OSError as exc:
                self._log.warning("Cannot open a UDP socket for the X-Ray daemon: %s", exc)
                return None
            try:
                sock.setblocking(False)
                sock.connect(address)  # UDP: no packet, only the route and the peer are fixed
            except OSError as exc:
                sock.close()
                self.resolver.invalidate()
                self._log.warning("Cannot connect a UDP socket to the X-Ray daemon: %s", exc)
                return None
            old, self._sock, self._peer = self._sock, sock, destination
        if old is not None:
            old.close()  # a send in flight on it fails with EBADF: counted, never raised
        return sock

    def _after_fork_in_child(self) -> None:
        # The parent's socket and locks are not ours: leave the socket to the parent (closing
        # the shared descriptor would be harmless, but a fresh socket is simplest to reason about).
        self._lock = threading.Lock()
        self._sock = None
        self._peer = None
        self._log.reinit_after_fork()
        self.resolver.reinit_after_fork()

    def _on_error(self, exc: OSError, address: SocketAddress) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self._log.warning(
                "The X-Ray daemon at %s refused datagrams (is it running?); spans are lost until"
                " it listens again",
                address,
            )
            return
        if not isinstance(exc, BlockingIOError) and exc.errno not in _TRANSIENT_ERRNOS:
            self.resolver.invalidate()
        self._log.warning("Cannot send to the X-Ray daemon at %s: %s", address, exc)


class Sender:
    """Sends datagrams on the connected socket and keeps the figures; never raises.

    Made per export call by :meth:`UdpTransport.sender`, so the exporter can send each trace's
    datagrams as soon as they are assembled and let their buffers go at once.
    """

    __slots__ = ("_transport", "_send", "_address", "sent", "bytes_sent", "errors")

    def __init__(
        self, transport: UdpTransport, sock: socket.socket, address: SocketAddress
    ) -> None:
        self._transport = transport
        self._send = sock.send
        self._address = address
        self.sent = 0
        self.bytes_sent = 0
        self.errors = 0

    def send(self, datagram: bytes) -> bool:
        """Whether ``datagram`` left (handed to the kernel).

        ``ECONNREFUSED`` reports an *earlier* datagram that reached no listener (the daemon is
        down); the kernel did not send this one. The refusal is counted as an error and this
        datagram tried once more, so a daemon that is back gets it.
        """
        try:
            self._send(datagram)
        except ConnectionRefusedError as exc:
            self.errors += 1
            self._transport._on_error(exc, self._address)
            try:
                self._send(datagram)
            except OSError as again:
                self.errors += 1
                self._transport._on_error(again, self._address)
                return False
        except OSError as exc:
            self.errors += 1
            self._transport._on_error(exc, self._address)
            return False
        self.sent += 1
        self.bytes_sent += len(datagram)
        return True


# A full send buffer or a daemon that is not listening says nothing about the address itself.
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ECONNREFUSED, errno.EMSGSIZE}
)
