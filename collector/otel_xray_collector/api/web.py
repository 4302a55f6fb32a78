"""The collector's WSGI application: X-Ray operations, raw-body routes (OTLP/HTTP), console.

What reaches it is already framed by the HTTP server (sizes, chunking, timeouts); this module
decides who may ask (``security``), routes by path before it looks at a body (an unknown path is
404 whatever it carries), reads bodies in the route's own media type and answers every client
mistake with an X-Ray-shaped 4xx. An exception that escapes a handler is a bug: it is logged and
answered 500 ``InternalFailure`` (tests hold that no client input gets there).
"""

from __future__ import annotations

import logging
import mimetypes
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

from otel_xray.logs import OutageLog
from otel_xray.wire import dumps, loads

from ..store.protocol import StoreUnreachable
from .errors import ApiError, invalid_request
from .security import JSON_MEDIA_TYPES, SECURITY_HEADERS, BrowserPolicy, media_type

_logger = logging.getLogger("otel_xray_collector.api")

#: ``POST /<Operation>`` -> handler(JSON object) -> JSON object; errors raise ``ApiError``.
Route = Callable[[dict[str, Any]], dict[str, Any]]

#: Longest URL path served: the console's file names are short, so longer is a 404 at once.
MAX_PATH_CHARS = 1024
#: Longest path component (the usual file-system NAME_MAX).
MAX_NAME_BYTES = 255

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; the security headers are added to every one on the way out."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())


class RawRoute(Protocol):
    """A POST route that reads its own body format (OTLP/HTTP: protobuf or JSON, maybe gzip)."""

    #: Media types it reads; others are answered 415 before the body is read.
    media_types: frozenset[str]

    def __call__(self, body: bytes, media: str, content_encoding: str) -> Reply: ...


def json_reply(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(
        status,
        dumps(payload),
        "application/json",
        (("x-amzn-RequestId", str(uuid.uuid4())), ("Cache-Control", "no-store"), *headers),
    )


def error_reply(error: ApiError) -> Reply:
    return json_reply(error.status, error.body(), (("x-amzn-ErrorType", error.error_type),))


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "AccessDeniedException", message)


class HttpApp:
    """WSGI callable serving ``routes``, ``raw_routes``, ``/status``, ``/health`` and static files.

    ``status`` None: no ``/status`` (the OTLP/HTTP listener); ``static_root`` None: no console.
    """

    def __init__(
        self,
        routes: Mapping[str, Route],
        status: Callable[[], dict[str, Any]] | None,
        static_root: Path | None,
        policy: BrowserPolicy,
        raw_routes: Mapping[str, RawRoute] | None = None,
    ) -> None:
        # The live dict, not a copy: operations registered after start are served at once.
        self.routes = routes
        self.raw_routes = raw_routes or {}
        self.status = status
        self.static_root = static_root.resolve() if static_root is not None else None
        self.policy = policy
        #: requests answered 503 because the store could not answer (``/status`` shows it)
        self.store_unreachable = 0
        self._outage = OutageLog(_logger, "API requests")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            reply = self._dispatch(environ, method)
        except ApiError as exc:
            reply = error_reply(exc)
        except StoreUnreachable as exc:  # the database is away: retry later, not a bug
            self.store_unreachable += 1
            self._outage.failed("answering 503 until the store is back: %s", exc)
            reply = error_reply(ApiError(503, "ServiceUnavailable", str(exc)))
        except Exception:
            _logger.exception("internal error answering %s %s", method, environ.get("PATH_INFO"))
            reply = error_reply(ApiError(500, "InternalFailure", "internal error"))
        if reply.status < 500:
            self._outage.recovered()
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            *reply.headers,
            *SECURITY_HEADERS,
        ]
        phrase = HTTPStatus(reply.status).phrase
        start_response(f"{reply.status} {phrase}", headers)
        return [] if method == "HEAD" else [reply.body]

    # -- routing ----------------------------------------------------------------------------

    def _dispatch(self, environ: dict[str, Any], method: str) -> Reply:
        host = environ.get("HTTP_HOST")
        if not self.policy.host_allowed(host):
            # DNS rebinding: a page under another name resolved to this address.
            raise _forbidden(
                "Host header not allowed: start the collector with --allow-host NAME "
                "to answer to another name"
            )
        path = _request_path(environ)
        if method in ("GET", "HEAD"):
            return self._get(path)
        if method != "POST":
            if method == "OPTIONS" and self._same_origin(environ):
                return Reply(204, b"", "text/plain", (("Allow", "GET, HEAD, POST"),))
            if method == "OPTIONS":
                # A CORS preflight from another origin: no Access-Control-* headers, so the
                # browser never sends the request it asked about.
                raise _forbidden("cross-origin requests are not allowed")
            raise ApiError(405, "MethodNotAllowedException", f"{method} is not supported")
        if not self._same_origin(environ):
            raise _forbidden("cross-origin requests are not allowed")
        media = media_type(environ.get("CONTENT_TYPE"))
        raw = self.raw_routes.get(path)
        if raw is not None:
            if media not in raw.media_types:
                raise _unsupported_media(media, raw.media_types)
            return raw(_read_body(environ), media, environ.get("HTTP_CONTENT_ENCODING", ""))
        route = self.routes.get(path)
        if route is None:
            raise ApiError(404, "UnknownOperationException", f"no operation at {path[:200]}")
        body = _read_body(environ)
        # botocore sends no body and no type for operations without input members
        # (GetTraceSegmentDestination): an empty body carries nothing a page could forge.
        if media not in JSON_MEDIA_TYPES and (media or body):
            raise _unsupported_media(media, JSON_MEDIA_TYPES)
        return json_reply(200, route(_json_object(body)))

    def _same_origin(self, environ: Mapping[str, Any]) -> bool:
        return self.policy.same_origin(
            environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST"), environ.get("HTTP_SEC_FETCH_SITE")
        )

    def _get(self, path: str) -> Reply:
        if path == "/health":
            return json_reply(200, {"status": "ok"})
        if path == "/status" and self.status is not None:
            return json_reply(200, self.status())
        target = static_file(self.static_root, path)
        if target is None:
            raise ApiError(404, "ResourceNotFoundException", f"{path[:200]} not found")
        return _file_reply(target)


