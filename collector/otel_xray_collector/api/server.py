"""HTTP listeners on waitress: the API/console port and the OTLP/HTTP port.

waitress (Pylons) frames HTTP in production for WSGI apps: one event loop thread reads and
buffers requests for any number of connections and hands complete ones to a fixed pool of
worker threads, so a slow client holds a socket, never a worker. It enforces what the hand-made
``http.server`` framing got wrong: ``Content-Length`` must be digits (a negative or garbage one
is 400, never "read to EOF"), chunk sizes must be hex and chunks terminated (400), the body
limit applies to chunked bodies too and is checked as bytes arrive (413), headers are capped
(431). Around it this module adds the bounds waitress leaves to its user:

- a deadline for a whole request (headers and body) besides waitress's idle timeout, so a
  slowloris that drips a byte a second is cut off;
- security headers on the answers waitress writes itself (400/413/431), and 400 instead of
  waitress's 501 for an unknown ``Transfer-Encoding``: every answer to client input is a 4xx.

See docs/decisions.md for the measured choice against the other servers.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import RequestEntityTooLarge

from .security import SECURITY_HEADERS, BrowserPolicy
from .web import HttpApp, RawRoute, Route

_logger = logging.getLogger("otel_xray_collector.api")
# waitress warns "Task queue depth is N" whenever requests wait for a worker, i.e. at every
# burst; that is the bound working, not a problem worth a line per request.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

#: Request bodies of the API port (X-Ray's own PutTraceSegments limit is far below).
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
#: Seconds a client may take to send one whole request (headers and body).
REQUEST_TIMEOUT = 30.0
#: Seconds a keep-alive connection may sit idle between requests.
IDLE_TIMEOUT = 60.0
#: Open connections per listener; beyond it new ones wait in the listen backlog.
CONNECTION_LIMIT = 256
BACKLOG = 1024
#: After an error answer, input is read and dropped for at most this long and this much.
LINGER_SECONDS = 5.0
LINGER_BYTES = 32 * 1024 * 1024
#: Worker threads per listener: requests in progress at once (SQLite reads, ingest commits).
WORKER_THREADS = 8


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """Remembers when the first byte of the request arrived (for the request deadline), and
    answers 413 as soon as a chunk *announces* more than the body limit (waitress waits for
    the bytes to arrive)."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.time()

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        receiver = self.body_rcv
        if (
            not self.completed  # type: ignore[has-type]
            and self.chunked
            and receiver is not None
            and self.body_bytes_received + getattr(receiver, "chunk_remainder", 0)
            > self.adj.max_request_body_size
        ):
            self.error = RequestEntityTooLarge(
                f"exceeds max_body of {self.adj.max_request_body_size}"
            )
            self.completed = True
        return consumed


