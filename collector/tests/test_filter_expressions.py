"""The FilterExpression subset: what each form matches, and errors that point at the problem."""

from __future__ import annotations

from typing import Any

import pytest
from otel_xray_collector.api.errors import ApiError
from otel_xray_collector.api.filter import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING,
    compile_filter,
    parse_entity_selector,
    tokenize,
)


def node(name: str, node_type: str | None = None, **flags: Any) -> dict[str, Any]:
    base = {
        "n": name,
        "t": node_type,
        "a": None,
        "root": False,
        "inferred": False,
        "fault": False,
        "error": False,
        "throttle": False,
        "ok": True,
        "rt": 0.1,
        "http": {},
        "partial": False,
    }
    base.update(flags)
    if flags.get("fault") or flags.get("error") or flags.get("throttle"):
        base["ok"] = False
    return base


FACTS: dict[str, Any] = {
    "fault": True,
    "error": False,
    "throttle": False,
    "ok": False,
    "rt": 1.5,
    "duration": 2.5,
    "partial": False,
    "inferred": True,
    "name": "frontend",
    "http": {
        "HttpURL": "http://shop.example/cart?id=7",
        "HttpMethod": "POST",
        "HttpStatus": 500,
        "UserAgent": "curl/8.0",
        "ClientIp": "10.1.2.3",
    },
    "users": ["alice"],
    "ann": {"tier": ["gold"], "items": [3], "vip": [True], "ratio": [0.5]},
    "nodes": [
        node(
            "frontend",
            "AWS::EC2::Instance",
            root=True,
            fault=True,
            rt=1.5,
            http={"HttpStatus": 500},
        ),
        node("backend", None, error=True, rt=0.4),
        node("orders", "AWS::DynamoDB::Table", inferred=True, throttle=True, rt=0.01),
    ],
    "edges": [
        {
            "s": ["frontend", "client", None],
            "d": ["frontend", "AWS::EC2::Instance", None],
            "fault": True,
            "error": False,
            "throttle": False,
            "ok": False,
            "rt": 1.5,
        },
        {
            "s": ["frontend", "AWS::EC2::Instance", None],
            "d": ["backend", None, None],
            "fault": False,
            "error": True,
            "throttle": False,
            "ok": False,
            "rt": 0.45,
        },
    ],
    "az": ["us-east-1a"],
    "iid": ["i-0abc"],
    "arn": ["arn:aws:ec2:us-east-1:1:instance/i-0abc"],
}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("", True),
        ("fault", True),
        ("FAULT", True),
        ("ok", False),
        ("!ok", True),
        ("not ok", True),
        ("fault = true", True),
        ("fault != true", False),
        ("error = false", True),
        ("responsetime > 1", True),
        ("responseTime >= 1.5", True),
        ("responsetime < 1", False),
        ("duration >= 2", True),
        ("duration <= 2", False),
        ("http.status = 500", True),
        ("http.status != 500", False),
        ('http.url CONTAINS "cart"', True),
        ('http.url contains "basket"', False),
        ('http.url BEGINSWITH "http://shop"', True),
        ('http.url ENDSWITH "id=7"', True),
        ('http.method = "POST"', True),
        ('http.method = "post"', False),
        ('http.method != "GET"', True),
        ('http.useragent CONTAINS "curl"', True),
        ('http.clientip = "10.1.2.3"', True),
        ("http.url", True),
        ('user = "alice"', True),
        ('user = "bob"', False),
        ('annotation.tier = "gold"', True),
        ('annotation.tier != "gold"', False),
        ("annotation.items = 3", True),
        ("annotation.items > 2", True),
        ("annotation.items = 4", False),
        ('annotation.items = "3"', False),
        ("annotation.vip = true", True),
        ("annotation.vip = false", False),
        ("annotation.ratio < 1", True),
        ("annotation.tier", True),
        ("annotation.missing", False),
        ('service("backend")', True),
        ('service("nope")', False),
        ("service()", True),
        ('service("backend") { error }', True),
        ('service("backend") { fault }', False),
        ('service("frontend") { fault and root }', True),
        ('service("orders") { throttle }', True),
        ('service(id(name: "orders", type: "AWS::DynamoDB::Table"))', True),
        ('service(id(name: "orders", type: "AWS::SQS::Queue"))', False),
        ('service("backend") { responsetime > 0.3 }', True),
        ('service("frontend") { http.status = 500 }', True),
        ('!service("nope")', True),
        ('edge("frontend", "backend")', True),
        ('edge("backend", "frontend")', False),
        ('edge("frontend", "backend") { error }', True),
        ('edge("frontend", "backend") { responsetime > 1 }', False),
        ("fault and error", False),
        ("fault or error", True),
        ("fault AND (error OR throttle)", False),
        ("fault AND !(error OR throttle)", True),
        ("error or throttle or fault", True),
        ("ok or error and fault", False),
        ("fault responsetime > 1", True),  # adjacent terms mean AND
        ("fault !partial duration < 3", True),
        ("inferred", True),
        ("partial", False),
        ('availabilityzone = "us-east-1a"', True),
        ('instance.id = "i-0abc"', True),
        ('resource.arn ENDSWITH "i-0abc"', True),
        ('name = "frontend"', True),
        ('http.url CONTAINS "say \\"hi\\""', False),
    ],
)
def test_expression_matches(expression: str, expected: bool) -> None:
    assert compile_filter(expression)(FACTS) is expected


