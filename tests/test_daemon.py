"""Daemon address parsing, host-name resolution policy and the UDP transport (real sockets)."""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from collections.abc import Iterator

import pytest

from otel_xray.config import daemon_address
from otel_xray.logs import OutageLog, RateLimitedLog
from otel_xray.transport import AddressResolver, Destination, Sender, UdpTransport
from otel_xray.wire import HEADER, DaemonAddress, Endpoint
from tests.support.udp import UdpDaemon, parse_datagram


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingResolve:
    """A stand-in for getaddrinfo that answers from a table and records every lookup."""

    def __init__(self, answer: Destination | None = None) -> None:
        self.answer = answer
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Destination:
        self.calls.append((host, port))
        if self.answer is None:
            raise socket.gaierror(-2, "Name or service not known")
        return self.answer


def run_inline(target: object) -> None:
    target()  # type: ignore[operator]


# -- address forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "udp", "tcp"),
    [
        ("127.0.0.1:2000", ("127.0.0.1", 2000), ("127.0.0.1", 2000)),
        ("xray-service:2000", ("xray-service", 2000), ("xray-service", 2000)),
        ("tcp:127.0.0.1:2001 udp:127.0.0.2:2002", ("127.0.0.2", 2002), ("127.0.0.1", 2001)),
        ("udp:127.0.0.2:2002   tcp:127.0.0.1:2001", ("127.0.0.2", 2002), ("127.0.0.1", 2001)),
        ("[::1]:2000", ("::1", 2000), ("::1", 2000)),
        ("  localhost:3000 ", ("localhost", 3000), ("localhost", 3000)),
    ],
)
def test_every_documented_address_form_parses(
    value: str, udp: tuple[str, int], tcp: tuple[str, int]
) -> None:
    address = DaemonAddress.parse(value)
    assert (address.udp.host, address.udp.port) == udp
    assert (address.tcp.host, address.tcp.port) == tcp


