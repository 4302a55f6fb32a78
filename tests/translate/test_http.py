"""The http block from old and stable HTTP conventions (translation.md §8, test-cases.md §2)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event
from opentelemetry.trace import SpanKind

from otel_xray.translate.http import is_ip
from tests.translate.spans import make_span, one


def http_of(kind: SpanKind, attributes: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return one(make_span(kind=kind, attributes=attributes, **kwargs))["http"]


SERVER, CLIENT = SpanKind.SERVER, SpanKind.CLIENT


@pytest.mark.parametrize(
    ("kind", "attributes", "url"),
    [
        (
            CLIENT,
            {"http.method": "GET", "http.url": "https://api.example.com/users/junit"},
            "https://api.example.com/users/junit",
        ),
        (
            CLIENT,
            {"http.request.method": "GET", "url.full": "https://api.example.com/users/junit"},
            "https://api.example.com/users/junit",
        ),
        (
            CLIENT,
            {"http.scheme": "https", "http.host": "api.example.com", "http.target": "/users/junit"},
            "https://api.example.com/users/junit",
        ),
        (
            CLIENT,
            {
                "url.scheme": "https",
                "http.host": "api.example.com",
                "url.path": "/users/junit",
                "url.query": "v=1",
            },
            "https://api.example.com/users/junit?v=1",
        ),
        (
            CLIENT,
            {
                "http.scheme": "http",
                "net.peer.name": "kb234.example.com",
                "net.peer.port": 8080,
                "http.target": "/users/junit",
            },
            "http://kb234.example.com:8080/users/junit",
        ),
        (
            CLIENT,
            {
                "url.scheme": "http",
                "net.peer.name": "kb234.example.com",
                "net.peer.port": 8080,
                "url.query": "users=junit",
            },
            "http://kb234.example.com:8080/?users=junit",
        ),
        (
            CLIENT,
            {
                "http.scheme": "http",
                "net.peer.ip": "10.8.17.36",
                "net.peer.port": "8080",
                "http.target": "/users/junit",
            },
            "http://10.8.17.36:8080/users/junit",
        ),
        (
            CLIENT,
            {
                "http.scheme": "https",
                "net.peer.ip": "2001:db8:85a3::8a2e:370:7334",
                "net.peer.port": "443",
                "http.target": "/users/junit",
            },
            "https://[2001:db8:85a3::8a2e:370:7334]/users/junit",
        ),
        (
            SERVER,
            {"http.scheme": "https", "http.host": "api.example.com", "http.target": "/users/junit"},
            "https://api.example.com/users/junit",
        ),
        (
            SERVER,
            {
                "url.scheme": "https",
                "server.address": "api.example.com",
                "url.path": "/users/junit",
            },
            "https://api.example.com/users/junit",
        ),
        (
            SERVER,
            {
                "server.address": "localhost",
                "url.scheme": "http",
                "url.query": "?version=test",
                "url.path": "/api",
            },
            "http://localhost/api?version=test",
        ),
        (
            SERVER,
            {
                "http.scheme": "https",
                "http.server_name": "api.example.com",
                "net.host.port": 443,
                "http.target": "/users/junit",
            },
            "https://api.example.com/users/junit",
        ),
        (
            SERVER,
            {
                "url.scheme": "https",
                "server.address": "api.example.com",
                "server.port": 443,
                "url.query": "users=junit",
            },
            "https://api.example.com/?users=junit",
        ),
        (
            SERVER,
            {
                "http.method": "GET",
                "host.name": "kb234.example.com",
                "net.host.port": 8080,
                "http.target": "/users/junit",
            },
            "http://kb234.example.com:8080/users/junit",
        ),
        (
            SERVER,
            {
                "url.scheme": "http",
                "server.address": "kb234.example.com",
                "server.port": 8080,
                "url.path": "/users/junit",
            },
            "http://kb234.example.com:8080/users/junit",
        ),
        # The WSGI instrumentation's stable server.address comes from the Host header, port included.  # noqa: E501
        (
            SERVER,
            {
                "url.scheme": "http",
                "server.address": "127.0.0.1:5000",
                "server.port": 5000,
                "url.path": "/p",
            },
            "http://127.0.0.1:5000/p",
        ),
    ],
)
def test_request_url(kind: SpanKind, attributes: dict[str, Any], url: str) -> None:
    """The Collector's cases, which keep the query string: ``keep_url_query`` opts back in."""
    document = one(make_span(kind=kind, attributes=attributes), keep_url_query=True)
    assert document["http"]["request"]["url"] == url


