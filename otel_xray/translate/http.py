"""The ``http`` block, from both the pre-1.23 and the stable HTTP semantic conventions.

Instrumentations emit either set, or both (``OTEL_SEMCONV_STABILITY_OPT_IN=http/dup``), so every
field reads the stable key first and the old one second. Keys are consumed only when a block is
produced: a database span's ``server.address`` stays in metadata instead of vanishing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_pton
from typing import Any

MAX_FIELD_LENGTH = 250  # the schema's limit for method, url, user_agent and client_ip

# Keys whose presence alone means "this span is an HTTP exchange".
_HAS_HTTP = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.client_ip",
        "http.user_agent",
        "user_agent.original",
        "http.status_code",
        "http.response.status_code",
        "http.url",
        "url.full",
        "http.scheme",
        "url.scheme",
        "http.host",
        "http.target",
        "http.server_name",
        "net.host.port",
        "url.path",
        "url.query",
    }
)
# Keys that only describe the network around an HTTP exchange.
_NETWORK = frozenset(
    {
        "host.name",
        "net.host.name",
        "server.address",
        "server.port",
        "net.peer.name",
        "net.peer.port",
        "net.peer.ip",
        "network.peer.address",
        "client.address",
        "http.response_content_length",
        "http.response.body.size",
    }
)
_ALL_KEYS = _HAS_HTTP | _NETWORK
# Only kept (and consumed) when they hold an IP address; a hostname stays in metadata.
_IP_ONLY = frozenset({"network.peer.address", "client.address"})

_DEFAULT_PORTS = {"http": "80", "https": "443"}


@lru_cache(maxsize=1024)
def is_ip(value: str) -> bool:
    """Whether ``value`` is what ``ipaddress.ip_address`` accepts.

    Client addresses vary per request, so this misses its cache often; ``inet_pton`` (C, a
    tenth of the cost) confirms the usual valid address, and ``ipaddress`` decides the rest
    (scoped IPv6 such as ``fe80::1%eth0``, and anything ``inet_pton`` refuses).
    """
    try:
        inet_pton(AF_INET6 if ":" in value else AF_INET, value)
        return True
    except (OSError, ValueError):
        pass
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def status_code(value: Any) -> int:
    """An HTTP status as an integer; integral strings count (``"503"``), anything else is 0."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_FIELD_LENGTH else text[:MAX_FIELD_LENGTH]


def _has_port(host: str) -> bool:
    if host.startswith("["):
        return "]:" in host
    head, sep, tail = host.rpartition(":")
    return bool(sep) and ":" not in head and tail.isdigit()


def _bracket_ipv6(host: str) -> str:
    return f"[{host}]" if host.count(":") > 1 and not host.startswith("[") else host


