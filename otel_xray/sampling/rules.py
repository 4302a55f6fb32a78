"""Local sampling rules files (format versions 1 and 2), loaded and validated.

The format is the X-Ray SDKs' ``sampling_rules`` file, so a team migrating from the X-Ray SDK
keeps its file. Validation is stricter than the Python SDK's (which crashes with a ``TypeError``
on some mistakes and accepts a rate above 1): every problem is a ``ValueError`` that names the
file, the rule and the field, because a sampling file is usually edited by hand and read by a
process that starts far from the person who edited it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

DEFAULT_DESCRIPTION = "default"
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
    """Read rules from a file path, a JSON string (starting with ``{``) or a parsed dict."""
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
    return parse_rules(_decode(text, path), path)


def _decode(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


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
    if isinstance(fixed_target, float) and fixed_target.is_integer():
        fixed_target = int(fixed_target)
    if isinstance(fixed_target, bool) or not isinstance(fixed_target, int):
        raise ValueError(f"{where}.fixed_target: expected an integer, got {_show(fixed_target)}")
    if fixed_target < 0:
        raise ValueError(f"{where}.fixed_target: {fixed_target} is negative")
    if "rate" not in raw:
        raise ValueError(f"{where}.rate: missing (a fraction between 0 and 1)")
    rate = raw["rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"{where}.rate: expected a number, got {_show(rate)}")
    if math.isnan(rate) or not 0 <= rate <= 1:
        raise ValueError(f"{where}.rate: {rate} is outside 0..1")
    return fixed_target, float(rate)


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    if isinstance(value, (str, bool)) or value is None:
        return f"{json.dumps(value)} ({_type(value)})"
    return repr(value)


__all__ = ["DEFAULT_RULES", "LocalRule", "LocalRules", "RulesSource", "load_rules", "parse_rules"]
