"""Validation of sampling-rule requests (CreateSamplingRule / UpdateSamplingRule), as X-Ray does.

Pure functions from a request body to a ``SamplingRule`` record: the limits are botocore's
model (RuleName 1-32, Priority 1-9999, FixedRate 0-1, ReservoirSize >= 0, Host/ServiceName/
ServiceType <= 64, HTTPMethod <= 10, URLPath <= 128, ResourceARN <= 500, Version 1, at most 5
Attributes of 1-32 characters each, at most 50 tags), and a violation is the
``InvalidRequestException`` X-Ray answers, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from otel_xray.wire import DEFAULT_RULE_NAME, MAX_RULE_NAME

from .errors import invalid_request

ACCOUNT_ID = "000000000000"
ARN_REGION = "local"
MAX_PRIORITY = 9999

#: String fields of a rule and their maximum lengths (botocore's model).
STRING_LIMITS = {
    "ResourceARN": 500,
    "ServiceName": 64,
    "ServiceType": 64,
    "Host": 64,
    "HTTPMethod": 10,
    "URLPath": 128,
}
#: Fields CreateSamplingRule requires besides the name (botocore's model).
REQUIRED = (
    "ResourceARN",
    "Priority",
    "FixedRate",
    "ReservoirSize",
    "ServiceName",
    "ServiceType",
    "Host",
    "HTTPMethod",
    "URLPath",
    "Version",
)
#: What UpdateSamplingRule may change on the Default rule (the X-Ray console offers the same).
DEFAULT_RULE_UPDATABLE = frozenset({"FixedRate", "ReservoirSize"})
MAX_ATTRIBUTES = 5
MAX_ATTRIBUTE_TEXT = 32
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


def rule_arn(name: str) -> str:
    return f"arn:aws:xray:{ARN_REGION}:{ACCOUNT_ID}:sampling-rule/{name}"


def rule_name_from_arn(arn: str) -> str | None:
    prefix = rule_arn("")
    return arn[len(prefix) :] if arn.startswith(prefix) and len(arn) > len(prefix) else None


def new_rule_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SamplingRule`` record a CreateSamplingRule request describes."""
    rule = body.get("SamplingRule")
    if not isinstance(rule, Mapping):
        raise invalid_request("SamplingRule is required and must be an object")
    validate_tags(body.get("Tags"))
    name = rule.get("RuleName")
    if name is None:
        name = rule_name_from_arn(_text(rule, "RuleARN", 500) or "")
    if name is None:
        raise invalid_request("SamplingRule.RuleName is required")
    name = validate_rule_name(name)
    arn = rule.get("RuleARN")
    if arn is not None and arn != rule_arn(name):
        raise invalid_request("SamplingRule: specify a rule by either RuleName or RuleARN")
    for field in REQUIRED:
        if rule.get(field) is None:
            raise invalid_request(f"SamplingRule.{field} is required")
    version = rule["Version"]
    if isinstance(version, bool) or version != 1:
        raise invalid_request("SamplingRule.Version must be 1")
    record: dict[str, Any] = {"RuleName": name, "RuleARN": rule_arn(name)}
    record.update(_fields(rule, "SamplingRule", set(REQUIRED) - {"Version"}))
    record["Version"] = 1
    record["Attributes"] = validate_attributes(rule.get("Attributes"), "SamplingRule.Attributes")
    boost = rule.get("SamplingRateBoost")
    if boost is not None:
        record["SamplingRateBoost"] = validate_boost(boost, "SamplingRule.SamplingRateBoost")
    return record


def updated_rule_record(
    current: Mapping[str, Any], update: Mapping[str, Any], where: str = "SamplingRuleUpdate"
) -> dict[str, Any]:
    """``current`` with the fields an UpdateSamplingRule request sets (the others are kept)."""
    present = {k for k, v in update.items() if v is not None} - {"RuleName", "RuleARN"}
    known = set(STRING_LIMITS) | {
        "Priority",
        "FixedRate",
        "ReservoirSize",
        "Attributes",
        "SamplingRateBoost",
    }
    unknown = sorted(present - known)
    if unknown:
        raise invalid_request(f"{where}: unknown field {unknown[0]}")
    if current["RuleName"] == DEFAULT_RULE_NAME:
        refused = sorted(present - DEFAULT_RULE_UPDATABLE)
        if refused:
            raise invalid_request(
                f"{where}.{refused[0]}: only FixedRate and ReservoirSize of the Default rule"
                " can be changed"
            )
    record = dict(current)
    record.update(_fields(update, where, present & (set(STRING_LIMITS) | _NUMBERS)))
    if "Attributes" in present:
        record["Attributes"] = validate_attributes(update["Attributes"], f"{where}.Attributes")
    if "SamplingRateBoost" in present:
        record["SamplingRateBoost"] = validate_boost(
            update["SamplingRateBoost"], f"{where}.SamplingRateBoost"
        )
    return record


