from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otel_xray.sampling.rules import DEFAULT_RULES, MAX_NESTING, LocalRule, load_rules
from tests.support.rules import HEALTHCHECK_V1


def test_v1_service_name_becomes_the_host_matcher(tmp_path: Path) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(json.dumps(HEALTHCHECK_V1))
    rules = load_rules(path)
    assert rules.version == 1
    assert rules.source == str(path)
    assert rules.rules == [LocalRule("Healthy check", "*", "GET", "/healthcheck", 0, 0.0)]
    assert rules.default == LocalRule("default", "*", "*", "*", 1, 1.0)


def test_v2_host_field_and_ignored_service_name() -> None:
    rules = load_rules(
        {
            "version": 2,
            "rules": [
                {
                    "host": "api.example.com",
                    "service_name": "ignored-in-v2",
                    "http_method": "POST",
                    "url_path": "/orders/*",
                    "fixed_target": 2,
                    "rate": 0.25,
                }
            ],
            "default": {"fixed_target": 0, "rate": 0.1},
        }
    )
    assert rules.source == "<dict>"
    assert rules.rules[0].host == "api.example.com"
    assert rules.rules[0].description == ""
    assert (rules.default.fixed_target, rules.default.rate) == (0, 0.1)


def test_json_string_source() -> None:
    rules = load_rules(json.dumps(HEALTHCHECK_V1))
    assert rules.source == "<string>"
    assert rules.rules[0].url_path == "/healthcheck"


def test_missing_rules_list_means_only_default() -> None:
    rules = load_rules('{"version": 2, "default": {"fixed_target": 1, "rate": 0.05}}')
    assert rules.rules == []


def test_builtin_default_is_one_per_second_plus_five_percent() -> None:
    assert DEFAULT_RULES.rules == []
    assert (DEFAULT_RULES.default.fixed_target, DEFAULT_RULES.default.rate) == (1, 0.05)


def _with_rule(**changes: Any) -> dict[str, Any]:
    rule = dict(HEALTHCHECK_V1["rules"][0], **changes)
    return dict(HEALTHCHECK_V1, rules=[rule])


def _without(key: str) -> dict[str, Any]:
    rule = {k: v for k, v in HEALTHCHECK_V1["rules"][0].items() if k != key}
    return dict(HEALTHCHECK_V1, rules=[rule])


MALFORMED = [
    ("rate above 1", _with_rule(rate=1.5), "rules[0].rate: 1.5 is outside 0..1"),
    ("negative rate", _with_rule(rate=-0.1), "rules[0].rate: -0.1 is outside 0..1"),
    ("negative fixed_target", _with_rule(fixed_target=-1), "rules[0].fixed_target: -1 is negative"),
    (
        "fixed_target string",
        _with_rule(fixed_target="1"),
        'rules[0].fixed_target: expected an integer, got "1" (a string)',
    ),
    ("rate string", _with_rule(rate="0.5"), 'rules[0].rate: expected a number, got "0.5"'),
    ("rate bool", _with_rule(rate=True), "rules[0].rate: expected a number, got true"),
    ("missing rate", _without("rate"), "rules[0].rate: missing"),
    ("missing fixed_target", _without("fixed_target"), "rules[0].fixed_target: missing"),
    ("missing url_path", _without("url_path"), "rules[0].url_path: missing"),
    ("missing http_method", _without("http_method"), "rules[0].http_method: missing"),
    ("missing v1 service_name", _without("service_name"), "rules[0].service_name: missing"),
    ("method not a string", _with_rule(http_method=1), "rules[0].http_method: expected a string"),
    ("empty url_path", _with_rule(url_path=""), "rules[0].url_path: must not be empty"),
    ("rule not an object", dict(HEALTHCHECK_V1, rules=["x"]), "rules[0]: expected an object"),
    ("rules not a list", dict(HEALTHCHECK_V1, rules={}), "rules: expected a list"),
    (
        "missing default",
        {"version": 1, "rules": HEALTHCHECK_V1["rules"]},
        "default: missing",
    ),
    (
        "default rate above 1",
        dict(HEALTHCHECK_V1, default={"fixed_target": 1, "rate": 2}),
        "default.rate: 2 is outside 0..1",
    ),
    (
        "default with a path",
        dict(HEALTHCHECK_V1, default={"fixed_target": 1, "rate": 1, "url_path": "/"}),
        "default.url_path: not allowed in the default rule",
    ),
    ("unknown version", dict(HEALTHCHECK_V1, version=3), "version: 3 is not supported"),
    ("version as string", dict(HEALTHCHECK_V1, version="1"), 'version: "1" (a string) is not'),
    ("missing version", {"default": {"fixed_target": 1, "rate": 1}}, "version: missing"),
    ("top level list", [], "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("document", "message"),
    [pytest.param(doc, msg, id=case) for case, doc, msg in MALFORMED],
)
def test_malformed_file_names_file_rule_and_field(
    tmp_path: Path, document: Any, message: str
) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as raised:
        load_rules(str(path))
    assert str(raised.value).startswith(f"{path}: {message}")


def test_second_rule_is_named_by_its_index(tmp_path: Path) -> None:
    document = dict(
        HEALTHCHECK_V1, rules=[HEALTHCHECK_V1["rules"][0], _with_rule(rate=7)["rules"][0]]
    )
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"rules\.json: rules\[1\]\.rate: 7 is outside 0\.\.1$"):
        load_rules(path)


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text('{"version": 1,\n "default": {"fixed_target": 1, "rate": 1},}\n')
    with pytest.raises(ValueError) as raised:
        load_rules(path)
    assert str(raised.value).startswith(f"{path}: invalid JSON at line 2 column")