def _first(h: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = h.get(key)
        if value is not None and value != "":
            return value
    return None


def without_query(url: str) -> str:
    """``url`` up to its query string or fragment: what the X-Ray SDK's Flask middleware
    (``request.base_url``) and its ``requests`` patch record. Queries carry tokens and e-mail
    addresses often enough that X-Ray users expect them to stay out of their traces."""
    if "?" in url:  # `in` first: cheaper than a method call, and most URLs have no "#"
        url = url[: url.index("?")]
    if "#" in url:
        url = url[: url.index("#")]
    return url


def _build_url(
    h: Mapping[str, Any], is_server: bool, full_url: bool = True, keep_query: bool = False
) -> str | None:
    """``url.full``/``http.url``, else the URL rebuilt from scheme, host, port and target;
    without its query string unless ``keep_query``. ``full_url`` false promises neither
    full-URL key is present."""
    get = h.get
    # _first(h, "url.full", "http.url") and, below, the scheme's, written out: this runs for
    # every HTTP span and a call with varargs costs more than the lookups.
    if full_url:
        full = get("url.full")
        if full is None or full == "":
            full = get("http.url")
        if full is not None and full != "":
            full = full if type(full) is str else str(full)
            return full if keep_query else without_query(full)
    host = get("http.host")
    port: Any = None
    if not host:
        if is_server:
            host = _first(h, "http.server_name", "net.host.name", "host.name", "server.address")
            port = _first(h, "net.host.port", "server.port")
        else:
            host = _first(h, "net.peer.name", "server.address", "net.peer.ip")
            if host is None:
                host = _ip_or_none(h.get("network.peer.address"))
            port = _first(h, "net.peer.port", "server.port")
        if not host:
            return None
        host = str(host)
        if _has_port(host):
            port = None
        else:
            host = _bracket_ipv6(host)
    scheme = get("url.scheme")
    if scheme is None or scheme == "":
        scheme = get("http.scheme")
    scheme = str(scheme) if scheme else "http"
    url = f"{scheme}://{host}"
    if port is not None:
        port = str(port)
        if port and _DEFAULT_PORTS.get(scheme) != port:
            url = f"{url}:{port}"
    target = h.get("http.target")
    if target:
        return f"{url}{target}" if keep_query else url + without_query(str(target))
    path = h.get("url.path") or "/"
    url += str(path)
    query = h.get("url.query") if keep_query else None
    if query:
        query = str(query)
        url += query if query.startswith("?") else "?" + query
    return url


_SERVER_HOSTS = frozenset({"http.server_name", "net.host.name", "host.name", "server.address"})
_CLIENT_HOSTS = frozenset({"net.peer.name", "net.peer.ip", "network.peer.address"})
_URL_KEYS = frozenset({"url.full", "http.url", "http.host"})


def _ip_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and is_ip(value) else None


def _client_ip(h: Mapping[str, Any], is_server: bool) -> tuple[str | None, bool]:
    """``client_ip`` and ``x_forwarded_for``.

    A forwarded address (``http.client_ip``, ``client.address``) wins over the socket peer.
    ``x_forwarded_for`` is claimed only when we can tell the address is not the socket peer:
    it differs from the peer address, or it is ``http.client_ip`` (defined as the address
    behind all proxies). On client spans the peer is the server, so it is never a client IP.
    """
    peer: str | None = None
    if is_server:
        peer = h.get("net.peer.ip") or _ip_or_none(h.get("network.peer.address"))
    forwarded = h.get("http.client_ip")
    from_client_ip_key = bool(forwarded)
    if not forwarded:
        forwarded = _ip_or_none(h.get("client.address"))
    if forwarded:
        forwarded = str(forwarded)
        xff = (forwarded != peer) if peer else from_client_ip_key
        return forwarded, xff
    return (str(peer), False) if peer else (None, False)


def _content_length(attrs: Mapping[str, Any], events: Any) -> int | None:
    """The response size attribute, else (gRPC) the first RECEIVED message's payload size."""
    size = attrs.get("http.response.body.size")
    if size is None:
        size = attrs.get("http.response_content_length")
    if size is not None:
        return status_code(size)
    if attrs.get("message.type") == "RECEIVED":
        size = attrs.get("messaging.message_payload_size_bytes")
        if size is not None:
            return status_code(size)
    for event in events:
        event_attrs = event.attributes
        if event_attrs and event_attrs.get("message.type") == "RECEIVED":
            size = event_attrs.get("messaging.message_payload_size_bytes")
            if size is not None:
                return status_code(size)
    return None


def http_keys(keys: Iterable[str]) -> frozenset[str] | None:
    """The HTTP keys among ``keys``, or None when none of them makes a span an HTTP span.
    Depends only on the key set, so callers may cache it per attribute-key layout."""
    present = _ALL_KEYS.intersection(keys)
    if not present or present.isdisjoint(_HAS_HTTP):
        return None
    return frozenset(present)


def ip_only_keys(present: frozenset[str]) -> tuple[str, ...]:
    """The keys of ``present`` that the block takes only when their value is an IP address."""
    return tuple(sorted(_IP_ONLY.intersection(present)))


class HttpPlan:
    """Which parts of the http block one set of keys can feed, worked out once per attribute-key
    layout (and span kind) so a span skips the parts it has no keys for.

    ``present`` are the HTTP keys the block takes (an address key only when it holds an IP).
    """

    __slots__ = (
        "present",
        "is_server",
        "url",
        "full_url",
        "client_ip",
        "forwarded",
        "content_length",
    )

    def __init__(self, present: frozenset[str], is_server: bool, keys: Iterable[str]) -> None:
        self.present = present
        self.is_server = is_server
        self.url = not _URL_KEYS.isdisjoint(present) or not (
            (_SERVER_HOSTS if is_server else _CLIENT_HOSTS).isdisjoint(present)
        )
        self.full_url = "url.full" in present or "http.url" in present
        # Without a forwarded-address key, the client is the socket peer (server spans only).
        self.forwarded = "http.client_ip" in present or "client.address" in present
        self.client_ip = self.forwarded or (
            is_server and ("net.peer.ip" in present or "network.peer.address" in present)
        )
        self.content_length = (
            "http.response.body.size" in present
            or "http.response_content_length" in present
            or "message.type" in keys
        )


def http_block(
    attrs: Mapping[str, Any], plan: HttpPlan, events: Any, keep_query: bool = False
) -> dict[str, Any]:
    """The ``http`` block of a span whose keys ``plan`` describes. Reads, never changes,
    ``attrs``; the keys it takes are ``plan.present``. The URL keeps its query string only
    with ``keep_query`` (``TranslateOptions.keep_url_query``); the query keys are consumed
    either way, so a query left out of the URL does not reappear as metadata."""
    get = attrs.get
    request: dict[str, Any] = {}
    method = get("http.request.method") or get("http.method")
    if method:
        request["method"] = method if type(method) is str and len(method) <= 250 else _clip(method)
    if plan.url:
        url = _build_url(attrs, plan.is_server, plan.full_url, keep_query)
        if url:
            request["url"] = url if len(url) <= MAX_FIELD_LENGTH else url[:MAX_FIELD_LENGTH]
    agent = get("user_agent.original") or get("http.user_agent")
    if agent:
        request["user_agent"] = agent if type(agent) is str and len(agent) <= 250 else _clip(agent)
    if plan.client_ip:
        if plan.forwarded:
            client_ip, forwarded = _client_ip(attrs, plan.is_server)
        else:  # what _client_ip comes to for a server span without forwarded-address keys
            peer = get("net.peer.ip") or _ip_or_none(get("network.peer.address"))
            client_ip, forwarded = (str(peer) if peer else None), False
        if client_ip:
            request["client_ip"] = (
                client_ip if len(client_ip) <= MAX_FIELD_LENGTH else client_ip[:MAX_FIELD_LENGTH]
            )
            if forwarded:
                request["x_forwarded_for"] = True

    status = get("http.response.status_code")
    if status is None:
        status = get("http.status_code")
    code = 0
    if status is not None:
        code = status if type(status) is int else status_code(status)
    response: dict[str, Any] = {"status": code} if code else {}
    if events or plan.content_length:
        length = _content_length(attrs, events)
        if length is not None:
            response["content_length"] = length
    return {"request": request, "response": response}