def validate_rule_name(name: Any, where: str = "SamplingRule.RuleName") -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_RULE_NAME:
        raise invalid_request(f"{where} must be a string of 1 to {MAX_RULE_NAME} characters")
    return name


def rule_reference(body: Mapping[str, Any], where: str) -> str:
    """The rule name a request points at through ``RuleName`` or ``RuleARN`` (not both)."""
    name = body.get("RuleName")
    arn = body.get("RuleARN")
    if name is not None and arn is not None:
        raise invalid_request(f"{where}: specify a rule by either RuleName or RuleARN, not both")
    if arn is not None:
        if not isinstance(arn, str):
            raise invalid_request(f"{where}.RuleARN must be a string")
        from_arn = rule_name_from_arn(arn)
        if from_arn is None:
            raise invalid_request(f"{where}.RuleARN {arn!r} is not a sampling rule ARN")
        return from_arn
    if name is None:
        raise invalid_request(f"{where}: RuleName or RuleARN is required")
    return validate_rule_name(name, f"{where}.RuleName")


_NUMBERS = {"Priority", "FixedRate", "ReservoirSize"}


def _fields(source: Mapping[str, Any], where: str, names: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in sorted(names):
        if field in STRING_LIMITS:
            out[field] = _text(source, field, STRING_LIMITS[field], where)
        elif field == "FixedRate":
            out[field] = _number(source[field], f"{where}.FixedRate", 0.0, 1.0)
        elif field == "Priority":
            out[field] = _integer(source[field], f"{where}.Priority", 1, MAX_PRIORITY)
        elif field == "ReservoirSize":
            out[field] = _integer(source[field], f"{where}.ReservoirSize", 0, None)
    return out


def _text(source: Mapping[str, Any], field: str, limit: int, where: str = "SamplingRule") -> Any:
    value = source.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise invalid_request(f"{where}.{field} must be a string of at most {limit} characters")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid_request(f"{where} must be a number")
    if not low <= value <= high:
        raise invalid_request(f"{where} must be between {low:g} and {high:g}")
    return float(value)


def _integer(value: Any, where: str, low: int, high: int | None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{where} must be an integer")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid_request(f"{where} must be {bounds}")
    return int(value)


def validate_attributes(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid_request(f"{where} must be a map of strings")
    if len(value) > MAX_ATTRIBUTES:
        raise invalid_request(f"{where} may hold at most {MAX_ATTRIBUTES} attributes")
    for key, text in value.items():
        for part in (key, text):
            if not isinstance(part, str) or not 1 <= len(part) <= MAX_ATTRIBUTE_TEXT:
                raise invalid_request(
                    f"{where}: keys and values must be strings of 1 to {MAX_ATTRIBUTE_TEXT}"
                    " characters"
                )
    return dict(value)


def validate_boost(value: Any, where: str) -> dict[str, Any]:
    """``SamplingRateBoost`` is kept and echoed; the collector never grants a boost."""
    if not isinstance(value, Mapping):
        raise invalid_request(f"{where} must be an object")
    max_rate = _number(value.get("MaxRate"), f"{where}.MaxRate", 0.0, 1.0)
    window = _integer(value.get("CooldownWindowMinutes"), f"{where}.CooldownWindowMinutes", 1, None)
    return {"MaxRate": max_rate, "CooldownWindowMinutes": window}


def validate_tags(value: Any) -> None:
    """Tags are checked (X-Ray's limits) and not kept: ListTagsForResource is not served."""
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise invalid_request(f"Tags must be a list of at most {MAX_TAGS} tags")
    for tag in value:
        if not isinstance(tag, Mapping):
            raise invalid_request("Tags: each tag must be an object with Key and Value")
        key, text = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
            raise invalid_request(f"Tags: Key must be 1 to {MAX_TAG_KEY} characters")
        if key.startswith("aws:"):
            raise invalid_request("Tags: keys starting with 'aws:' are reserved")
        if not isinstance(text, str) or len(text) > MAX_TAG_VALUE:
            raise invalid_request(f"Tags: Value must be at most {MAX_TAG_VALUE} characters")


__all__ = [
    "ACCOUNT_ID",
    "ARN_REGION",
    "DEFAULT_RULE_NAME",
    "new_rule_record",
    "rule_arn",
    "rule_reference",
    "updated_rule_record",
    "validate_tags",
]
