"""The collector's side of the UDP receiver process (see udp_child.py for the other side).

The collector binds the socket itself, so bind errors, port 0 and the bound address behave
exactly as with an in-process receiver, and the port stays bound for the collector's whole
life even if the receiver process has to be restarted. A thread here reads frames from the
pipe and hands them to the ingest pipeline, which blocks when it already holds a few frames:
the pipe then fills and frames wait in the receiver process, under its ``--buffer-mb`` budget.

The receiver process never outlives the collector: ``stop()`` sends it a stop byte and reaps
it; if the collector dies (even ``kill -9``) the control pipe reaches end of file and the
receiver exits within one loop turn. If the receiver dies on its own it is restarted (at most
once a second) and the datagrams it held are counted as spillover.
"""

from __future__ import annotations

import logging
import mmap
import os
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .frames import Frame, FrameReader
from .udp import bind_udp
from .udp_child import (
    BYTES_RECEIVED,
    COUNTERS,
    QUEUED_BYTES,
    QUEUED_DATAGRAMS,
    RECEIVED,
    SPILLED,
    SPILLED_BYTES,
)

_logger = logging.getLogger("otel_xray_collector.ingest.udp")

PIPE_BYTES = 1024 * 1024
READY_TIMEOUT = 30.0
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in the fcntl module only from 3.10
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class UdpReceiverProcess:
    """Receives, validates and packs datagrams in a child process; ``deliver`` gets frames."""

    def __init__(
        self, host: str, port: int, deliver: Callable[[Frame], None], buffer_bytes: int
    ) -> None:
        self._deliver = deliver
        self._budget = buffer_bytes
        self._sock = bind_udp(host, port)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._counters_file = tempfile.TemporaryFile()
        self._counters_file.truncate(COUNTERS.size)
        self._counters = mmap.mmap(self._counters_file.fileno(), COUNTERS.size)
        self._previous = [0] * 6  # totals of receiver processes that already exited
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: int | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        data = self._spawn()
        self._thread = threading.Thread(
            target=self._run, args=(data,), name="otel-xray-udp-frames", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving, hand over every frame the receiver still holds, reap it."""
        self._stopping.set()
        with self._lock:
            self._signal_stop()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            if self._thread.is_alive():  # the pipeline stopped taking frames: don't hang
                _logger.error("UDP receiver did not stop in time; killing it")
                self._kill()
                self._thread.join(timeout=10.0)
        else:
            self._kill()
        self._sock.close()
        self._counters.close()
        self._counters_file.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _spawn(self) -> int:
        data_r, data_w = os.pipe()
        control_r, control_w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(data_w, F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, OSError):
            pass  # a smaller pipe only means more, smaller writes
        COUNTERS.pack_into(self._counters, 0, 0, 0, 0, 0, 0, 0)
        fds = (self._sock.fileno(), data_w, control_r, self._counters_file.fileno())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "otel_xray_collector.ingest.udp_child",
                    *(str(fd) for fd in fds),
                    str(self._budget),
                    str(os.getpid()),
                ],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            os.close(data_r)
            os.close(control_w)
            raise
        finally:
            os.close(data_w)
            os.close(control_r)
        self._control = control_w
        try:
            self._await_ready(data_r)
        except BaseException:
            os.close(data_r)
            self._signal_stop()
            self._kill()
            raise
        return data_r

    def _await_ready(self, data: int) -> None:
        """Wait for the receiver's first (empty) frame, so that once ``start()`` returns
        datagrams are being received, not just buffered by the kernel."""
        ready, _, _ = select.select([data], [], [], READY_TIMEOUT)
        frame = FrameReader(data).read() if ready else None
        if frame is None:
            code = self._process.poll() if self._process is not None else None
            raise RuntimeError(f"the UDP receiver process did not start (exit code {code})")

    def _signal_stop(self) -> None:
        if self._control is None:
            return
        try:
            os.write(self._control, b"s")
        except OSError:
            pass  # the receiver is already gone
        os.close(self._control)
        self._control = None

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _reap(self) -> int | None:
        """Wait for the exited (or exiting) receiver; fold its counters into the totals."""
        process = self._process
        code: int | None = None
        if process is not None:
            try:
                code = process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self._kill()
                code = process.returncode
        current = COUNTERS.unpack_from(self._counters, 0)
        for slot in (RECEIVED, BYTES_RECEIVED, SPILLED, SPILLED_BYTES):
            self._previous[slot] += current[slot]
        # what a dead receiver still held is lost: count it as dropped, like spillover
        self._previous[SPILLED] += current[QUEUED_DATAGRAMS]
        self._previous[SPILLED_BYTES] += current[QUEUED_BYTES]
        COUNTERS.pack_into(self._counters, 0, 0, 0, 0, 0, 0, 0)
        return code

    # -- the frame thread --------------------------------------------------------------------

    def _run(self, data: int | None) -> None:
        while True:
            if data is not None:
                self._pump(data)
            with self._lock:
                self._signal_stop()
                code = self._reap()
                if self._stopping.is_set():
                    return
                _logger.error("UDP receiver process exited (code %s); restarting it", code)
                self.restarts += 1
            if self._stopping.wait(1.0):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    data = self._spawn()
                except Exception as exc:
                    _logger.error("restarting the UDP receiver process failed: %s", exc)
                    data = None

    def _pump(self, data: int) -> None:
        """Hand every frame to the pipeline until the receiver closes the pipe."""
        reader = FrameReader(data)
        try:
            while True:
                frame = reader.read()
                if frame is None:
                    return
                self._deliver(frame)
        except OSError as exc:
            _logger.error("reading from the UDP receiver failed: %s", exc)
        finally:
            os.close(data)

    # -- counters (written by the receiver process) ------------------------------------------

    def _counter(self, slot: int) -> int:
        value = self._previous[slot]
        if not self._counters.closed:
            value += COUNTERS.unpack_from(self._counters, 0)[slot]
        return value

    @property
    def received(self) -> int:
        return self._counter(RECEIVED)

    @property
    def bytes_received(self) -> int:
        return self._counter(BYTES_RECEIVED)

    @property
    def spillover(self) -> int:
        return self._counter(SPILLED)

    @property
    def spilled_bytes(self) -> int:
        return self._counter(SPILLED_BYTES)

    @property
    def queued_datagrams(self) -> int:
        return self._counter(QUEUED_DATAGRAMS)

    @property
    def queued_bytes(self) -> int:
        return self._counter(QUEUED_BYTES)
