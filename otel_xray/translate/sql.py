"""The ``sql`` block, for SQL databases only, from the old ``db.*`` keys and the stable ones.

The Collector reads only the pre-1.26 keys (``db.system``, ``db.name``, ``db.statement``); the
stable names (``db.system.name``, ``db.namespace``, ``db.query.text``) are what current
instrumentations emit with ``OTEL_SEMCONV_STABILITY_OPT_IN=database``, so both are read, the
stable one first. A non-SQL store (Redis, DynamoDB, ...) keeps its ``db.*`` keys as metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SQL_SYSTEMS = frozenset(
    {
        "db2",
        "derby",
        "hive",
        "mariadb",
        "mssql",
        "mysql",
        "oracle",
        "postgresql",
        "sqlite",
        "teradata",
        "other_sql",
        "h2",
        "hsqldb",
        "cockroachdb",
        "redshift",
        "trino",
        "ibm.db2",
        "microsoft.sql_server",
        "oracle.db",
    }
)
_CONSUMED = (
    "db.system",
    "db.system.name",
    "db.name",
    "db.namespace",
    "db.statement",
    "db.query.text",
    "db.user",
    "db.connection_string",
)


def has_db_system(keys: Iterable[str]) -> bool:
    return "db.system" in keys or "db.system.name" in keys


def _value(attrs: Mapping[str, Any], new_key: str, old_key: str) -> Any:
    value = attrs.get(new_key)
    if value is None or value == "":
        value = attrs.get(old_key)
    return None if value == "" else value


def consumed_sql_keys(keys: Iterable[str]) -> frozenset[str]:
    """The keys an SQL span's ``sql`` block takes (whenever ``sql_block`` returns one)."""
    return frozenset(_CONSUMED).intersection(keys)


def sql_block(attrs: Mapping[str, Any], span_name: str) -> dict[str, Any] | None:
    """The ``sql`` block of an SQL span, or None; reads, never changes, ``attrs``. When it
    returns a block, the span's ``consumed_sql_keys`` are used up.

    ``url`` is where the database is, as the X-Ray SDKs write it (a JDBC URL, say):
    ``db.connection_string`` + ``/<database>``, else the server the span names
    (``server.address``/``net.peer.name`` and port) + ``/<database>``, else the span name (the
    Collector's choice for every span). ``connection_string`` is written only when the span
    had one, instead of the Collector's invented ``localhost/<database>``.
    """
    system = _value(attrs, "db.system.name", "db.system")
    if system not in SQL_SYSTEMS:
        return None
    database = _value(attrs, "db.namespace", "db.name")
    statement = _value(attrs, "db.query.text", "db.statement")
    user = attrs.get("db.user")
    connection = attrs.get("db.connection_string")

    location = connection
    if not location:
        host = attrs.get("server.address") or attrs.get("net.peer.name")
        if host:
            port = attrs.get("server.port") or attrs.get("net.peer.port")
            location = f"{host}:{port}" if port else str(host)
    if location:
        url = f"{location}/{database}" if database is not None else str(location)
    else:
        url = span_name
    block: dict[str, Any] = {"url": url}
    if connection:
        block["connection_string"] = url
    block["database_type"] = str(system)
    if user:
        block["user"] = str(user)
    if statement is not None:
        block["sanitized_query"] = str(statement)
    return block
