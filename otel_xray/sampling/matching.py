"""Wildcard matchers and the request facts a sampling rule is matched against.

X-Ray rules use ``*`` (any run of characters) and ``?`` (exactly one character) over the whole
string, case-insensitively. Rules are compiled once, when they are loaded, into small callables
that take an already lower-cased string, so a sampling decision never compiles a pattern and
lowers each request value at most once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import Attributes

from otel_xray.translate.origin import (
    ORIGIN_BEANSTALK,
    ORIGIN_EC2,
    ORIGIN_ECS,
    ORIGIN_EKS,
    ORIGIN_LAMBDA,
    PLATFORM_BEANSTALK,
    PLATFORM_EC2,
    PLATFORM_ECS,
    PLATFORM_EKS,
    PLATFORM_LAMBDA,
)

#: A compiled pattern. ``None`` stands for ``*``: it matches everything, including a missing value.
Matcher = Callable[[str], bool] | None


def compile_wildcard(pattern: str) -> Matcher:
    """Compile an X-Ray wildcard pattern into a matcher of lower-cased text.

    The common shapes (``*``, a literal, ``prefix*``, ``*suffix``) become plain string
    operations; anything else becomes an anchored regular expression.
    """
    if pattern == "*":
        return None
    lowered = pattern.lower()
    if "*" not in lowered and "?" not in lowered:
        return lowered.__eq__
    body = lowered[:-1]
    if lowered.endswith("*") and "*" not in body and "?" not in body:
        return lambda text: text.startswith(body)
    tail = lowered[1:]
    if lowered.startswith("*") and "*" not in tail and "?" not in tail:
        return lambda text: text.endswith(tail)
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in lowered
    )
    fullmatch = re.compile(regex, re.DOTALL).fullmatch
    return lambda text: fullmatch(text) is not None


#: The HTTP facts of a span at start, lower-cased: ``(host, method, path)``, ``None`` where the
#: span has none. A plain tuple, not a NamedTuple: building one is ~10x cheaper, and this is
#: built for every root span.
HttpRequest = tuple[str | None, str | None, str | None]
HOST, METHOD, PATH = 0, 1, 2


def request_from_attributes(attributes: Attributes) -> HttpRequest | None:
    """The host, method and path a rule is matched against, or ``None`` for a non-HTTP span.

    The path comes from ``url.path``, else ``http.target`` (query and fragment removed), else the
    path of ``url.full``/``http.url``; the host from ``http.host``/``server.address``/
    ``net.host.name``, else the URL's authority. Straight-line code with no helper calls in the
    common case: this runs for every root span (bench/sampler.py).
    """
    if not attributes:
        return None
    get = attributes.get
    method = get("http.request.method") or get("http.method")
    host = get("http.host") or get("server.address") or get("net.host.name")
    path = get("url.path")
    if path is None:
        target = get("http.target")
        if type(target) is str:
            end = target.find("?")
            path = target if end < 0 else target[:end]
            if "#" in path:
                path = path[: path.find("#")]
    if path is None or host is None:
        url = get("url.full") or get("http.url")
        if type(url) is str:
            path, host = _from_url(url, path, host)
    if method is None and path is None and host is None:
        return None
    return (
        host.lower() if type(host) is str and host else None,
        method.lower() if type(method) is str and method else None,
        path.lower() if type(path) is str and path else None,
    )


def _from_url(url: str, path: Any, host: Any) -> tuple[Any, Any]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return path, host
    if path is None:
        path = parts.path or "/"
    if host is None and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
    return path, host


def strip_port(host: str) -> str | None:
    """``example.com:8080`` -> ``example.com``; ``[::1]:80`` -> ``::1``; no port -> None."""
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else None
    name, sep, port = host.rpartition(":")
    if sep and name and ":" not in name and port.isdigit():
        return name
    return None


RequestMatcher = Callable[[HttpRequest | None], bool]


def compile_http_matcher(host: str, method: str, path: str) -> RequestMatcher:
    """One rule's host, method and path patterns as a single request matcher.

    A value the span lacks matches implicitly, as in the X-Ray SDK for Python, and a
    ``host:port`` also matches as ``host``. A span with no HTTP attributes at all (a background
    job, a manual root span) matches only a rule whose three patterns are ``*``, so an
    HTTP-specific rule such as "never sample GET /healthcheck" cannot swallow it.
    """
    checks: list[tuple[int, Callable[[str], bool]]] = []
    host_matcher = compile_wildcard(host)
    if host_matcher is not None:
        checks.append((HOST, _with_port_fallback(host_matcher)))
    for index, pattern in ((METHOD, method), (PATH, path)):
        matcher = compile_wildcard(pattern)
        if matcher is not None:
            checks.append((index, matcher))
    if not checks:
        return lambda request: True
    if len(checks) == 1:
        ((index, matcher),) = checks

        def matches_one(request: HttpRequest | None) -> bool:
            if request is None:
                return False
            value = request[index]
            return value is None or matcher(value)

        return matches_one
    frozen = tuple(checks)

    def matches(request: HttpRequest | None) -> bool:
        if request is None:
            return False
        for index, matcher in frozen:
            value = request[index]
            if value is not None and not matcher(value):
                return False
        return True

    return matches


def _with_port_fallback(matcher: Callable[[str], bool]) -> Callable[[str], bool]:
    def matches(host: str) -> bool:
        if matcher(host):
            return True
        name = strip_port(host)
        return name is not None and matcher(name)

    return matches


#: ``cloud.platform`` values of the OpenTelemetry resource conventions -> X-Ray origin
#: (the ``ServiceType`` a centralized rule names).
SERVICE_TYPES = {
    PLATFORM_EC2: ORIGIN_EC2,
    PLATFORM_ECS: ORIGIN_ECS,
    PLATFORM_EKS: ORIGIN_EKS,
    PLATFORM_BEANSTALK: ORIGIN_BEANSTALK,
    PLATFORM_LAMBDA: ORIGIN_LAMBDA,
}
