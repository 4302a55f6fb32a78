"""Validation of sampling-rule requests (CreateSamplingRule / UpdateSamplingRule), as X-Ray does.

Pure functions from a request body to a ``SamplingRule`` record: the limits are botocore's
model (RuleName 1-32, Priority 1-9999, FixedRate 0-1, ReservoirSize >= 0, Host/ServiceName/
ServiceType <= 64, HTTPMethod <= 10, URLPath <= 128, ResourceARN <= 500, Version 1, at most 5
Attributes of 1-32 characters each, at most 50 tags), and a violation is the
``InvalidRequestException`` X-Ray answers, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_xray.wire import DEFAULT_RULE_NAME, MAX_RULE_NAME

from .errors import invalid_request
from .fields import Fields

ACCOUNT_ID = "000000000000"
ARN_REGION = "local"
MAX_PRIORITY = 9999
MAX_RULE_ARN = 500

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
    request = Fields(body)
    rule = request.object("SamplingRule", required=True)
    assert rule is not None
    read_tags(request)
    arn = rule.string("RuleARN", max_length=MAX_RULE_ARN)
    name = rule.string("RuleName", min_length=1, max_length=MAX_RULE_NAME)
    if name is None:
        from_arn = rule_name_from_arn(arn or "")
        if from_arn is None:
            raise invalid_request(f"{rule.name('RuleName')} is required")
        # the name inside the ARN is held to the limits of RuleName
        name = Fields({"RuleName": from_arn}, rule.where).string(
            "RuleName", min_length=1, max_length=MAX_RULE_NAME
        )
        assert name is not None
    if arn is not None and arn != rule_arn(name):
        raise invalid_request(f"{rule.where}: specify a rule by either RuleName or RuleARN")
    record: dict[str, Any] = {"RuleName": name, "RuleARN": rule_arn(name)}
    for field in REQUIRED:
        record[field] = _read(rule, field, required=True)
    record["Attributes"] = rule.string_map(
        "Attributes", max_items=MAX_ATTRIBUTES, min_length=1, max_length=MAX_ATTRIBUTE_TEXT
    )
    boost = _boost(rule)
    if boost is not None:
        record["SamplingRateBoost"] = boost
    return record


def updated_rule_record(current: Mapping[str, Any], update: Fields) -> dict[str, Any]:
    """``current`` with the fields an UpdateSamplingRule request sets (the others are kept)."""
    where = update.where
    present = update.present() - {"RuleName", "RuleARN"}
    unknown = sorted(present - UPDATABLE)
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
    for field in sorted(present & SCALARS):
        record[field] = _read(update, field, required=True)
    if "Attributes" in present:
        record["Attributes"] = update.string_map(
            "Attributes", max_items=MAX_ATTRIBUTES, min_length=1, max_length=MAX_ATTRIBUTE_TEXT
        )
    if "SamplingRateBoost" in present:
        record["SamplingRateBoost"] = _boost(update)
    return record


def rule_reference(request: Fields) -> str:
    """The rule name a request points at through ``RuleName`` or ``RuleARN`` (not both)."""
    where = request.where
    name = request.string("RuleName", min_length=1, max_length=MAX_RULE_NAME)
    arn = request.string("RuleARN", max_length=MAX_RULE_ARN)
    if name is not None and arn is not None:
        raise invalid_request(f"{where}: specify a rule by either RuleName or RuleARN, not both")
    if arn is not None:
        from_arn = rule_name_from_arn(arn)
        if from_arn is None:
            raise invalid_request(f"{where}.RuleARN {arn!r} is not a sampling rule ARN")
        return from_arn
    if name is None:
        raise invalid_request(f"{where}: RuleName or RuleARN is required")
    return name


#: The fields of a rule read by :func:`_read` (one value each, botocore's limits).
SCALARS = frozenset(STRING_LIMITS) | {"Priority", "FixedRate", "ReservoirSize", "Version"}
#: What UpdateSamplingRule may set (the rest of a rule is fixed once created).
UPDATABLE = (SCALARS - {"Version"}) | {"Attributes", "SamplingRateBoost"}


def _read(fields: Fields, field: str, required: bool) -> Any:
    if field in STRING_LIMITS:
        return fields.string(field, required=required, max_length=STRING_LIMITS[field])
    if field == "Priority":
        return fields.integer(field, required=required, minimum=1, maximum=MAX_PRIORITY)
    if field == "FixedRate":
        return fields.number(field, required=required, minimum=0.0, maximum=1.0)
    if field == "ReservoirSize":
        return fields.integer(field, required=required)
    if field == "Version":
        return fields.integer(field, required=required, minimum=1, maximum=1)
    raise KeyError(field)


def _boost(rule: Fields) -> dict[str, Any] | None:
    """``SamplingRateBoost`` is kept and echoed; the collector never grants a boost."""
    boost = rule.object("SamplingRateBoost")
    if boost is None:
        return None
    return {
        "MaxRate": boost.number("MaxRate", required=True, minimum=0.0, maximum=1.0),
        "CooldownWindowMinutes": boost.integer("CooldownWindowMinutes", required=True, minimum=1),
    }


def read_tags(request: Fields) -> None:
    """Tags are checked (X-Ray's limits) and not kept: ListTagsForResource is not served."""
    for index, value in enumerate(request.objects("Tags", max_items=MAX_TAGS)):
        tag = request.item("Tags", index, value)
        key = tag.string("Key", required=True, min_length=1, max_length=MAX_TAG_KEY)
        assert key is not None
        if key.startswith("aws:"):
            raise invalid_request(f"{tag.name('Key')}: keys starting with 'aws:' are reserved")
        tag.string("Value", required=True, max_length=MAX_TAG_VALUE)


__all__ = [
    "ACCOUNT_ID",
    "ARN_REGION",
    "DEFAULT_RULE_NAME",
    "new_rule_record",
    "rule_arn",
    "rule_reference",
    "read_tags",
    "updated_rule_record",
]
