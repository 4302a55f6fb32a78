"""Local sampling rules files (format versions 1 and 2), loaded and validated.

The format is the X-Ray SDKs' ``sampling_rules`` file, so a team migrating from the X-Ray SDK
keeps its file. Validation is stricter than the Python SDK's (which crashes with a ``TypeError``
on some mistakes and accepts a rate above 1): every problem is a ``ValueError`` that names the
file, the rule and the field, because a sampling file is usually edited by hand and read by a
process that starts far from the person who edited it.

Nothing in a file can make loading fail any other way (a file is input, and can be hostile or
mangled): JSON nested deeper than :data:`MAX_NESTING` levels and integers longer than
:data:`MAX_INTEGER_DIGITS` digits are refused by name before Python's decoder or arithmetic
could raise ``RecursionError``, ``OverflowError`` or an anonymous ``ValueError``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

DEFAULT_DESCRIPTION = "default"
#: Deepest JSON nesting accepted; a rules file needs 3 (object > rules list > rule object).
MAX_NESTING = 32
#: Longest integer accepted; 20 digits holds any 64-bit value, far beyond any sensible target.
MAX_INTEGER_DIGITS = 20
_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS
_HTTP_FIELDS = ("http_method", "url_path")


@dataclass(frozen=True)
class LocalRule:
    """One rule: the first rule whose matchers accept a request decides it.

    ``host`` holds the version 2 ``host`` field or the version 1 ``service_name`` field (which
    the X-Ray SDKs match against the request's host, whatever its name says). The ``default``
    rule has ``*`` matchers.
    """

    description: str
    host: str
    http_method: str
    url_path: str
    fixed_target: int
    rate: float


@dataclass(frozen=True)
class LocalRules:
    version: int
    rules: list[LocalRule]
    default: LocalRule
    #: The file path, or ``"<string>"`` / ``"<dict>"``; error messages and logs name it.
    source: str = "<dict>"


RulesSource = Union[str, "os.PathLike[str]", Mapping[str, Any], LocalRules]

#: What the X-Ray SDKs use when no rules are given: one trace per second, then 5 % of the rest.
DEFAULT_RULES = LocalRules(
    version=2,
    rules=[],
    default=LocalRule(DEFAULT_DESCRIPTION, "*", "*", "*", fixed_target=1, rate=0.05),
    source="<built-in default rules>",
)


def load_rules(source: RulesSource) -> LocalRules:
    """Read rules from a file path, a JSON string (starting with ``{``) or a parsed dict.

    Every failure is a ``ValueError`` whose message starts with the file (or ``<string>`` /
    ``<dict>``) and names the field.
    """
    if isinstance(source, LocalRules):
        return source
    if isinstance(source, Mapping):
        return parse_rules(source, "<dict>")
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return parse_rules(_decode(source, "<string>"), "<string>")
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read sampling rules: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: sampling rules are not UTF-8 text: {exc.reason}") from exc
    except ValueError as exc:  # a NUL or a lone surrogate in the path itself
        raise ValueError(f"{path!r}: not a usable file name: {exc}") from exc
    return parse_rules(_decode(text, path), path)


class _HugeInteger:
    """An integer literal over :data:`MAX_INTEGER_DIGITS` digits, kept as its length only.

    Field checks then report it by name (``default.rate: ...``) instead of Python failing on
    it (``int()`` refuses over 4,300 digits, ``float()`` overflows past 1.8e308)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"a {self.digits}-digit integer (more than {MAX_INTEGER_DIGITS} digits)"


def _parse_int(text: str) -> int | _HugeInteger:
    return int(text) if len(text) <= MAX_INTEGER_DIGITS else _HugeInteger(text)


# A JSON string (skipped whole, escapes included) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_nesting(text: str, name: str) -> None:
    """Refuse nesting deeper than :data:`MAX_NESTING` before the recursive decoder sees it."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_NESTING:
                offset = match.start()
                line = text.count("\n", 0, offset) + 1
                column = offset - text.rfind("\n", 0, offset)
                raise ValueError(
                    f"{name}: JSON nested deeper than {MAX_NESTING} levels at line {line}"
                    f" column {column} (a rules file needs 3)"
                )
        elif bracket in "]}":
            depth -= 1


def _decode(text: str, name: str) -> Any:
    _check_nesting(text, name)
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:  # belt and braces: still a named ValueError
        raise ValueError(f"{name}: cannot decode the JSON: {exc}") from None


def parse_rules(document: Any, name: str) -> LocalRules:
    """Validate a decoded rules document; ``name`` prefixes every error message."""
    if not isinstance(document, Mapping):
        raise ValueError(f"{name}: expected a JSON object with 'version' and 'default'")
    version = document.get("version")
    if "version" not in document:
        raise ValueError(f"{name}: version: missing (expected 1 or 2)")
    if isinstance(version, bool) or version not in (1, 2):
        raise ValueError(f"{name}: version: {_show(version)} is not supported (expected 1 or 2)")
    if "default" not in document:
        raise ValueError(f"{name}: default: missing (every rules file needs a default rule)")
    default = _parse_default(document["default"], name)
    raw_rules = document.get("rules", [])
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise ValueError(f"{name}: rules: expected a list, got {_type(raw_rules)}")
    host_key = "host" if version == 2 else "service_name"
    rules = [
        _parse_rule(raw, f"{name}: rules[{index}]", host_key) for index, raw in enumerate(raw_rules)
    ]
    return LocalRules(version=int(version), rules=rules, default=default, source=name)


def _parse_default(raw: Any, name: str) -> LocalRule:
    where = f"{name}: default"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object, got {_type(raw)}")
    for key in ("host", "service_name", *_HTTP_FIELDS):
        if key in raw:
            raise ValueError(
                f"{where}.{key}: not allowed in the default rule (it applies to every request)"
            )
    fixed_target, rate = _parse_budget(raw, where)
    return LocalRule(DEFAULT_DESCRIPTION, "*", "*", "*", fixed_target, rate)


def _parse_rule(raw: Any, where: str, host_key: str) -> LocalRule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object, got {_type(raw)}")
    host, method, path = (_parse_matcher(raw, where, key) for key in (host_key, *_HTTP_FIELDS))
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{where}.description: expected a string, got {_type(description)}")
    fixed_target, rate = _parse_budget(raw, where)
    return LocalRule(description, host, method, path, fixed_target, rate)


def _parse_matcher(raw: Mapping[str, Any], where: str, key: str) -> str:
    if key not in raw:
        raise ValueError(f'{where}.{key}: missing (use "*" to match any value)')
    value = raw[key]
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {_type(value)}")
    if not value:
        raise ValueError(f'{where}.{key}: must not be empty (use "*" to match any value)')
    return value


def _parse_budget(raw: Mapping[str, Any], where: str) -> tuple[int, float]:
    if "fixed_target" not in raw:
        raise ValueError(f"{where}.fixed_target: missing (traces per second; 0 for none)")
    fixed_target = raw["fixed_target"]
    if isinstance(fixed_target, _HugeInteger):
        raise ValueError(f"{where}.fixed_target: {fixed_target!r} is too large")
    if isinstance(fixed_target, float) and fixed_target.is_integer():
        fixed_target = int(fixed_target)
    if isinstance(fixed_target, bool) or not isinstance(fixed_target, int):
        raise ValueError(f"{where}.fixed_target: expected an integer, got {_show(fixed_target)}")
    if fixed_target < 0:
        raise ValueError(f"{where}.fixed_target: {_show(fixed_target)} is negative")
    if fixed_target >= _INTEGER_LIMIT:
        raise ValueError(f"{where}.fixed_target: {_show(fixed_target)} is too large")
    if "rate" not in raw:
        raise ValueError(f"{where}.rate: missing (a fraction between 0 and 1)")
    rate = raw["rate"]
    if isinstance(rate, _HugeInteger):
        raise ValueError(f"{where}.rate: {rate!r} is outside 0..1")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"{where}.rate: expected a number, got {_show(rate)}")
    if not 0 <= rate <= 1:  # also NaN, and integers too large for a float (no conversion)
        raise ValueError(f"{where}.rate: {_show(rate)} is outside 0..1")
    return fixed_target, float(rate)


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INTEGER_LIMIT:
        return f"an integer of more than {MAX_INTEGER_DIGITS} digits"  # str() may refuse it
    if isinstance(value, (str, bool)) or value is None:
        return f"{json.dumps(value)} ({_type(value)})"
    return repr(value)


__all__ = ["DEFAULT_RULES", "LocalRule", "LocalRules", "RulesSource", "load_rules", "parse_rules"]
