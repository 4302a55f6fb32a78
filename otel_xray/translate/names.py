"""Segment names and annotation keys: what X-Ray accepts, and which attribute names a span.

X-Ray rejects a whole document whose ``name`` breaks its rules, so every name we emit is
sanitised, not only the span-name fallback the Collector cleans. Names repeat endlessly (one per
service, host or table), so the cleaning is memoised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

MAX_NAME_LENGTH = 200
MAX_ANNOTATION_KEY_LENGTH = 500
FALLBACK_NAME = "span"

_NAME_SYMBOLS = frozenset(" _.:/%&#=+-@0123456789")
_KEY_CHARS_WITH_DOT = re.compile(r"[^0-9A-Za-z.]")
_KEY_CHARS = re.compile(r"[^0-9A-Za-z]")

AWS_API = "aws-api"


@lru_cache(maxsize=2048)
def sanitize_name(name: str) -> str:
    """Keep Unicode letters, ASCII digits, space and ``_ . : / % & # = + - @``; cap at 200.

    The cap holds in characters (the published schema) and in UTF-8 bytes (what the Collector
    enforces), cutting on a character boundary so no character is ever split.
    """
    cleaned = "".join(c for c in name if c in _NAME_SYMBOLS or c.isalpha())
    if len(cleaned) > MAX_NAME_LENGTH:
        cleaned = cleaned[:MAX_NAME_LENGTH]
    encoded = cleaned.encode("utf-8")
    if len(encoded) > MAX_NAME_LENGTH:
        cleaned = encoded[:MAX_NAME_LENGTH].decode("utf-8", "ignore")
    return cleaned or FALLBACK_NAME


@lru_cache(maxsize=4096)
def annotation_key(key: str, allow_dot: bool) -> str:
    """Every character outside ``[0-9A-Za-z]`` (and ``.`` when allowed) becomes ``_``."""
    pattern = _KEY_CHARS_WITH_DOT if allow_dot else _KEY_CHARS
    return pattern.sub("_", key)[:MAX_ANNOTATION_KEY_LENGTH]


def trim_aws_sdk_prefix(service: str) -> str:
    """``AWS.SDK.DynamoDb`` / ``AWS::DynamoDB`` name the service; the prefix is noise."""
    if service.startswith("AWS.SDK."):
        return service[8:]
    if service.startswith("AWS::"):
        return service[5:]
    return service


def url_host(url: str) -> str:
    """The host of a URL, as the X-Ray SDK names an HTTP client subsegment ("" if none):
    ``urlsplit(url).hostname``.

    Client URLs differ per request (ids in paths, queries) while their authority repeats, so
    a cache keyed by the URL misses on every span and ``urlsplit`` costs more than the rest of
    the name. An ``http``/``https`` URL's authority is cut out with one ``split`` and its host
    looked up by authority; other URLs take ``urlsplit`` as they are.
    """
    parts = url.split("/", 3)  # "http://authority/rest" -> ["http:", "", "authority", "rest"]
    if len(parts) > 2 and parts[1] == "" and parts[0] in _WEB_SCHEMES:
        authority = parts[2]
        if "?" not in authority and "#" not in authority:
            host = _HOSTS.get(authority)
            return host if host is not None else _authority_host(authority)
    return _parsed_host(url)


_WEB_SCHEMES = frozenset({"http:", "https:"})
_HOSTS: dict[str, str] = {}  # authority -> host, read directly on the per-span path
_HOSTS_LIMIT = 1024


def _authority_host(authority: str) -> str:
    # "//" makes urlsplit read the authority exactly as it would inside the whole URL
    # (user info, port, brackets, the characters it drops or refuses).
    host = _parsed_host("//" + authority)
    if len(_HOSTS) >= _HOSTS_LIMIT:  # an unbounded variety of hosts: start over
        _HOSTS.clear()
    _HOSTS[authority] = host
    return host


def _parsed_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@lru_cache(maxsize=256)
def connection_string_host(connection_string: str) -> str:
    """Host named by a DB connection string such as ``jdbc:mysql://db.example.com:3306``."""
    if connection_string.startswith("jdbc:"):
        connection_string = connection_string[5:]
    if "//" not in connection_string:
        return ""
    return url_host(connection_string)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# Every key ``dependency_name`` may read, in the order it reads them.
