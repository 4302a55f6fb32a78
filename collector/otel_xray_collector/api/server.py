"""The one HTTP listener: X-Ray REST operations, sampling, /status, /health and the console.

stdlib ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive: the API is small JSON over loopback,
where a thread per connection is plenty and no extra dependency is needed.
"""

from __future__ import annotations

import logging
import mimetypes
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..ingest.validate import dumps, loads
from .errors import ApiError, invalid_request

_logger = logging.getLogger("otel_xray_collector.api")

MAX_BODY_BYTES = 8 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _Server6(_Server):
    address_family = socket.AF_INET6


class ApiServer:
    """Serves ``routes`` (POST path -> handler(body) -> response dict) and the static console."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        status: Callable[[], dict[str, Any]],
        static_root: Path | None,
    ) -> None:
        handler = _make_handler(routes, status, static_root)
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), handler)
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="otel-xray-http",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def _make_handler(
    routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
    status: Callable[[], dict[str, Any]],
    static_root: Path | None,
) -> type[BaseHTTPRequestHandler]:
    root = static_root.resolve() if static_root is not None else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "otel-xray-collector"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK
            # add ~40 ms to every keep-alive response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            _logger.debug("%s - " + format, self.address_string(), *args)

        # -- POST: the API ------------------------------------------------------------------

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            try:
                body = self._read_json()
                handler = routes.get(path)
                if handler is None:
                    raise ApiError(404, "UnknownOperationException", f"no operation at {path}")
                self._send_json(200, handler(body))
            except ApiError as exc:
                self._send_error(exc)
            except Exception:
                _logger.exception("internal error answering %s", path)
                self._send_error(ApiError(500, "InternalFailure", "internal error"))

        def _read_json(self) -> dict[str, Any]:
            length_header = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked()
            else:
                try:
                    length = int(length_header or 0)
                except ValueError as exc:
                    self.close_connection = True
                    raise invalid_request("bad Content-Length") from exc
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise ApiError(413, "InvalidRequestException", "request body too large")
                raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                body = loads(raw)
            except ValueError as exc:
                raise invalid_request(f"request body is not JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise invalid_request("request body must be a JSON object")
            return body

        def _read_chunked(self) -> bytes:
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise ApiError(413, "InvalidRequestException", "request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline()

        def _send_json(self, code: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            data = dumps(payload)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Cache-Control", "no-store")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, exc: ApiError) -> None:
            self._send_json(exc.status, exc.body(), {"x-amzn-ErrorType": exc.error_type})

        # -- GET: status, health, console ---------------------------------------------------

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            try:
                if path == "/health":
                    self._send_json(200, {"status": "ok"})
                elif path == "/status":
                    self._send_json(200, status())
                else:
                    self._send_static(path)
            except Exception:
                _logger.exception("internal error answering GET %s", path)
                self._send_error(ApiError(500, "InternalFailure", "internal error"))

        def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
            self.do_GET()

        def _send_static(self, path: str) -> None:
            target = _static_file(root, path)
            if target is None:
                self._send_error(ApiError(404, "ResourceNotFoundException", f"{path} not found"))
                return
            data = target.read_bytes()
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type in (
                "application/javascript",
                "application/json",
                "image/svg+xml",
            ):
                content_type += "; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            # index.html must pick up new asset names at once; assets may be cached briefly.
            cache = "no-cache" if target.name == "index.html" else "public, max-age=300"
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def _static_file(root: Path | None, path: str) -> Path | None:
    """Resolve a URL path under ``root``; anything escaping it (``..``, links) is not found."""
    if root is None:
        return None
    relative = unquote(path).lstrip("/") or "index.html"
    if "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    try:
        candidate.relative_to(root)
    except ValueError:
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


__all__ = ["ApiServer"]
