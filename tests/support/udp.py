"""A stand-in X-Ray daemon for tests: a real UDP socket bound on 127.0.0.1.

Waiting is event-driven: ``wait_for(n)`` blocks on a condition until n datagrams arrived (or the
timeout expires and the test fails with what did arrive), never on a sleep.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

HEADER_LINE = b'{"format":"json","version":1}'


class UdpDaemon:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.datagrams: list[bytes] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="udp-daemon", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(70_000)
            except OSError:
                return
            if self._closed:
                return
            with self._cond:
                self.datagrams.append(data)
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Block until at least ``count`` datagrams arrived; return them all."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.datagrams) >= count, timeout)
            got = list(self.datagrams)
        assert ok, f"expected {count} datagrams, got {len(got)}: {got!r}"
        return got

    def wait_until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Block until ``predicate(documents)`` holds for the documents received so far."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self._parse_all()), timeout)
            docs = self._parse_all()
        assert ok, f"condition not met; documents received: {docs!r}"
        return docs

    def documents(self, count: int | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Parsed bodies (header checked) of the datagrams received, waiting for ``count``."""
        if count is not None:
            self.wait_for(count, timeout)
        with self._cond:
            return self._parse_all()

    def _parse_all(self) -> list[dict[str, Any]]:
        return [parse_datagram(d) for d in self.datagrams]

    def clear(self) -> None:
        with self._cond:
            self.datagrams.clear()

    def close(self) -> None:
        # close() alone does not wake a thread blocked in recvfrom on Linux:
        # send it a last datagram.
        self._closed = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", ("127.0.0.1", self.port))
        self._thread.join(timeout=5)
        self.sock.close()


def parse_datagram(data: bytes) -> dict[str, Any]:
    """Split the daemon header from the body, as the daemon does, and parse both."""
    header, sep, body = data.partition(b"\n")
    assert sep, f"datagram has no header line: {data[:80]!r}"
    parsed_header = json.loads(header)
    assert parsed_header == {"format": "json", "version": 1}, parsed_header
    document = json.loads(body)
    assert isinstance(document, dict)
    return document