@pytest.mark.parametrize(
    ("kind", "attributes", "url"),
    [
        (
            CLIENT,
            {"url.full": "https://api.example.com/login?token=s3cr3t"},
            "https://api.example.com/login",
        ),
        (CLIENT, {"http.url": "http://api.example.com/a#frag?x=1"}, "http://api.example.com/a"),
        (
            CLIENT,
            {"http.url": "http://api.example.com/a?email=a@b.c#top"},
            "http://api.example.com/a",
        ),
        (
            SERVER,
            {"http.scheme": "https", "http.host": "shop.example.com", "http.target": "/cart?id=7"},
            "https://shop.example.com/cart",
        ),
        (
            SERVER,
            {
                "url.scheme": "http",
                "server.address": "localhost",
                "url.path": "/api",
                "url.query": "version=test",
            },
            "http://localhost/api",
        ),
        (
            CLIENT,
            {
                "url.scheme": "http",
                "net.peer.name": "kb234.example.com",
                "url.query": "users=junit",
            },
            "http://kb234.example.com/",
        ),
    ],
)
def test_request_url_leaves_out_query_and_fragment_by_default(
    kind: SpanKind, attributes: dict[str, Any], url: str
) -> None:
    document = one(make_span(kind=kind, attributes=attributes))
    assert document["http"]["request"]["url"] == url
    # The query keys are used up: the secret does not come back as metadata either.
    leftovers = document.get("metadata", {}).get("default", {})
    assert not {"url.full", "http.url", "http.target", "url.query"} & set(leftovers)


def test_not_enough_for_a_url_in_any_convention() -> None:
    event = Event(
        "message",
        {"message.type": "RECEIVED", "messaging.message_payload_size_bytes": 12452},
    )
    for attributes in (
        {
            "http.method": "GET",
            "http.scheme": "https",
            "http.client_ip": "192.168.15.32",
            "http.user_agent": "ua",
            "http.target": "/users/junit",
            "net.host.port": 443,
            "net.peer.port": 8080,
            "http.status_code": 200,
        },
        {
            "http.request.method": "GET",
            "url.scheme": "https",
            "client.address": "192.168.15.32",
            "user_agent.original": "ua",
            "url.path": "/users/junit",
            "server.port": 443,
            "http.response.status_code": 200,
        },
    ):
        http = http_of(SERVER, attributes, events=[event])
        assert "url" not in http["request"]
        assert http["request"]["client_ip"] == "192.168.15.32"
        assert http["request"]["method"] == "GET"
        assert http["request"]["user_agent"] == "ua"
        assert http["response"] == {"status": 200, "content_length": 12452}


def test_server_client_ip_from_peer_is_not_forwarded() -> None:
    http = http_of(SERVER, {"http.method": "GET", "net.peer.ip": "10.0.0.1"})
    assert http["request"]["client_ip"] == "10.0.0.1"
    assert "x_forwarded_for" not in http["request"]


def test_http_client_ip_is_the_forwarded_client() -> None:
    request = http_of(
        SERVER, {"url.full": "http://a/", "http.client_ip": "1.2.3.4", "net.peer.ip": "10.8.17.36"}
    )["request"]
    assert (request["client_ip"], request["x_forwarded_for"]) == ("1.2.3.4", True)


def test_client_address_differing_from_peer_is_forwarded() -> None:
    attributes = {
        "url.full": "http://a/",
        "client.address": "1.2.3.4",
        "network.peer.address": "10.0.0.9",
    }
    request = http_of(SERVER, attributes)["request"]
    assert (request["client_ip"], request["x_forwarded_for"]) == ("1.2.3.4", True)


def test_client_address_equal_to_peer_is_not_forwarded() -> None:
    attributes = {
        "url.full": "http://a/",
        "client.address": "192.168.15.32",
        "network.peer.address": "192.168.15.32",
    }
    request = http_of(SERVER, attributes)["request"]
    assert request["client_ip"] == "192.168.15.32"
    assert "x_forwarded_for" not in request


