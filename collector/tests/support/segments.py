"""Small builders for segment documents and a UDP sender, for collector tests."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

HEADER = b'{"format":"json","version":1}\n'


def new_trace_id(epoch: float | None = None) -> str:
    return f"1-{int(epoch if epoch is not None else time.time()):08x}-{os.urandom(12).hex()}"


def new_id() -> str:
    return os.urandom(8).hex()


def segment(
    name: str,
    trace_id: str | None = None,
    start: float | None = None,
    duration: float = 0.1,
    **fields: Any,
) -> dict[str, Any]:
    start = time.time() - 1.0 if start is None else start
    doc: dict[str, Any] = {
        "name": name,
        "id": new_id(),
        "trace_id": trace_id or new_trace_id(start),
        "start_time": start,
        "end_time": start + duration,
    }
    doc.update(fields)
    return doc


def http_block(url: str, method: str = "GET", status: int = 200, **request: Any) -> dict[str, Any]:
    return {"request": {"url": url, "method": method, **request}, "response": {"status": status}}


def frame(doc: dict[str, Any] | bytes) -> bytes:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return HEADER + body


class UdpSender:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0

    def send(self, datagrams: Iterable[bytes | dict[str, Any]]) -> int:
        count = 0
        for item in datagrams:
            data = frame(item) if isinstance(item, dict) else item
            self.sock.sendto(data, self.address)
            count += 1
        self.sent += count
        return count

    def close(self) -> None:
        self.sock.close()