class _ErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own error answers, with the security headers and never a 5xx."""

    def execute(self) -> None:
        error = self.request.error
        if error.code >= 500:  # 501: a Transfer-Encoding other than chunked, the client's doing
            error.code, error.reason = 400, "Bad Request"
        self.response_headers.extend(SECURITY_HEADERS)
        self.channel.linger_on_close = True
        super().execute()


class _Channel(HTTPChannel):  # type: ignore[misc]
    """Closes after an error answer the way HTTP servers must ("lingering close"): the client
    may still be sending the body the answer refused (a 413 is sent as soon as the length is
    known), and closing with unread input makes the kernel reset the connection, which throws
    the answer away before the client reads it. So the write side is shut (the client sees the
    end of the answer) and input is read and discarded for a bounded time and size."""

    parser_class = _Parser
    error_task_class = _ErrorTask
    linger_on_close = False
    lingering_since: float | None = None
    _drained = 0

    def handle_close(self) -> None:
        if self.linger_on_close and self.lingering_since is None and self.connected:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                super().handle_close()
                return
            self.lingering_since = time.time()
            self.will_close = False
            return
        super().handle_close()

    def readable(self) -> bool:
        return True if self.lingering_since is not None else bool(super().readable())

    def writable(self) -> bool:
        return False if self.lingering_since is not None else bool(super().writable())

    def handle_read(self) -> None:
        if self.lingering_since is None:
            super().handle_read()
            return
        try:
            data = self.recv(LINGER_BYTES)  # b"" (and closed) when the client is done
        except OSError:
            super().handle_close()
            return
        self._drained += len(data)
        if self._drained > LINGER_BYTES or time.time() - self.lingering_since > LINGER_SECONDS:
            super().handle_close()

    def linger_expired(self, now: float) -> bool:
        return self.lingering_since is not None and now - self.lingering_since > LINGER_SECONDS


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    request_timeout = REQUEST_TIMEOUT

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        cutoff = now - self.request_timeout
        for channel in list(self.active_channels.values()):
            if channel.linger_expired(now):
                channel.handle_close()
                continue
            request = channel.request
            if request is not None and not channel.requests and request.started < cutoff:
                _logger.info(
                    "closing a connection that took over %ss to send a request",
                    self.request_timeout,
                )
                channel.will_close = True


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpListener:
    """One waitress server on its own event-loop thread, for ``start()`` / ``stop()``."""

    def __init__(
        self,
        host: str,
        port: int,
        app: Callable[..., Any],
        *,
        name: str,  # how errors name it, e.g. the flag: "--tcp"
        max_body_bytes: int = MAX_BODY_BYTES,
        request_timeout: float = REQUEST_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        threads: int = WORKER_THREADS,
        connection_limit: int = CONNECTION_LIMIT,
    ) -> None:
        adj = Adjustments(
            listen=_listen(host, port),
            threads=threads,
            connection_limit=connection_limit,
            backlog=BACKLOG,
            channel_timeout=idle_timeout,
            cleanup_interval=max(1, int(min(request_timeout, idle_timeout) / 4)),
            max_request_body_size=max_body_bytes,
            max_request_header_size=MAX_HEADER_BYTES,
            ident="otel-xray-collector",
            expose_tracebacks=False,
            asyncore_use_poll=True,
        )
        self._map: dict[int, Any] = {}
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.set_thread_count(threads)
        try:
            self._server = _Server(app, self._map, dispatcher=self._dispatcher, adj=adj)
        except OSError as exc:  # one line naming the listener and the address
            self._dispatcher.shutdown(timeout=1)
            raise OSError(
                exc.errno, f"{name}: cannot listen on {_listen(host, port)}: {exc.strerror}"
            ) from exc
        self._server.request_timeout = request_timeout
        self.name = name
        self.address: tuple[str, int] = (host, int(self._server.effective_port))
        self._thread = threading.Thread(
            target=self._server.run, name=f"otel-xray-http {name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection, then let the workers finish their task."""

        def close_all() -> None:
            for dispatcher in list(self._map.values()):
                try:
                    dispatcher.close()
                except OSError:
                    pass

        if self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(close_all)
            except OSError:
                # The loop's wake-up pipe is already closed (the loop closes a dispatcher whose
                # descriptor went bad): close from here; the loop ends once its map is empty.
                close_all()
            self._thread.join(timeout=5.0)
        else:
            close_all()
        self._dispatcher.shutdown(timeout=5)


class ApiServer(HttpListener):
    """The API port: ``routes`` (POST path -> handler(body) -> response dict), ``raw_routes``
    (OTLP/HTTP), ``/status``, ``/health`` and the static console, behind the browser policy."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        status: Callable[[], dict[str, Any]] | None,
        static_root: Path | None,
        *,
        policy: BrowserPolicy | None = None,
        raw_routes: Mapping[str, RawRoute] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        name: str = "--tcp",
    ) -> None:
        self.app = HttpApp(routes, status, static_root, policy or BrowserPolicy(), raw_routes)
        super().__init__(host, port, self.app, name=name, max_body_bytes=max_body_bytes)


__all__ = ["ApiServer", "HttpListener", "MAX_BODY_BYTES", "REQUEST_TIMEOUT"]