@pytest.mark.parametrize(
    "value", ["bad", "127.0.0.1", "127.0.0.1:0", "host:99999", "::1:2000", "tcp:a:1", "a:1 b:2 c:3"]
)
def test_invalid_address_from_environment_is_logged_once_and_the_default_used(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="otel_xray.config"):
        for _ in range(3):  # the exporter and the sampler both read it: one line
            resolved = daemon_address(environ={"AWS_XRAY_DAEMON_ADDRESS": value})
            assert resolved == DaemonAddress.default()
    (record,) = [r for r in caplog.records if value in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert f"Invalid AWS_XRAY_DAEMON_ADDRESS={value!r}" in record.getMessage()
    assert "using the default 127.0.0.1:2000 instead" in record.getMessage()


def test_invalid_explicit_address_names_the_argument() -> None:
    with pytest.raises(ValueError, match="daemon_address"):
        daemon_address("nope")


def test_unset_or_blank_variable_means_the_default() -> None:
    assert daemon_address(environ={}) == DaemonAddress.default()
    assert daemon_address(environ={"AWS_XRAY_DAEMON_ADDRESS": "  "}) == (DaemonAddress.default())
    assert str(DaemonAddress.default().udp) == "127.0.0.1:2000"
    assert DaemonAddress.parse("[::1]:2000").sampling_url == "http://[::1]:2000"


# -- resolution policy -----------------------------------------------------------------------


def test_ip_literals_never_reach_the_resolver() -> None:
    resolve = RecordingResolve()
    for host in ("127.0.0.1", "::1"):
        resolver = AddressResolver(Endpoint(host, 2000), resolve=resolve, spawn=run_inline)
        destination = resolver.destination()
        assert destination is not None and destination[1][:2] == (host, 2000)
        resolver.invalidate()
        assert resolver.destination() == destination
    assert resolve.calls == []


def test_host_name_is_resolved_once_then_refreshed_every_minute() -> None:
    clock = FakeClock()
    resolve = RecordingResolve((socket.AF_INET, ("127.0.0.1", 2000)))
    resolver = AddressResolver(
        Endpoint("xray-service", 2000), clock=clock, resolve=resolve, spawn=run_inline
    )
    for _ in range(100):
        assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert resolve.calls == [("xray-service", 2000)]

    clock.now += 59.9
    resolver.destination()
    assert len(resolve.calls) == 1
    resolve.answer = (socket.AF_INET, ("127.0.0.9", 2000))
    clock.now += 0.1
    # The refresh runs in the background; this call still returns what was known before it.
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert len(resolve.calls) == 2
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.9", 2000))
    assert len(resolve.calls) == 2


def test_send_error_triggers_a_rate_limited_background_refresh() -> None:
    clock = FakeClock()
    resolve = RecordingResolve((socket.AF_INET, ("127.0.0.1", 2000)))
    resolver = AddressResolver(
        Endpoint("xray-service", 2000), clock=clock, resolve=resolve, spawn=run_inline
    )
    resolver.destination()
    resolver.invalidate()
    clock.now += 4.9
    resolver.destination()
    assert len(resolve.calls) == 1, "refreshes after errors are at most every 5 s"
    clock.now += 0.1
    resolver.destination()
    assert len(resolve.calls) == 2
    resolver.destination()
    assert len(resolve.calls) == 2, "a successful refresh clears the error"


def test_unresolvable_name_is_retried_at_most_once_a_minute_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    resolve = RecordingResolve(None)
    resolver = AddressResolver(
        Endpoint("xray-service.invalid", 2000), clock=clock, resolve=resolve, spawn=run_inline
    )
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        for _ in range(50):
            assert resolver.destination() is None
        clock.now += 59
        assert resolver.destination() is None
    assert len(resolve.calls) == 1
    assert len(caplog.records) == 1
    assert "xray-service.invalid:2000" in caplog.records[0].getMessage()

    resolve.answer = (socket.AF_INET, ("127.0.0.1", 2000))
    clock.now += 1
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert len(resolve.calls) == 2


def test_failed_background_refresh_keeps_the_known_address() -> None:
    clock = FakeClock()
    resolve = RecordingResolve((socket.AF_INET, ("127.0.0.1", 2000)))
    resolver = AddressResolver(
        Endpoint("xray-service", 2000), clock=clock, resolve=resolve, spawn=run_inline
    )
    resolver.destination()
    resolve.answer = None
    clock.now += 60
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert len(resolve.calls) == 2


def test_refresh_runs_on_a_background_thread_without_blocking_sends() -> None:
    clock = FakeClock()
    entered, release = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def slow_resolve(host: str, port: int) -> Destination:
        if threads:  # the refresh, not the first resolution
            entered.set()
            assert release.wait(10)
        return (socket.AF_INET, ("127.0.0.1", port))

    def spawn(target: object) -> None:
        thread = threading.Thread(target=target)  # type: ignore[arg-type]
        threads.append(thread)
        thread.start()

    resolver = AddressResolver(
        Endpoint("xray-service", 2000), clock=clock, resolve=slow_resolve, spawn=spawn
    )
    assert resolver.destination() is not None
    clock.now += 60
    assert resolver.destination() is not None
    assert entered.wait(10)
    # While the resolver is stuck, callers still get the known address immediately.
    assert resolver.destination() == (socket.AF_INET, ("127.0.0.1", 2000))
    assert len(threads) == 1, "one refresh at a time"
    release.set()
    threads[0].join(10)


def test_real_lookup_of_localhost_prefers_ipv4() -> None:
    resolver = AddressResolver(Endpoint("localhost", 2000))
    destination = resolver.destination()
    assert destination == (socket.AF_INET, ("127.0.0.1", 2000))


# -- rate-limited logging --------------------------------------------------------------------


def test_rate_limited_log_says_it_once_then_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = RateLimitedLog(logging.getLogger("otel_xray.test"), interval=30, clock=clock)
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        assert log.warning("daemon down %s", "x")
        assert not log.warning("daemon down %s", "x")
        assert not log.warning("daemon down %s", "x")
        clock.now += 30
        assert log.warning("daemon down %s", "x")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["daemon down x", "daemon down x (2 similar messages suppressed)"]


def test_an_outage_is_one_line_a_count_per_interval_and_one_line_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = OutageLog(logging.getLogger("otel_xray.test"), "store writes", interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        log.recovered()  # no outage: nothing to say
        for _ in range(4):
            log.failed("writing failed: %s", "disk full")
            clock.now += 20  # the 4th failure is 60 s after the first line
        log.failed("writing failed: %s", "disk full")
        clock.now += 10
        log.recovered()
        log.recovered()
        log.failed("writing failed: %s", "gone")  # a new outage starts with its own line
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "writing failed: disk full",
        "store writes: still failing, 3 more failures in the last 60 s",
        "store writes: working again after 90 s (5 failures during the outage)",
        "writing failed: gone",
    ]


# -- transport -------------------------------------------------------------------------------


def send_each(transport: UdpTransport, *datagrams: bytes) -> tuple[list[bool], Sender | None]:
    """What the exporter does per export call: one sender, each datagram once."""
    sender = transport.sender()
    if sender is None:
        return [False] * len(datagrams), None
    return [sender.send(datagram) for datagram in datagrams], sender


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A plain UDP socket whose recvfrom also tells which socket sent each datagram."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        yield sock
    finally:
        sock.close()


def test_transport_sends_datagrams_to_the_daemon(udp_daemon: UdpDaemon) -> None:
    transport = UdpTransport(DaemonAddress.parse(udp_daemon.address).udp)
    payloads = [HEADER + b'{"id":"%d"}' % i for i in range(3)]
    ok, sender = send_each(transport, *payloads)
    assert ok == [True, True, True]
    assert sender is not None and sender.bytes_sent == sum(map(len, payloads))
    assert sorted(d["id"] for d in udp_daemon.documents(3)) == ["0", "1", "2"]
    transport.close()


def test_transport_reaches_an_ipv6_loopback_daemon() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("::1", 0))
        daemon.settimeout(10)
        port = daemon.getsockname()[1]
        transport = UdpTransport(DaemonAddress.parse(f"[::1]:{port}").udp)
        assert send_each(transport, HEADER + b'{"id":"v6"}')[0] == [True]
        data, _ = daemon.recvfrom(70_000)
        transport.close()
    assert parse_datagram(data) == {"id": "v6"}


