"""The UDP receiver process: receive, split, parse and validate datagrams, hand over frames.

Why a process: receiving and JSON-validating a document costs about as much Python CPU as
writing it, and one process runs Python on one core (the GIL). Here the two halves run on two
cores: this process does everything up to a packed, validated batch; the collector process
only runs the SQL that stores it.

Lifecycle: the collector binds the socket and starts this process with the socket, the write
end of a data pipe, the read end of a control pipe and a small shared counter file. This
process stops when the control pipe says so (a byte, or end of file because the collector
died, even by ``kill -9``) or when its parent pid changes, so it can never outlive the
collector and hold the port. SIGINT/SIGTERM are ignored: a terminal's Ctrl-C or a group
SIGTERM reaches the collector too, which then stops this process in order, so queued frames
are still written.

Bounded memory: frames wait here (not in the collector) up to the ``--buffer-mb`` budget;
beyond it the oldest frame's documents are dropped and counted as spillover, like the daemon.
"""

from __future__ import annotations

import collections
import errno
import mmap
import os
import selectors
import signal
import socket
import struct
import sys
from typing import Any, cast

from otel_xray.wire import HEADER

from ..documents import EMPTY, Accepted, Packer
from .frames import Frame, encode_frame
from .otlp_udp import Noted, parse_datagram_body
from .udp import BATCH, BatchReader, DatagramReader
from .validate import (
    Rejected,
    quick_accept,
    split_datagram,
)

FRAME_DOCUMENTS = 1024  # per frame; the writer joins frames into larger transactions
FRAME_BYTES = 1024 * 1024
PARSE_SLICE = 256  # datagrams parsed between two looks at the socket (~1-2 ms of CPU)
WRITE_CHUNK = 1024 * 1024

# Shared counters (int64 slots), written only by this process, read by the collector.
COUNTERS = struct.Struct("<6q")
RECEIVED, BYTES_RECEIVED, SPILLED, SPILLED_BYTES, QUEUED_DATAGRAMS, QUEUED_BYTES = range(6)


class _Pending:
    """One frame waiting for the pipe, plus what dropping it would have to account for."""

    __slots__ = ("data", "sent", "datagrams", "valid_datagrams", "size", "rejects", "noted")

    def __init__(self, frame: Frame, valid_datagrams: int, size: int) -> None:
        self.data = memoryview(encode_frame(frame))
        self.sent = 0
        self.datagrams = frame.datagrams
        self.valid_datagrams = valid_datagrams
        self.size = size
        self.rejects = frame.rejects
        self.noted = frame.noted


