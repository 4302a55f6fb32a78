"""Browser safety for every HTTP listener: Host allow-list, Origin policy, content types, headers.

The collector listens on loopback and answers without credentials, so the browser is the only
way a stranger reaches it: a page on another site can send simple (no-preflight) POSTs to
127.0.0.1, and a DNS-rebinding page can even read the answers under its own name. Three checks
close that, each a pure function of the request headers:

- ``Host`` must name this collector: an IP literal (a rebinding page always has a DNS name),
  ``localhost``, or a name given with ``--allow-host``. Anything else is 403 before any work.
- ``Origin`` and ``Sec-Fetch-Site``, when a browser sends them, must say the request comes from
  the collector's own pages (the console). Non-browser clients (boto3, the CLI, SDKs, curl) send
  neither and are unaffected.
- A POST must carry the content type of its protocol (JSON for the X-Ray API, protobuf or JSON for
  OTLP/HTTP). ``text/plain``, form encodings and a missing type are what a page can send without
  a CORS preflight; refusing them means no simple-request CSRF, whatever a browser's Origin rules.
  Only a POST with no body at all may come without a type (botocore sends operations without
  input members, GetTraceSegmentDestination, that way): it carries nothing to forge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

#: ``Content-Security-Policy`` of every response. The console loads its scripts, styles and data
#: from its own origin only (no inline script or style element; CSSOM ``element.style`` writes
#: are not inline styles), its favicon is a ``data:`` image, and no page may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

#: Headers on every response, the API's JSON, static files and the errors of the HTTP layer.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    # No-cors reads (<script src>, <img src>) of API answers from other sites are refused too.
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

#: Media types of the X-Ray API bodies: what botocore (boto3, the AWS CLI, aws-xray-sdk's
#: poller) sends for X-Ray's rest-json protocol, what other AWS SDKs send for JSON protocols, and
#: plain JSON (the library's sampler, the console, curl with ``-H 'Content-Type: ...'``).
JSON_MEDIA_TYPES = frozenset(
    {"application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1"}
)

#: Names a Host header may carry besides IP literals and ``--allow-host`` names.
LOCAL_NAMES = frozenset({"localhost", "localhost."})

#: ``Sec-Fetch-Site`` values a browser sends for the console's own requests (and typed URLs).
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case, no parameters)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def host_name(host_header: str) -> str | None:
    """The name part of a ``Host`` header (``[::1]:2000`` -> ``::1``); None when malformed."""
    text = host_header.strip().lower()
    if not text:
        return None
    if text.startswith("["):
        name, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, sep, port = text.rpartition(":")
    if not sep:
        return text
    if ":" in name or not port.isdigit():
        return None
    return name


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class BrowserPolicy:
    """Which ``Host`` names this collector answers to; ``"*"`` among them turns the check off
    (behind a reverse proxy that checks names itself)."""

    allowed_names: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> BrowserPolicy:
        return cls(frozenset(name.strip().lower().strip("[]") for name in names if name.strip()))

    def host_allowed(self, host_header: str | None) -> bool:
        """True for a missing Host (HTTP/1.0 tools; browsers always send one), IP literals,
        ``localhost`` and the configured names, with or without a port."""
        if host_header is None:
            return True
        if "*" in self.allowed_names:
            return True
        name = host_name(host_header)
        if name is None:
            return False
        return name in LOCAL_NAMES or name in self.allowed_names or _is_ip_literal(name)

    @staticmethod
    def same_origin(origin: str | None, host_header: str | None, fetch_site: str | None) -> bool:
        """True unless a browser says the request comes from another origin.

        ``Origin`` must be this very host and port (what the console's own fetches carry), so a
        page on another port of 127.0.0.1 is as foreign as one on the internet; ``Origin: null``
        (sandboxed frames, ``file:`` pages) is foreign too.
        """
        if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
            return False
        if origin is None:
            return True
        if host_header is None:
            return False
        host = host_header.strip().lower()
        return origin.strip().lower() in (f"http://{host}", f"https://{host}")


__all__ = [
    "BrowserPolicy",
    "CONTENT_SECURITY_POLICY",
    "JSON_MEDIA_TYPES",
    "SECURITY_HEADERS",
    "host_name",
    "media_type",
]
