from __future__ import annotations

from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from opentelemetry.instrumentation._semconv import _StabilityMode
from opentelemetry.instrumentation.wsgi import collect_request_attributes

from otel_xray.sampling.matching import (
    PATH,
    compile_http_matcher,
    compile_wildcard,
    request_from_attributes,
    strip_port,
)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("*", "anything at all", True),
        ("", "", True),
        ("", "x", False),
        ("/api/*", "/api/", True),
        ("/api/*", "/api/orders/7", True),
        ("/api/*", "/api", False),
        ("GET", "get", True),
        ("get", "GET", True),
        ("/HealthCheck", "/healthcheck", True),
        ("/healthcheck", "/healthcheck/deep", False),
        ("/healthcheck", "/x/healthcheck", False),
        ("?", "a", True),
        ("?", "", False),
        ("?", "ab", False),
        ("a?c", "abc", True),
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "example.com", False),
        ("*/orders/*/items", "/v1/orders/7/items", True),
        ("*/orders/*/items", "/v1/orders/7/item", False),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXbY", False),
        ("/x.y", "/x-y", False),  # regex metacharacters are literal
        ("/a+b", "/a+b", True),
        ("*", "line\nbreak", True),
        ("a*", "a\nb", True),
    ],
)
def test_wildcards_match_the_whole_string_case_insensitively(
    pattern: str, text: str, expected: bool
) -> None:
    matcher = compile_wildcard(pattern)  # None: the pattern matches everything
    assert (matcher is None or matcher(text.lower())) is expected


def _environ(path: str, query: str = "", host: str = "shop.example.com:8080") -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": path + (f"?{query}" if query else ""),
        "HTTP_HOST": host,
        "SERVER_NAME": "shop.example.com",
        "SERVER_PORT": "8080",
    }
    setup_testing_defaults(environ)
    return environ


@pytest.mark.parametrize("mode", [_StabilityMode.DEFAULT, _StabilityMode.HTTP])
def test_request_facts_from_what_wsgi_instrumentation_passes_at_span_start(
    mode: _StabilityMode,
) -> None:
    attributes = collect_request_attributes(_environ("/Orders/7", "page=2"), mode)
    assert request_from_attributes(attributes) == ("shop.example.com:8080", "get", "/orders/7")


def test_old_semconv_url_fallback_when_no_raw_uri() -> None:
    environ = _environ("/healthcheck")
    del environ["RAW_URI"]
    attributes = collect_request_attributes(environ, _StabilityMode.DEFAULT)
    assert "http.target" not in attributes
    request = request_from_attributes(attributes)
    assert request is not None and request[PATH] == "/healthcheck"


def test_client_span_attributes_url_full() -> None:
    request = request_from_attributes(
        {"http.request.method": "POST", "url.full": "https://u:p@api.example.com/v1/x?y=1"}
    )
    assert request == ("api.example.com", "post", "/v1/x")


def test_non_http_span_has_no_request() -> None:
    assert request_from_attributes(None) is None
    assert request_from_attributes({}) is None
    assert request_from_attributes({"messaging.system": "sqs", "code.function": "run"}) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[::1]:5000", "::1"),
        ("example.com:8080", "example.com"),
        ("example.com", None),
        ("::1", None),
        ("[::1]", "::1"),
    ],
)
def test_port_is_stripped_for_host_matching(host: str, expected: str | None) -> None:
    assert strip_port(host) == expected


def test_host_rule_matches_host_with_or_without_port() -> None:
    matches = compile_http_matcher("*.example.com", "*", "*")
    assert matches(("api.example.com:8443", "get", "/"))
    assert matches(("api.example.com", "get", "/"))
    assert not matches(("api.example.org:8443", "get", "/"))
    assert matches((None, "get", "/"))  # no host attribute: implicit match
    assert not matches(None)  # not an HTTP span


def test_http_rule_does_not_match_non_http_span_but_catch_all_does() -> None:
    assert not compile_http_matcher("*", "GET", "/healthcheck")(None)
    assert compile_http_matcher("*", "*", "*")(None)
    assert compile_http_matcher("*", "GET", "/healthcheck")((None, "get", None))