class Backlog:
    """Datagrams not yet parsed, then frames not yet written, under one byte budget.

    Taking datagrams out of the kernel is cheap and parsing is not, so datagrams are moved
    here first: the kernel buffer then never overflows while this process parses, even when
    it gets only part of a CPU. Over the budget the oldest data goes first: frames not yet
    being written, then unparsed datagrams. A dropped frame's valid datagrams count as
    spillover, its rejected ones (already counted as rejections) still reach the collector in
    a small bookkeeping frame, so ``/status`` adds up.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._queue: collections.deque[_Pending] = collections.deque()
        self.raw: collections.deque[bytes] = collections.deque()
        self.raw_bytes = 0
        self.frame_bytes = 0
        self.frame_datagrams = 0
        self.spilled = 0
        self.spilled_bytes = 0
        self._carry_datagrams = 0
        self._carry_rejects: dict[str, tuple[int, str]] = {}
        self._carry_noted: dict[str, int] = {}

    @property
    def queued_bytes(self) -> int:
        return self.raw_bytes + self.frame_bytes

    @property
    def queued_datagrams(self) -> int:
        return len(self.raw) + self.frame_datagrams

    def add_raw(self, datagrams: list[bytes]) -> None:
        self.raw.extend(datagrams)
        self.raw_bytes += sum(len(d) for d in datagrams)
        self._enforce_budget()

    def take_raw(self) -> bytes:
        data = self.raw.popleft()
        self.raw_bytes -= len(data)
        return data

    def push(self, frame: Frame, valid_datagrams: int, size: int) -> None:
        self._queue.append(_Pending(frame, valid_datagrams, size))
        self.frame_bytes += size
        self.frame_datagrams += valid_datagrams
        self._enforce_budget()

    def _enforce_budget(self) -> None:
        while self.raw_bytes + self.frame_bytes > self._budget:
            victim_index = 1 if self._queue and self._queue[0].sent else 0
            if victim_index >= len(self._queue):
                if not self.raw:
                    break
                dropped = self.raw.popleft()
                self.raw_bytes -= len(dropped)
                self.spilled += 1
                self.spilled_bytes += len(dropped)
                continue
            victim = self._queue[victim_index]
            del self._queue[victim_index]
            self.frame_bytes -= victim.size
            self.frame_datagrams -= victim.valid_datagrams
            self.spilled += victim.valid_datagrams
            self.spilled_bytes += victim.size
            self._carry_datagrams += victim.datagrams - victim.valid_datagrams
            for reason, (count, message) in victim.rejects.items():
                previous = self._carry_rejects.get(reason, (0, message))
                self._carry_rejects[reason] = (previous[0] + count, previous[1])
            for name, count in victim.noted.items():
                self._carry_noted[name] = self._carry_noted.get(name, 0) + count

    def write_some(self, fd: int) -> bool:
        """Write what the pipe takes without blocking; True when everything went out."""
        if (self._carry_datagrams or self._carry_rejects or self._carry_noted) and not self._queue:
            carried = Frame(EMPTY, self._carry_datagrams, self._carry_rejects, self._carry_noted)
            self._queue.append(_Pending(carried, 0, 0))
            self._carry_noted = {}
            self._carry_datagrams = 0
            self._carry_rejects = {}
        while self._queue:
            head = self._queue[0]
            try:
                written = os.write(fd, head.data[head.sent : head.sent + WRITE_CHUNK])
            except BlockingIOError:
                return False
            head.sent += written
            if head.sent == len(head.data):
                self._queue.popleft()
                self.frame_bytes -= head.size
                self.frame_datagrams -= head.valid_datagrams
        return True


class FrameBuilder:
    """Turns datagrams into one frame: accepted documents packed, rejections counted."""

    def __init__(self) -> None:
        self.packer = Packer()
        self.datagrams = 0
        self.valid_datagrams = 0
        self.size = 0
        self.rejects: dict[str, tuple[int, str]] = {}
        self.noted: dict[str, int] = {}

    def _reject(self, rejected: Rejected) -> None:
        found = self.rejects.get(rejected.reason)
        self.rejects[rejected.reason] = (found[0] + 1, found[1]) if found else (1, rejected.message)

    def add(self, data: bytes) -> None:
        self.datagrams += 1
        if data.startswith(HEADER):  # the common case, without building outcomes
            document = data[len(HEADER) :]
            keys = quick_accept(document)
            if keys is not None:
                self.packer.add_fields(keys[0], keys[1], keys[2], document)
                self.valid_datagrams += 1
                self.size += len(data)
                return
        body = split_datagram(data)
        if isinstance(body, Rejected):
            self._reject(body)
            return
        valid = False
        for outcome in parse_datagram_body(body):
            kind = type(outcome)
            if kind is Accepted:
                self.packer.add(outcome)  # type: ignore[arg-type]
                valid = True
            elif kind is Noted:
                noted = cast(Noted, outcome)
                self.noted[noted.counter] = self.noted.get(noted.counter, 0) + noted.number
            else:
                self._reject(outcome)  # type: ignore[arg-type]
        if valid:
            self.valid_datagrams += 1
            self.size += len(data)

    def full(self) -> bool:
        return len(self.packer) >= FRAME_DOCUMENTS or self.packer.size >= FRAME_BYTES

    def finish(self) -> Frame:
        return Frame(self.packer.pack(), self.datagrams, self.rejects, self.noted)


def serve(
    sock: socket.socket, data_fd: int, control_fd: int, counters: Any, budget: int, parent: int
) -> None:
    reader = BatchReader.create(sock)
    pending = Backlog(budget)
    os.set_blocking(data_fd, False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(control_fd, selectors.EVENT_READ)
    received = received_bytes = 0
    stopping = writing = False
    pending.push(Frame(EMPTY, 0, {}), 0, 0)  # "ready": the collector's start() waits for it
    while True:
        worked = False
        if not stopping:  # first empty the kernel buffer (cheap), then parse a slice
            count, size = _take_waiting(reader, pending)
            received += count
            received_bytes += size
        if pending.raw:
            worked = True
            builder = FrameBuilder()
            raw = pending.raw
            for _ in range(PARSE_SLICE):
                if not raw or builder.full():
                    break
                builder.add(pending.take_raw())
            pending.push(builder.finish(), builder.valid_datagrams, builder.size)
        # Published before the frames go out too: the collector must never see a datagram
        # processed that it does not yet see received.
        _publish(counters, received, received_bytes, pending)
        try:
            flushed = pending.write_some(data_fd)
        except BrokenPipeError:
            return  # the collector is gone: nobody to hand anything to
        _publish(counters, received, received_bytes, pending)
        if stopping and flushed and not pending.raw:
            return
        if os.getppid() != parent:
            stopping = True
        if writing != (not flushed):  # watch the pipe only while something waits for it
            writing = not flushed
            if writing:
                selector.register(data_fd, selectors.EVENT_WRITE)
            else:
                selector.unregister(data_fd)
        for key, _ in selector.select(0 if worked else 1.0):
            if key.fd == control_fd:
                try:
                    os.read(control_fd, 64)
                except OSError:
                    pass
                stopping = True  # a stop byte, or end of file: the collector is stopping/gone
                selector.unregister(control_fd)
                selector.unregister(sock)
                # What the kernel accepted before the stop is the collector's to store: take it
                # now, however long this process waited to be scheduled since it arrived.
                count, size = _take_waiting(reader, pending)
                received += count
                received_bytes += size


def _take_waiting(reader: DatagramReader, pending: Backlog) -> tuple[int, int]:
    """Move the datagrams the kernel holds now into the backlog; (datagrams, bytes) moved."""
    count = size = 0
    while True:
        batch = reader.read()
        if not batch:
            break
        count += len(batch)
        size += sum(len(d) for d in batch)
        pending.add_raw(batch)
        if len(batch) < BATCH:
            break
    return count, size


def _publish(counters: Any, received: int, received_bytes: int, pending: Backlog) -> None:
    COUNTERS.pack_into(
        counters,
        0,
        received,
        received_bytes,
        pending.spilled,
        pending.spilled_bytes,
        pending.queued_datagrams,
        pending.queued_bytes,
    )


def main(argv: list[str]) -> int:
    sock_fd, data_fd, control_fd, counters_fd, budget, parent = (int(a) for a in argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.getppid() != parent:
        return 0  # the collector died while this process was starting
    sock = socket.socket(fileno=sock_fd)
    counters = mmap.mmap(counters_fd, COUNTERS.size)
    try:
        serve(sock, data_fd, control_fd, counters, budget, parent)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            sys.stderr.write(f"otel-xray-collector UDP receiver stopped: {exc}\n")
            return 1
    finally:
        sock.detach()  # the collector owns the socket
    return 0


if __name__ == "__main__":  # pragma: no cover - runs as the child process
    sys.exit(main(sys.argv[1:]))