def test_client_address_alone_is_not_claimed_forwarded() -> None:
    # The WSGI instrumentation sets client.address from the socket peer in stable mode.
    request = http_of(SERVER, {"url.full": "http://a/", "client.address": "192.168.15.32"})[
        "request"
    ]
    assert request["client_ip"] == "192.168.15.32"
    assert "x_forwarded_for" not in request


def test_hostname_addresses_stay_in_metadata() -> None:
    doc = one(
        make_span(
            kind=SERVER,
            attributes={
                "url.full": "http://a/",
                "client.address": "api.example.com",
                "network.peer.address": "api.example.com",
            },
        )
    )
    assert "client_ip" not in doc["http"]["request"]
    assert doc["metadata"]["default"]["client.address"] == "api.example.com"
    assert doc["metadata"]["default"]["network.peer.address"] == "api.example.com"


def test_client_span_peer_address_is_not_a_client_ip() -> None:
    request = http_of(
        CLIENT,
        {"url.full": "http://a/", "network.peer.address": "10.0.0.9", "net.peer.ip": "10.0.0.9"},
    )["request"]
    assert "client_ip" not in request


def test_status_only_span_has_status_and_no_invented_length() -> None:
    assert http_of(CLIENT, {"http.status_code": 200}) == {
        "request": {},
        "response": {"status": 200},
    }


@pytest.mark.parametrize("key", ["http.response.body.size", "http.response_content_length"])
def test_content_length_from_attributes(key: str) -> None:
    assert http_of(CLIENT, {"http.status_code": 200, key: 861})["response"]["content_length"] == 861


def test_string_status_code_is_read_as_a_number() -> None:
    doc = one(make_span(kind=CLIENT, attributes={"http.status_code": "503"}))
    assert doc["http"]["response"]["status"] == 503
    assert doc["fault"] is True


def test_garbage_status_code_is_left_out() -> None:
    assert http_of(CLIENT, {"http.method": "GET", "http.status_code": "abc"})["response"] == {}


def test_http_keys_are_consumed_and_other_keys_kept() -> None:
    doc = one(
        make_span(
            kind=SERVER, attributes={"http.method": "GET", "http.route": "/x", "user.id": "junit"}
        )
    )
    assert doc["metadata"]["default"]["http.route"] == "/x"
    assert doc["metadata"]["default"]["user.id"] == "junit"
    assert "http.method" not in doc["metadata"]["default"]


def test_network_keys_without_http_stay_in_metadata() -> None:
    doc = one(make_span(kind=CLIENT, attributes={"server.address": "cache", "server.port": 6379}))
    assert "http" not in doc
    assert doc["metadata"]["default"] == {"server.address": "cache", "server.port": 6379}


def test_long_fields_are_clipped_to_schema_limits() -> None:
    url = "https://api.example.com/" + "a" * 400
    request = http_of(CLIENT, {"url.full": url, "user_agent.original": "u" * 300})["request"]
    assert request["url"] == url[:250]
    assert len(request["user_agent"]) == 250


def test_no_http_block_without_http_keys() -> None:
    document = one(make_span(kind=CLIENT, attributes={"net.peer.name": "x"}))
    assert "http" not in document


@pytest.mark.parametrize("kind", [SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER])
def test_http_block_for_any_kind(kind: SpanKind) -> None:
    assert http_of(kind, {"http.method": "POST"})["request"]["method"] == "POST"


@pytest.mark.parametrize(
    "value",
    [
        "10.1.2.3",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4.5",
        " 1.2.3.4",
        "1.2.3.4\x00",
        "::",
        "::1",
        "2001:db8::1",
        "::ffff:1.2.3.4",
        "fe80::1%eth0",
        "1::2::3",
        "12345::1",
        "[::1]",
        "1:2:3:4:5:6:7:8:9",
        "example.com",
        "",
    ],
)
def test_is_ip_accepts_exactly_what_ipaddress_accepts(value: str) -> None:
    try:
        ipaddress.ip_address(value)
        expected = True
    except ValueError:
        expected = False
    assert is_ip(value) is expected