def test_transport_socket_is_connected_to_the_daemon(receiver: socket.socket) -> None:
    transport = UdpTransport(Endpoint("127.0.0.1", receiver.getsockname()[1]))
    assert send_each(transport, HEADER + b'{"id":"c"}')[0] == [True]
    sock = transport._sock
    assert sock is not None
    assert sock.getpeername() == receiver.getsockname()  # connected, not a wildcard sendto
    _, source = receiver.recvfrom(70_000)
    assert sock.getsockname() == source
    transport.close()


def test_daemon_down_counts_refusals_never_raises_and_a_daemon_back_gets_the_next_datagram(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    transport = UdpTransport(Endpoint("127.0.0.1", closed_port))
    ok, first = send_each(transport, HEADER + b'{"id":"lost"}')
    assert (
        ok == [True] and first is not None and first.errors == 0
    )  # UDP: it left; nobody was there
    sock = transport._sock
    assert sock is not None
    # The ICMP "port unreachable" arrives as a pending error, which makes the socket readable.
    readable, _, _ = select.select([sock], [], [], 10)
    assert readable == [sock]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", closed_port))  # the daemon is back
        daemon.settimeout(10)
        with caplog.at_level(logging.WARNING, logger="otel_xray.daemon"):
            ok, sender = send_each(transport, HEADER + b'{"id":"after"}')
        # The refusal (of "lost") is counted; "after" is sent again and delivered.
        assert sender is not None and (ok, sender.errors, sender.sent) == ([True], 1, 1)
        assert parse_datagram(daemon.recv(70_000)) == {"id": "after"}
    assert "refused datagrams (is it running?)" in caplog.text
    transport.close()


def test_a_new_address_after_re_resolution_gets_a_new_connected_socket() -> None:
    clock = FakeClock()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as old_daemon,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as new_daemon,
    ):
        old_daemon.bind(("127.0.0.1", 0))
        new_daemon.bind(("127.0.0.1", 0))
        for daemon in (old_daemon, new_daemon):
            daemon.settimeout(10)
        resolve = RecordingResolve((socket.AF_INET, old_daemon.getsockname()))
        endpoint = Endpoint("xray-service", 2000)
        resolver = AddressResolver(endpoint, clock=clock, resolve=resolve, spawn=run_inline)
        transport = UdpTransport(endpoint, resolver)
        assert send_each(transport, HEADER + b'{"id":"old"}')[0] == [True]
        assert parse_datagram(old_daemon.recv(70_000)) == {"id": "old"}
        first_socket = transport._sock
        resolve.answer = (socket.AF_INET, new_daemon.getsockname())
        clock.now += 60  # due for a refresh: this send still uses the known address
        assert send_each(transport, HEADER + b'{"id":"still-old"}')[0] == [True]
        assert parse_datagram(old_daemon.recv(70_000)) == {"id": "still-old"}
        assert send_each(transport, HEADER + b'{"id":"new"}')[0] == [True]
        assert parse_datagram(new_daemon.recv(70_000)) == {"id": "new"}
        assert transport._sock is not first_socket and first_socket is not None
        assert first_socket.fileno() == -1  # the old socket was closed
        assert transport._sock is not None
        assert transport._sock.getpeername() == new_daemon.getsockname()
        transport.close()