def test_unreadable_file_is_a_value_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ValueError, match=r"missing\.json: cannot read sampling rules"):
        load_rules(path)


def test_string_and_dict_sources_are_named_in_errors() -> None:
    with pytest.raises(ValueError, match=r"^<string>: invalid JSON"):
        load_rules("{nope")
    with pytest.raises(ValueError, match=r"^<dict>: default: missing"):
        load_rules({"version": 2})


# -- hostile files (issue 15 case 9): every failure is a ValueError naming file and field ------

_PREFIX = '{"version": 2, "default": {"fixed_target": 1, "rate": '


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            _PREFIX + "[" * 100_000 + "]" * 100_000 + "}}",
            f"JSON nested deeper than {MAX_NESTING} levels at line 1 column",
            id="nested-100000",
        ),
        pytest.param(
            _PREFIX + "1" + "0" * 309 + "}}",
            "default.rate: a 310-digit integer (more than 20 digits) is outside 0..1",
            id="integer-rate-over-1.8e308",
        ),
        pytest.param(
            _PREFIX + "1" * 5000 + "}}",
            "default.rate: a 5000-digit integer",
            id="rate-over-4300-digits",
        ),
        pytest.param(
            '{"version": 2, "default": {"fixed_target": ' + "7" * 5000 + ', "rate": 0.1}}',
            "default.fixed_target: a 5000-digit integer (more than 20 digits) is too large",
            id="target-over-4300-digits",
        ),
        pytest.param(
            '{"version": ' + "2" * 5000 + "}",
            "version: a 5000-digit integer",
            id="version-over-4300-digits",
        ),
        pytest.param(_PREFIX + "1e400}}", "default.rate: inf is outside 0..1", id="float-inf"),
        pytest.param(_PREFIX + "NaN}}", "default.rate: nan is outside 0..1", id="nan"),
    ],
)
def test_hostile_numbers_and_nesting_name_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        load_rules(path)
    assert type(raised.value) is ValueError
    assert str(raised.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate", 10**400), ("rate", -(10**5000)), ("fixed_target", 10**5000)],
    ids=["rate-1e400", "rate-minus-1e5000", "target-1e5000"],
)
def test_huge_integers_in_a_dict_name_the_field(field: str, value: int) -> None:
    document = {"version": 2, "default": {"fixed_target": 1, "rate": 0.5, field: value}}
    with pytest.raises(ValueError, match=rf"^<dict>: default\.{field}: an integer of more than"):
        load_rules(document)


def test_a_path_with_a_nul_byte_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="not a usable file name"):
        load_rules("rules\0.json")
