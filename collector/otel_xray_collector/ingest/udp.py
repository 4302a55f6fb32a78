"""The UDP receive loop: read datagrams as fast as the kernel hands them over, nothing else.

All parsing happens on the ingest thread. This thread only copies datagrams into the bounded
queue. On Linux it uses ``recvmmsg(2)`` through ctypes to take up to 64 datagrams per system
call *while holding the GIL*: a plain ``recv`` releases the GIL on every call, and with a busy
ingest thread each re-acquisition can wait a whole switch interval (5 ms), during which the
kernel buffer overflows. Elsewhere a portable ``recv`` loop is used.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import selectors
import socket
import sys
import threading
from collections.abc import Callable

_logger = logging.getLogger("otel_xray_collector.ingest.udp")

MAX_DATAGRAM = 65536
BATCH = 64
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024
MSG_DONTWAIT = 0x40


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IoVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


class BatchReader:
    """``recvmmsg`` with a preallocated buffer; ``read()`` returns the datagrams waiting now."""

    @staticmethod
    def create(sock: socket.socket) -> BatchReader | _RecvLoop:
        """The fastest reader this platform has for a non-blocking socket."""
        if sys.platform.startswith("linux"):
            try:
                return BatchReader(sock.fileno())
            except (OSError, AttributeError) as exc:  # pragma: no cover - odd libc
                _logger.info("recvmmsg unavailable (%s); using recv", exc)
        return _RecvLoop(sock)

    def __init__(self, fd: int) -> None:
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: keep the GIL during the call
        self._recvmmsg = libc.recvmmsg
        self._recvmmsg.restype = ctypes.c_int
        self._recvmmsg.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(_MMsgHdr),
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_void_p,
        ]
        self._fd = fd
        self._buffer = (ctypes.c_char * (MAX_DATAGRAM * BATCH))()
        self._view = memoryview(self._buffer).cast("B")
        self._iov = (_IoVec * BATCH)()
        self._msgs = (_MMsgHdr * BATCH)()
        base = ctypes.addressof(self._buffer)
        for i in range(BATCH):
            self._iov[i].iov_base = base + i * MAX_DATAGRAM
            self._iov[i].iov_len = MAX_DATAGRAM
            self._msgs[i].msg_hdr.msg_iov = ctypes.pointer(self._iov[i])
            self._msgs[i].msg_hdr.msg_iovlen = 1

    def read(self) -> list[bytes]:
        """Up to ``BATCH`` datagrams now waiting (empty ones included: every datagram is
        counted, and an empty one as a rejection); [] when none."""
        count = self._recvmmsg(self._fd, self._msgs, BATCH, MSG_DONTWAIT, None)
        if count < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return []
            raise OSError(err, "recvmmsg failed")
        view = self._view
        msgs = self._msgs
        return [
            bytes(view[i * MAX_DATAGRAM : i * MAX_DATAGRAM + msgs[i].msg_len]) for i in range(count)
        ]


class _RecvLoop:
    """Portable stand-in for ``BatchReader``: one ``recv`` per datagram."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self) -> list[bytes]:
        batch: list[bytes] = []
        for _ in range(BATCH):
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            batch.append(data)  # b"" is an empty datagram: counted like any other
        return batch


#: What ``BatchReader.create`` returns: ``read()`` gives the datagrams waiting now.
DatagramReader = BatchReader | _RecvLoop


def _set_receive_buffer(sock: socket.socket) -> None:
    """Ask for RECEIVE_BUFFER_BYTES of kernel buffer: it is what absorbs the moments when the
    receiver is not scheduled. ``SO_RCVBUF`` is capped by ``net.core.rmem_max``; a process
    allowed to (CAP_NET_ADMIN, e.g. root in a container) gets the full size with
    ``SO_RCVBUFFORCE``, as the daemon's users expect on a dedicated host."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER_BYTES)
            return
        except OSError:
            pass  # not permitted: fall back to what rmem_max allows
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    except OSError:
        pass


def bind_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    _set_receive_buffer(sock)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class UdpReceiver:
    """In-process receiver: a thread feeds every datagram to ``deliver`` (a list at a time).

    Used where a receiver process is not available (not POSIX) or not wanted; parsing then
    happens on the collector's ingest thread, sharing one core with writing.
    """

    def __init__(self, host: str, port: int, deliver: Callable[[list[bytes]], None]) -> None:
        self._deliver = deliver
        self._sock = bind_udp(host, port)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self.received = 0
        self.bytes_received = 0
        self._stopping = threading.Event()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="otel-xray-udp", daemon=True)
        self._reader = BatchReader.create(self._sock)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wakeup_w.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        for sock in (self._sock, self._wakeup_r, self._wakeup_w):
            sock.close()

    def _receive(self) -> int:
        """Deliver the datagrams waiting now (at most ``BATCH``); how many there were."""
        batch = self._reader.read()
        if batch:
            self.received += len(batch)
            self.bytes_received += sum(len(d) for d in batch)
            self._deliver(batch)
        return len(batch)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wakeup_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                if not self._receive():
                    selector.select(timeout=1.0)
            # What the kernel accepted before the stop is the collector's to store: take it,
            # however long this thread waited to run since it arrived.
            while self._receive() == BATCH:  # a sender still flooding cannot hold the stop up
                pass
        except OSError as exc:
            if not self._stopping.is_set():
                _logger.error("UDP receive loop stopped: %s", exc)
        finally:
            selector.close()
