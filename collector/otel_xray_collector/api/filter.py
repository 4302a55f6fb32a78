"""The X-Ray filter-expression subset (GetTraceSummaries) and entity selectors (time series).

Expressions compile once per request into a predicate over the per-trace *facts* the store
keeps (see store/summary.py), so evaluating a page of traces is a few dict lookups each.

Grammar (case-insensitive keywords; adjacent terms mean AND; AND binds tighter than OR)::

    expr   := and { OR and }
    and    := unary { [AND] unary }
    unary  := ("!" | NOT) unary | atom
    atom   := "(" expr ")" | BOOLKW [("="|"!=") (true|false)] | NUMKW numop number
            | STRKW [strop "text"] | annotation.KEY [op value]
            | service([target]) ["{" expr "}"] | edge(target, target) ["{" expr "}"]
    target := "name" | id(name: "n"[, type: "t"][, account.id: "a"])

Hostile input costs linear time and bounded stack: an expression longer than
:data:`MAX_EXPRESSION_LENGTH` characters, or nesting parentheses and ``{ }`` blocks deeper than
:data:`MAX_NESTING`, is answered with ``InvalidRequestException`` naming the position, before any
work proportional to it; ``!``/``NOT`` chains of any length are read in a loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid_request

#: A compiled filter: tests the facts of one trace (store/facts.py), a node or an edge.
Predicate = Callable[[Mapping[str, Any]], bool]
#: Resolves ``group.name = "g"`` / ``group.arn = "a"``: (``"name"`` or ``"arn"``, value) -> the
#: group's predicate; raises ``LookupError`` for an unknown group.
GroupResolver = Callable[[str, str], Predicate]

#: Longest FilterExpression accepted, in characters (longer: InvalidRequestException). The
#: console's and the SDKs' expressions are a few hundred characters; 64 Ki leaves ample room
#: while bounding the work one request can ask for.
MAX_EXPRESSION_LENGTH = 65_536
#: Deepest nesting of ``( )`` and ``{ }`` accepted: the parser recurses once per level.
MAX_NESTING = 64

_SPACE = re.compile(r"\s*")
_TOKEN = re.compile(
    r"""(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|\{|\}|,|:|!)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""",
    re.VERBOSE,
)

BOOL_KEYWORDS = {"ok", "error", "fault", "throttle", "partial", "inferred", "root"}
NUM_KEYWORDS = {"responsetime": "rt", "duration": "duration", "http.status": "status"}
STR_KEYWORDS = {
    "http.url": "HttpURL",
    "http.method": "HttpMethod",
    "http.useragent": "UserAgent",
    "http.clientip": "ClientIp",
    "user": "user",
    "name": "name",
    "type": "type",
    "availabilityzone": "az",
    "instance.id": "iid",
    "resource.arn": "arn",
}
NUM_OPS = {"=", "!=", "<", "<=", ">", ">="}
STR_OPS = {"=", "!=", "contains", "beginswith", "endswith"}


@dataclass
class Token:
    kind: str  # string, number, op, word, end
    text: str
    pos: int

    @property
    def lower(self) -> str:
        return self.text.lower()


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens in one left-to-right pass (no copies of the rest)."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise invalid_request(
            f"Invalid filter expression: {len(source)} characters, over the limit of"
            f" {MAX_EXPRESSION_LENGTH}"
        )
    tokens: list[Token] = []
    end = len(source)
    pos = _skip_space(source, 0)
    while pos < end:
        match = _TOKEN.match(source, pos)
        if match is None:
            raise _error(pos, f"unexpected character {source[pos]!r}")
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), pos))
        pos = _skip_space(source, match.end())
    tokens.append(Token("end", "", end))
    return tokens


def _skip_space(source: str, pos: int) -> int:
    space = _SPACE.match(source, pos)
    return space.end() if space is not None else pos


def _error(pos: int, message: str) -> ApiError:
    return invalid_request(f"Invalid filter expression at position {pos}: {message}")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(self, source: str, groups: GroupResolver | None = None) -> None:
        self.tokens = tokenize(source)
        self.index = 0
        self.groups = groups
        self.depth = 0

    def enter(self, token: Token) -> None:
        """One more level of ``( )`` or ``{ }``; refused past :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _error(token.pos, f"nesting deeper than {MAX_NESTING} levels")

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.token
        if token.lower != text:
            found = token.text or "end of expression"
            raise _error(token.pos, f"expected {text!r}, found {found!r}")
        return self.take()

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.token.kind != "end":
            raise _error(self.token.pos, f"unexpected {self.token.text!r}")
        return predicate

    def expr(self) -> Predicate:
        parts = [self.conjunction()]
        while self.token.kind == "word" and self.token.lower == "or":
            self.take()
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda ctx: any(p(ctx) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while True:
            token = self.token
            if token.kind == "word" and token.lower == "and":
                self.take()
            elif (
                token.kind == "end"
                or token.text in (")", "}")
                or (token.kind == "word" and token.lower == "or")
            ):
                break
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda ctx: all(p(ctx) for p in parts)

    def unary(self) -> Predicate:
        negations = 0
        while self.token.text == "!" or (self.token.kind == "word" and self.token.lower == "not"):
            self.take()
            negations += 1
        inner = self.atom()
        if negations % 2 == 0:
            return inner
        return lambda ctx: not inner(ctx)

    def atom(self) -> Predicate:
        token = self.token
        if token.text == "(":
            self.enter(self.take())
            inner = self.expr()
            self.expect(")")
            self.depth -= 1
            return inner
        if token.kind != "word":
            found = token.text or "end of expression"
            raise _error(token.pos, f"expected a keyword, found {found!r}")
        word = token.lower
        self.take()
        if word == "service":
            return self.service()
        if word == "edge":
            return self.edge()
        if word in BOOL_KEYWORDS:
            return self.boolean(word)
        if word in NUM_KEYWORDS:
            return self.numeric(word)
        if word in STR_KEYWORDS:
            return self.string(word)
        if word.startswith("annotation.") and len(word) > len("annotation."):
            return self.annotation(token.text[len("annotation.") :])
        if word in ("group.name", "group.arn"):
            return self.group(token)
        raise _error(token.pos, f"unknown keyword {token.text!r}")

    # -- atoms ------------------------------------------------------------------------------

    def boolean(self, word: str) -> Predicate:
        expected = True
        if self.token.text in ("=", "!="):
            negate = self.take().text == "!="
            value = self.take()
            if value.lower not in ("true", "false"):
                raise _error(value.pos, f"expected true or false, found {value.text!r}")
            expected = (value.lower == "true") != negate
        return lambda ctx: bool(ctx.get(word)) == expected

    def numeric(self, word: str) -> Predicate:
        op = self.token
        if op.text not in NUM_OPS:
            raise _error(op.pos, f"expected a comparison operator after {word!r}")
        self.take()
        value_token = self.take()
        if value_token.kind != "number":
            raise _error(value_token.pos, f"expected a number, found {value_token.text!r}")
        value = float(value_token.text)
        compare = _NUMERIC[op.text]
        field = NUM_KEYWORDS[word]

        def predicate(ctx: Mapping[str, Any]) -> bool:
            if field == "status":
                actual = (ctx.get("http") or {}).get("HttpStatus")
            elif field == "duration" and "duration" not in ctx:
                actual = ctx.get("rt")  # inside service { }: the node's own time
            else:
                actual = ctx.get(field)
            return _is_number(actual) and compare(actual, value)

        return predicate

    def string(self, word: str) -> Predicate:
        field = STR_KEYWORDS[word]
        op = self.token
        if op.lower not in STR_OPS:
            return lambda ctx: any(v is not None for v in _string_values(ctx, field))
        self.take()
        value_token = self.take()
        if value_token.kind != "string":
            raise _error(value_token.pos, f"expected a quoted string, found {value_token.text!r}")
        value = _unquote(value_token.text)
        compare = _STRING[op.lower]
        if op.lower == "!=":
            return lambda ctx: (
                not any(v == value for v in _string_values(ctx, field) if isinstance(v, str))
            )
        return lambda ctx: any(
            compare(v, value) for v in _string_values(ctx, field) if isinstance(v, str)
        )

    def annotation(self, key: str) -> Predicate:
        op = self.token
        if op.text not in NUM_OPS and op.lower not in STR_OPS:
            return lambda ctx: key in (ctx.get("ann") or {})
        self.take()
        value_token = self.take()
        value: Any
        if value_token.kind == "string":
            value = _unquote(value_token.text)
        elif value_token.kind == "number":
            value = float(value_token.text)
        elif value_token.lower in ("true", "false"):
            value = value_token.lower == "true"
        else:
            raise _error(value_token.pos, f"expected a value, found {value_token.text!r}")
        op_name = op.lower if op.lower in STR_OPS and op.kind == "word" else op.text
        if isinstance(value, str):
            if op_name not in STR_OPS:
                raise _error(op.pos, f"{op.text!r} cannot compare strings")
            compare = _STRING[op_name]
        elif isinstance(value, bool):
            if op_name not in ("=", "!="):
                raise _error(op.pos, f"{op.text!r} cannot compare booleans")
            compare = _NUMERIC[op_name]
        else:
            if op_name not in NUM_OPS:
                raise _error(op.pos, f"{op.text!r} cannot compare numbers")
            compare = _NUMERIC[op_name]

        def same_type(actual: Any) -> bool:
            if isinstance(value, bool) or isinstance(actual, bool):
                return isinstance(value, bool) and isinstance(actual, bool)
            if isinstance(value, str):
                return isinstance(actual, str)
            return _is_number(actual)

        return lambda ctx: any(
            same_type(v) and compare(v, value) for v in (ctx.get("ann") or {}).get(key, ())
        )

    def group(self, keyword: Token) -> Predicate:
        """``group.name = "g"`` / ``group.arn = "a"``: the traces of that group's expression."""
        if self.groups is None:
            raise _error(keyword.pos, f"{keyword.text!r} cannot be used here")
        self.expect("=")
        value = self.take()
        if value.kind != "string":
            raise _error(value.pos, f"expected a quoted string, found {value.text!r}")
        try:
            return self.groups(keyword.lower[len("group.") :], _unquote(value.text))
        except LookupError as exc:
            raise _error(value.pos, str(exc)) from exc

    def target(self) -> Callable[[list[Any]], bool]:
        """``"name"`` or ``id(name: ..., type: ..., account.id: ...)`` against a node key."""
        token = self.take()
        if token.kind == "string":
            name = _unquote(token.text)
            return lambda key: key[0] == name
        if token.lower != "id":
            raise _error(token.pos, f"expected a quoted name or id(...), found {token.text!r}")
        self.expect("(")
        wanted: dict[int, str] = {}
        slots = {"name": 0, "type": 1, "account.id": 2}
        while True:
            field = self.take()
            if field.lower not in slots:
                raise _error(field.pos, f"expected name, type or account.id, found {field.text!r}")
            self.expect(":")
            value = self.take()
            if value.kind != "string":
                raise _error(value.pos, f"expected a quoted string, found {value.text!r}")
            wanted[slots[field.lower]] = _unquote(value.text)
            if self.token.text == ",":
                self.take()
                continue
            self.expect(")")
            break
        return lambda key: all(key[i] == v for i, v in wanted.items())

    def block(self) -> Predicate | None:
        if self.token.text != "{":
            return None
        self.enter(self.take())
        inner = self.expr()
        self.expect("}")
        self.depth -= 1
        return inner

    def service(self) -> Predicate:
        self.expect("(")
        matches = self.target() if self.token.text != ")" else _any_node
        self.expect(")")
        inner = self.block()

        def predicate(ctx: Mapping[str, Any]) -> bool:
            for node in ctx.get("nodes", ()):
                if matches([node["n"], node["t"], node["a"]]) and (
                    inner is None or inner(_node_context(node))
                ):
                    return True
            return False

        return predicate

    def edge(self) -> Predicate:
        self.expect("(")
        source = self.target()
        self.expect(",")
        target = self.target()
        self.expect(")")
        inner = self.block()

        def predicate(ctx: Mapping[str, Any]) -> bool:
            for edge in ctx.get("edges", ()):
                if source(edge["s"]) and target(edge["d"]) and (inner is None or inner(edge)):
                    return True
            return False

        return predicate


def _any_node(key: list[Any]) -> bool:
    return True


def _node_context(node: Mapping[str, Any]) -> dict[str, Any]:
    context = dict(node)
    context["name"] = node["n"]
    context["type"] = node["t"]
    return context


def _string_values(ctx: Mapping[str, Any], field: str) -> list[Any]:
    if field in ("user", "az", "iid", "arn"):
        values = ctx.get("users" if field == "user" else field)
        return list(values) if isinstance(values, list) else []
    if field in ("name", "type"):
        return [ctx.get(field)]
    return [(ctx.get("http") or {}).get(field)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_NUMERIC: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_STRING: dict[str, Callable[[str, str], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "contains": lambda a, b: b in a,
    "beginswith": lambda a, b: a.startswith(b),
    "endswith": lambda a, b: a.endswith(b),
}


def compile_filter(source: str, groups: GroupResolver | None = None) -> Predicate:
    """Compile a FilterExpression; raises InvalidRequestException with the position on error.

    Without ``groups``, ``group.name``/``group.arn`` are refused (a group's own expression).
    """
    if not source.strip():
        return lambda ctx: True
    return _Parser(source, groups).parse()


@dataclass(frozen=True)
class EntitySelector:
    """A parsed EntitySelectorExpression: which nodes or edges a time series covers."""

    kind: str  # "service", "edge" or "all-edges"
    node: Callable[[list[Any]], bool] | None = None
    source: Callable[[list[Any]], bool] | None = None
    target: Callable[[list[Any]], bool] | None = None


def parse_entity_selector(source: str | None) -> EntitySelector:
    if source is None or not source.strip():
        return EntitySelector("all-edges")
    parser = _Parser(source)
    token = parser.take()
    if token.lower == "service":
        parser.expect("(")
        node = parser.target()
        parser.expect(")")
        selector = EntitySelector("service", node=node)
    elif token.lower == "edge":
        parser.expect("(")
        src = parser.target()
        parser.expect(",")
        dst = parser.target()
        parser.expect(")")
        selector = EntitySelector("edge", source=src, target=dst)
    elif token.lower == "id":
        parser.index -= 1
        selector = EntitySelector("service", node=parser.target())
    else:
        raise _error(token.pos, "expected service(...), edge(...) or id(...)")
    if parser.token.kind != "end":
        raise _error(parser.token.pos, f"unexpected {parser.token.text!r}")
    return selector
