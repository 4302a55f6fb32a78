"""A tiny HTTP client for metadata endpoints, bounded by a ``Deadline``.

``urllib`` has one timeout for connecting and reading and no notion of a total budget, and it
cannot tell "nobody is there" from "somebody is there but silent" without parsing error strings.
The EC2 detector needs exactly that difference (IMDSv1 fallback, see docs/detectors.md), so the
client reports the two as different exceptions.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from otel_xray.detectors._base import Deadline

DEFAULT_CONNECT_TIMEOUT = 0.25
_MAX_BODY = 1 << 20


class EndpointError(Exception):
    """The request did not produce an HTTP response."""


class EndpointUnreachable(EndpointError):
    """Nothing accepted the connection: refused, unreachable, DNS failure or connect timeout."""


class NoResponse(EndpointError):
    """The connection was accepted but no complete response came within the budget."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def request(
    method: str,
    url: str,
    deadline: Deadline,
    *,
    headers: Mapping[str, str] | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    response_timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """One request; every blocking step waits at most what is left of ``deadline``.

    ``response_timeout`` caps each wait after connecting, for callers that want budget left over
    when a server accepts but stays silent.
    """
    wait_cap = deadline.seconds if response_timeout is None else response_timeout
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise EndpointUnreachable(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise EndpointUnreachable(f"bad port in {url!r}") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"

    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            host, port, timeout=deadline.timeout(connect_timeout), context=context
        )
    else:
        connection = http.client.HTTPConnection(
            host, port, timeout=deadline.timeout(connect_timeout)
        )
    try:
        try:
            connection.connect()
        except ssl.SSLError as exc:
            # Something answered, but it is not the server the CA vouches for.
            raise EndpointError(f"TLS handshake with {host} failed: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise EndpointUnreachable(f"cannot connect to {host}:{port}: {exc}") from exc
        try:
            sock = connection.sock
            if sock is not None:
                sock.settimeout(deadline.timeout(wait_cap))
            connection.request(method, path, headers=dict(headers or {}))
            if sock is not None:
                sock.settimeout(deadline.timeout(wait_cap))
            response = connection.getresponse()
            if sock is not None:
                sock.settimeout(deadline.timeout(wait_cap))
            body = response.read(_MAX_BODY)
            return Response(response.status, body)
        except (OSError, http.client.HTTPException) as exc:
            raise NoResponse(f"{method} {url}: no complete response: {exc}") from exc
    finally:
        connection.close()
