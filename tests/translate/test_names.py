"""``url_host``: the subsegment name of an HTTP call, found without parsing every whole URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from otel_xray.translate.names import url_host


def hostname_by_urlsplit(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@pytest.mark.parametrize(
    "url",
    [
        "http://inventory.internal:8081/items/7?fields=stock",
        "https://User:pw@Api.Example.com:8443/x?y=1#z",
        "http://[::1]:8080/",
        "http://[2001:db8::1]/p",
        "http://[::1/p",  # unbalanced bracket: urlsplit refuses it
        "http://ho\tst/p",  # urlsplit drops tabs and newlines
        "http://host\n/p",
        "http://host?next=/elsewhere",
        "http://host#frag/x",
        "https://",
        "http:///path",
        "http://a@b@c/",
        "http://ex\u2100ample.com/",  # NFKC-unsafe: urlsplit refuses it
        "HTTP://UPPER.example.com/",
        " http://leading.space/",
        "mysql://db.example.com:3306/shop",
        "//scheme-relative.example.com/x",
        "not a url",
    ],
)
def test_url_host_agrees_with_urlsplit(url: str) -> None:
    assert url_host(url) == hostname_by_urlsplit(url)


def test_url_host_of_many_urls_on_one_host() -> None:
    """Every request's URL is new; its host is not."""
    hosts = {url_host(f"http://inventory.internal:8081/items/{i}?page={i}") for i in range(3000)}
    assert hosts == {"inventory.internal"}


def test_url_host_stays_right_past_its_cache_bound() -> None:
    for i in range(3000):  # more authorities than the cache holds
        assert url_host(f"https://user@h{i}.example.com:8443/x?y=1") == f"h{i}.example.com"