def test_sender_counts_what_left_and_what_did_not(udp_daemon: UdpDaemon) -> None:
    transport = UdpTransport(DaemonAddress.parse(udp_daemon.address).udp)
    sender = transport.sender()
    assert sender is not None
    assert sender.send(HEADER + b'{"id":"small"}') is True
    assert sender.send(HEADER + b"x" * 70_000) is False  # over the UDP limit: EMSGSIZE
    assert (sender.sent, sender.errors) == (1, 1)
    assert sender.bytes_sent == len(HEADER + b'{"id":"small"}')
    assert [d["id"] for d in udp_daemon.documents(1)] == ["small"]
    transport.close()
    assert transport.sender() is None  # closed: nothing to send with


def test_closed_transport_sends_nothing(udp_daemon: UdpDaemon) -> None:
    transport = UdpTransport(DaemonAddress.parse(udp_daemon.address).udp)
    transport.close()
    ok, sender = send_each(transport, HEADER + b"{}")
    assert ok == [False] and sender is None
    transport.close()  # idempotent


def test_fork_gives_the_child_its_own_working_socket(receiver: socket.socket) -> None:
    transport = UdpTransport(Endpoint("127.0.0.1", receiver.getsockname()[1]))
    assert send_each(transport, HEADER + b'{"from":"parent"}')[0] == [True]
    pid = os.fork()
    if pid == 0:  # child: report through the exit code only, never return into pytest
        code = 1
        try:
            code = 0 if send_each(transport, HEADER + b'{"from":"child"}')[0] == [True] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    received = {}
    for _ in range(2):
        data, source = receiver.recvfrom(70_000)
        received[parse_datagram(data)["from"]] = source
    assert received["parent"] != received["child"], "the child must not reuse the parent's socket"
    # The parent's socket is untouched by the child's.
    assert send_each(transport, HEADER + b'{"from":"parent"}')[0] == [True]
    data, source = receiver.recvfrom(70_000)
    assert source == received["parent"]
    transport.close()


def test_concurrent_senders_share_one_transport(udp_daemon: UdpDaemon) -> None:
    transport = UdpTransport(DaemonAddress.parse(udp_daemon.address).udp)
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(50):
            send_each(transport, HEADER + b'{"id":"%d-%d"}' % (n, i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {d["id"] for d in udp_daemon.documents(400)}
    assert len(ids) == 400
    transport.close()