_NAME_KEYS = (
    "aws.remote.service",
    "peer.service",
    "aws.service",
    "db.name",
    "db.namespace",
    "rpc.service",
    "http.host",
    "server.address",
    "net.peer.name",
    "url.full",
    "http.url",
    "db.system",
    "db.system.name",
)
# Keys whose non-empty string value is the name as it is.
_PLAIN_NAME_KEYS = frozenset(
    {
        "peer.service",
        "rpc.service",
        "http.host",
        "server.address",
        "net.peer.name",
        "db.system",
        "db.system.name",
    }
)


#: Steps of a name plan (see ``name_candidates``): how the value of one key is read.
_PLAIN, _URL, _DATABASE, _REMOTE, _AWS_SERVICE = range(5)
_URL_KEYS = frozenset({"url.full", "http.url"})
_DATABASE_KEYS = frozenset({"db.name", "db.namespace"})


def _step(key: str) -> int:
    if key in _PLAIN_NAME_KEYS:
        return _PLAIN
    if key in _URL_KEYS:
        return _URL
    if key in _DATABASE_KEYS:
        return _DATABASE
    return _REMOTE if key == "aws.remote.service" else _AWS_SERVICE


def name_candidates(keys: Iterable[str]) -> tuple[tuple[int, str], ...]:
    """The name plan for a key set: the keys among ``keys`` that can name a subsegment, in
    priority order, each with the step that reads it. Depends only on the key set, so callers
    cache it per attribute-key layout; the per-span loop then compares small ints instead of
    testing each key against every kind, and skips absent keys. The database and URL steps
    read both of their keys themselves, so only the first key of each is planned."""
    present = frozenset(keys)
    plan: list[tuple[int, str]] = []
    planned: set[int] = set()
    for key in _NAME_KEYS:
        if key in present:
            step = _step(key)
            if step in (_URL, _DATABASE):
                if step in planned:
                    continue
                planned.add(step)
            plan.append((step, key))
    return tuple(plan)


def dependency_name(
    attrs: Mapping[str, Any],
    remote_kind: bool,
    aws_sdk: bool,
    candidates: tuple[tuple[int, str], ...] | None = None,
) -> tuple[str | None, bool]:
    """The name of a subsegment: the thing the span talks to (unsanitised), and whether it
    came from ``aws.service`` (which makes the namespace ``aws``).

    Order (first non-empty wins): ``aws.remote.service`` for client/producer/consumer spans,
    ``peer.service``, ``aws.service``, database name (``db.name``/``db.namespace``) with
    ``@host``, ``rpc.service``, ``http.host``, ``server.address``, ``net.peer.name``, the host of
    ``url.full``/``http.url``, the database system. ``None`` means: use the span name.
    ``candidates`` is ``name_candidates(attrs)`` when the caller already knows it.
    """
    if candidates is None:
        candidates = name_candidates(attrs)
    get = attrs.get
    for step, key in candidates:
        if step == _PLAIN:
            value = get(key)
            if isinstance(value, str) and value:
                return value, False
        elif step == _URL:  # url.full, else http.url: only the first non-empty URL counts
            url = get("url.full")
            if not isinstance(url, str) or not url:
                url = get("http.url")
            if isinstance(url, str) and url:
                host = url_host(url)
                if host:
                    return host, False
        elif step == _DATABASE:
            db_name = get("db.name")
            if db_name is None:
                db_name = get("db.namespace")
            if db_name is not None and db_name != "":
                db_name = str(db_name)
                connection = get("db.connection_string")
                host = connection_string_host(connection) if isinstance(connection, str) else ""
                if not host:
                    host = _text(get("server.address")) or _text(get("net.peer.name"))
                return (f"{db_name}@{host}" if host else db_name), False
        elif step == _REMOTE:
            remote = _text(get(key)) if remote_kind else ""
            if remote:
                return (trim_aws_sdk_prefix(remote) if aws_sdk else remote), False
        else:  # aws.service
            aws_service = _text(get(key))
            if aws_service:
                return aws_service, True
    return None, False