def _unsupported_media(media: str, accepted: Iterable[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaTypeException",
        f"Content-Type {media or '(none)'} is not accepted here; send one of "
        + ", ".join(sorted(accepted)),
    )


def _request_path(environ: Mapping[str, Any]) -> str:
    # WSGI hands the percent-decoded path as latin-1 text; the bytes are UTF-8 on the wire.
    raw = environ.get("PATH_INFO", "") or "/"
    try:
        return str(raw.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        return str(raw.encode("latin-1", "replace").decode("utf-8", "replace"))


def _read_body(environ: Mapping[str, Any]) -> bytes:
    """The body the server has already received in full (its size limit applied before)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise invalid_request("bad Content-Length") from exc
    if length <= 0:
        return b""
    return bytes(environ["wsgi.input"].read(length))


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = loads(raw)
    except ValueError as exc:
        raise invalid_request(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid_request("request body must be a JSON object")
    return body


# -- static files ---------------------------------------------------------------------------


def static_file(root: Path | None, path: str) -> Path | None:
    """Resolve a URL path to a file under ``root``; anything else (``..``, links leading out,
    over-long names, NULs, directories without index.html) is None, i.e. a 404."""
    if root is None or len(path) > MAX_PATH_CHARS or "\x00" in path:
        return None
    relative = path.lstrip("/") or "index.html"
    if any(len(part.encode("utf-8", "replace")) > MAX_NAME_BYTES for part in relative.split("/")):
        return None
    try:
        candidate = (root / relative).resolve()
        candidate.relative_to(root)
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None
    except (OSError, ValueError, RuntimeError):  # RuntimeError: symlink loops (Python < 3.13)
        return None


_TEXT_TYPES = ("application/javascript", "application/json", "image/svg+xml")


def _file_reply(target: Path) -> Reply:
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ApiError(404, "ResourceNotFoundException", "not found") from exc
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in _TEXT_TYPES:
        content_type += "; charset=utf-8"
    # index.html must pick up new asset names at once; assets may be cached briefly.
    cache = "no-cache" if target.name == "index.html" else "public, max-age=300"
    return Reply(200, data, content_type, (("Cache-Control", cache),))


__all__ = ["HttpApp", "RawRoute", "Reply", "Route", "error_reply", "json_reply", "static_file"]
