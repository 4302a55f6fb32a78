"""Spans describing the same calls as real X-Ray documents in the corpus translate to the same
fields (tests/data/corpus, see its SOURCE.md)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

from tests.support.schema import CORPUS
from tests.translate.spans import make_span, one


def corpus(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CORPUS / name).read_text())
    return document


def test_server_sample_http_block() -> None:
    expected = corpus("serverSample.txt")
    span = make_span(
        "GET /",
        kind=SpanKind.SERVER,
        parent=None,
        resource=Resource({"service.name": expected["name"]}),
        attributes={
            "http.method": "GET",
            "http.url": "http://localhost:8000/",
            "http.client_ip": "127.0.0.1",
            "http.user_agent": "Go-http-client/1.1",
            "http.status_code": 200,
        },
    )
    doc = one(span)
    assert doc["name"] == expected["name"]
    assert doc["http"] == expected["http"]


def test_independent_subsegment_sample() -> None:
    expected = corpus("indepSubsegment.txt")
    span = make_span(
        "POST",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": "POST",
            "url.full": "https://api.example.com/health",
            "http.response.status_code": 200,
            "http.response.body.size": 861,
        },
    )
    doc = one(span)
    for key in ("name", "type", "namespace", "http"):
        assert doc[key] == expected[key], key


def test_sql_subsegment_sample() -> None:
    expected = corpus("indepSubsegmentWithSql.txt")
    sql = expected["sql"]
    span = make_span(
        "SELECT ebdb.customers",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.name": "ebdb",
            "db.connection_string": "jdbc:postgresql://aawijb5u25wdoy.cpamxznpdoq8.us-west-2.rds.amazonaws.com:5432",
            "db.user": sql["user"],
            "db.statement": sql["sanitized_query"],
        },
    )
    doc = one(span)
    for key in ("name", "type", "namespace"):
        assert doc[key] == expected[key], key
    assert sql["url"].startswith(doc["sql"]["url"])  # the corpus URL adds a query string
    assert (doc["sql"]["user"], doc["sql"]["sanitized_query"]) == (
        sql["user"],
        sql["sanitized_query"],
    )
