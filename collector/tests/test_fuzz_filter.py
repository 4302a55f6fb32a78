"""Fuzz: any string is a FilterExpression that compiles (and evaluates without error) or an
``InvalidRequestException`` (400); never another exception (issue 15: RecursionError)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otel_xray_collector.api.errors import ApiError
from otel_xray_collector.api.filter import compile_filter, parse_entity_selector

from .test_filter_expressions import FACTS

pytestmark = pytest.mark.fuzz

# Pieces of the grammar, so that examples get past the first token.
TOKENS = [
    "(", ")", "{", "}", "!", "not", "and", "or", ",", ":", "=", "!=", "<", "<=", ">", ">=",
    "ok", "fault", "error", "throttle", "root", "responsetime", "duration", "http.status",
    "http.url", "user", "name", "annotation.tier", "annotation.items", "contains",
    "beginswith", "endswith", "service", "edge", "id", "name:", "type:", "true", "false",
    '"frontend"', '"a\\"b"', '"', "1", "-2.5e3", "1e999", "group.name",
]  # fmt: skip


def check(source: str) -> None:
    try:
        predicate = compile_filter(source)
    except ApiError as exc:
        assert exc.status == 400 and exc.error_type == "InvalidRequestException"
        return
    assert predicate(FACTS) in (True, False)
    assert predicate({}) in (True, False)


@given(st.text(max_size=300))
def test_any_text(source: str) -> None:
    check(source)


@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_any_sequence_of_grammar_tokens(tokens: list[str]) -> None:
    check(" ".join(tokens))


@given(st.integers(0, 5000), st.sampled_from(["(", "!", "not ", 'service("a") {', "( !"]))
def test_deep_prefixes(depth: int, opener: str) -> None:
    check(opener * depth + "ok" + ")" * depth)


@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_entity_selectors(tokens: list[str]) -> None:
    try:
        parse_entity_selector(" ".join(tokens))
    except ApiError as exc:
        assert exc.status == 400
