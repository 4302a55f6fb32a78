"""The sql block from old and stable database conventions (translation.md §14, test-cases.md §5)."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from tests.translate.spans import make_span, one


def db_span(attributes: dict[str, Any], name: str = "users.findUnique") -> dict[str, Any]:
    return one(make_span(name, kind=SpanKind.CLIENT, attributes=attributes))


def test_old_keys_with_connection_string() -> None:
    doc = db_span(
        {
            "db.system": "mysql",
            "db.name": "customers",
            "db.statement": "SELECT * FROM user WHERE user_id = ?",
            "db.user": "readonly_user",
            "db.connection_string": "mysql://db.example.com:3306",
            "net.peer.name": "db.example.com",
            "net.peer.port": "3306",
            "enterprise.app.id": "com.example.app",
        }
    )
    assert doc["sql"] == {
        "url": "mysql://db.example.com:3306/customers",
        "connection_string": "mysql://db.example.com:3306/customers",
        "database_type": "mysql",
        "user": "readonly_user",
        "sanitized_query": "SELECT * FROM user WHERE user_id = ?",
    }
    assert doc["name"] == "customers@db.example.com"
    assert doc["namespace"] == "remote"
    assert "http" not in doc and "cause" not in doc and "annotations" not in doc
    assert doc["metadata"]["default"]["enterprise.app.id"] == "com.example.app"
    assert doc["metadata"]["default"]["net.peer.name"] == "db.example.com"


def test_stable_keys_with_server_address() -> None:
    doc = db_span(
        {
            "db.system.name": "postgresql",
            "db.namespace": "customers",
            "db.query.text": "SELECT 1",
            "server.address": "db.example.com",
            "server.port": 5432,
        }
    )
    assert doc["sql"] == {
        "url": "db.example.com:5432/customers",
        "database_type": "postgresql",
        "sanitized_query": "SELECT 1",
    }
    assert doc["name"] == "customers@db.example.com"
    assert "db.query.text" not in doc.get("metadata", {}).get("default", {})


def test_without_location_the_url_is_the_span_name() -> None:
    doc = db_span({"db.system": "postgresql", "db.name": "customers"})
    assert doc["sql"]["url"] == "users.findUnique"
    assert "connection_string" not in doc["sql"]


def test_sqlite_spans_from_the_instrumentation() -> None:
    doc = db_span({"db.system": "sqlite", "db.statement": "create table t (a int)"}, name="create")
    assert doc["name"] == "sqlite"
    assert doc["sql"] == {
        "url": "create",
        "database_type": "sqlite",
        "sanitized_query": "create table t (a int)",
    }


def test_non_sql_database_keeps_its_keys_as_metadata() -> None:
    attributes = {
        "db.system": "redis",
        "db.name": "0",
        "db.statement": "GET k",
        "net.peer.name": "cache",
    }
    doc = db_span(attributes)
    assert "sql" not in doc
    assert doc["name"] == "0@cache"
    assert doc["metadata"]["default"] == attributes