@pytest.mark.parametrize(
    "expression, position, fragment",
    [
        ('service("a"', 11, "expected ')'"),
        ("responsetime >", 14, "expected a number"),
        ("responsetime 5", 13, "comparison operator"),
        ("fault and", 9, "expected a keyword"),
        ("bogus = 1", 0, "unknown keyword 'bogus'"),
        ("(fault", 6, "expected ')'"),
        ("fault)", 5, "unexpected ')'"),
        ("http.url CONTAINS cart", 18, "quoted string"),
        ('annotation.k < "x"', 13, "cannot compare strings"),
        ("annotation.k > true", 13, "cannot compare booleans"),
        ("fault = maybe", 8, "true or false"),
        ("fault # 1", 6, "unexpected character '#'"),
        ('service(id(colour: "red"))', 11, "expected name, type or account.id"),
        ('edge("a")', 8, "expected ','"),
        ('service("a") { fault', 20, "expected '}'"),
    ],
)
def test_syntax_errors_name_the_position(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        compile_filter(expression)
    error = caught.value
    assert error.status == 400 and error.error_type == "InvalidRequestException"
    assert f"at position {position}:" in error.message
    assert fragment in error.message


def test_entity_selectors() -> None:
    service = parse_entity_selector('service("backend")')
    assert service.kind == "service" and service.node is not None
    assert service.node(["backend", None, None]) and not service.node(["front", None, None])
    edge = parse_entity_selector('edge("a", "b")')
    assert edge.kind == "edge" and edge.source and edge.target
    assert edge.source(["a", None, None]) and edge.target(["b", None, None])
    by_id = parse_entity_selector('id(name: "t", type: "AWS::DynamoDB::Table")')
    assert by_id.kind == "service" and by_id.node is not None
    assert by_id.node(["t", "AWS::DynamoDB::Table", None])
    assert parse_entity_selector(None).kind == "all-edges"
    with pytest.raises(ApiError, match="expected service"):
        parse_entity_selector("fault")


# -- hostile expressions: bounded stack, bounded length, linear work ------------------------


def test_deep_parentheses_are_a_400_naming_the_position_not_a_recursion_error() -> None:
    with pytest.raises(ApiError) as caught:
        compile_filter("(" * 600 + "ok" + ")" * 600)
    error = caught.value
    assert error.status == 400 and error.error_type == "InvalidRequestException"
    assert f"at position {MAX_NESTING}:" in error.message
    assert f"nesting deeper than {MAX_NESTING} levels" in error.message


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_NESTING
    assert compile_filter("(" * depth + "fault" + ")" * depth)(FACTS) is True
    nested = 'service("frontend") {' * (depth - 1) + "fault" + "}" * (depth - 1)
    assert compile_filter(nested)(FACTS) is False  # parsed; inner blocks see node facts


def test_deep_service_blocks_count_towards_the_limit() -> None:
    with pytest.raises(ApiError, match="nesting deeper than"):
        compile_filter('service("a") {' * (MAX_NESTING + 1) + "ok" + "}" * (MAX_NESTING + 1))


@pytest.mark.parametrize("count", [1000, 1001, 16_001])
def test_long_negation_chains_are_read_in_a_loop(count: int) -> None:
    assert compile_filter("!" * count + "fault")(FACTS) is (count % 2 == 0)
    assert compile_filter("not " * count + "fault")(FACTS) is (count % 2 == 0)


def test_an_8_mib_expression_is_refused_by_the_length_limit() -> None:
    with pytest.raises(ApiError) as caught:
        compile_filter("fault or " * (8 * 1024 * 1024 // 9))
    error = caught.value
    assert error.status == 400 and error.error_type == "InvalidRequestException"
    assert f"over the limit of {MAX_EXPRESSION_LENGTH}" in error.message
    with pytest.raises(ApiError, match="over the limit"):
        parse_entity_selector(" " * (MAX_EXPRESSION_LENGTH + 1) + 'service("a")')


def test_an_expression_at_the_length_limit_compiles() -> None:
    term = "fault or "
    source = (term * (MAX_EXPRESSION_LENGTH // len(term)))[: MAX_EXPRESSION_LENGTH - 5] + " ok"
    source = source.replace("or  ok", "or ok")
    assert len(source) <= MAX_EXPRESSION_LENGTH
    assert compile_filter(source)(FACTS) is True


class _CopyCountingStr(str):
    """A str that adds up how many characters its slices copy."""

    copied = 0

    def __getitem__(self, key: Any) -> str:
        piece = str.__getitem__(self, key)
        _CopyCountingStr.copied += len(piece)
        return piece


def test_the_tokenizer_never_copies_the_rest_of_the_source() -> None:
    """Linear work: the old tokenizer copied ``source[pos:]`` for every token (quadratic: an
    800 KB expression took seconds); bench/filter.py reports the time per KB at two sizes."""
    source = _CopyCountingStr('fault or (http.url CONTAINS "a b" and responsetime > 1.5) ' * 200)
    _CopyCountingStr.copied = 0
    tokens = tokenize(source)
    assert len(tokens) == 11 * 200 + 1
    assert [t.text for t in tokens[:4]] == ["fault", "or", "(", "http.url"]
    assert tokens[-1].kind == "end" and tokens[-1].pos == len(source)
    assert _CopyCountingStr.copied <= len(source)
