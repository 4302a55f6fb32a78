"""The span half of the ``aws`` block: which AWS API call a span made.

Covers the Collector's keys (``aws.operation``, ``aws.region``, ``aws.request_id``,
``aws.queue_url``, ``aws.table_name``, ...) and what opentelemetry-instrumentation-botocore
emits (``rpc.method``, span ``cloud.region``, ``retry_attempts``, ``aws.sqs``/``aws.sns``/S3/Lambda
keys), mapped to the field names the X-Ray SDK's botocore patch writes. ``rpc.method`` and
``cloud.region`` only mean an AWS operation and region on AWS SDK spans (``rpc.system=aws-api``);
on a gRPC span they stay ordinary metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otel_xray.translate.http import status_code

# attribute -> aws field, for every span; consumed. Earlier entries win for the same field.
_SPAN_KEYS: tuple[tuple[str, str], ...] = (
    ("aws.operation", "operation"),
    ("aws.account_id", "account_id"),
    ("aws.region", "region"),
    ("aws.request_id", "request_id"),
    ("aws.requestId", "request_id"),
    ("aws.queue_url", "queue_url"),
    ("aws.queue.url", "queue_url"),
    ("aws.sqs.queue_url", "queue_url"),
    ("aws.table_name", "table_name"),
    ("aws.table.name", "table_name"),
)
# Only on AWS SDK spans.
_SDK_KEYS: tuple[tuple[str, str], ...] = (
    ("rpc.method", "operation"),
    ("cloud.region", "region"),
    ("aws.sns.topic.arn", "topic_arn"),
    ("aws.s3.bucket", "bucket_name"),
    ("faas.invoked_name", "function_name"),
)
_ALL_KEYS = frozenset(key for key, _ in _SPAN_KEYS + _SDK_KEYS) | {"retry_attempts"}
#: aws field -> the attribute it is read from first: the inverse, for turning segments back
#: into spans (the collector's OTLP forwarding).
AWS_FIELD_ATTRIBUTES: dict[str, str] = {}
for _key, _field in _SPAN_KEYS + _SDK_KEYS:
    AWS_FIELD_ATTRIBUTES.setdefault(_field, _key)
_READ_KEYS = _ALL_KEYS | {"messaging.url", "aws.dynamodb.table_names"}


_SDK_ONLY_KEYS = frozenset(key for key, _ in _SDK_KEYS) | {"retry_attempts"}


def has_aws_keys(keys: Iterable[str]) -> bool:
    """Whether any key could add to the ``aws`` block (cacheable per key layout)."""
    return not _READ_KEYS.isdisjoint(keys)


def has_sdk_only_keys(keys: Iterable[str]) -> bool:
    """Whether any key is taken only on AWS SDK spans (cacheable per key layout)."""
    return not _SDK_ONLY_KEYS.isdisjoint(keys)


def consumed_aws_keys(keys: Iterable[str], aws_sdk: bool) -> frozenset[str]:
    """The keys ``aws_block`` takes (when the resource is on AWS): depends only on the key set
    and on whether the span is an AWS SDK call."""
    taken = _ALL_KEYS.intersection(keys)
    return frozenset(taken if aws_sdk else taken - _SDK_ONLY_KEYS)


def aws_block(
    attrs: Mapping[str, Any], resource_block: dict[str, Any], aws_sdk: bool
) -> dict[str, Any]:
    """The document's ``aws`` block: the resource part plus the span's API-call fields.

    Reads, never changes, ``attrs``; the keys it takes are ``consumed_aws_keys``. Only for a
    resource on AWS: elsewhere the span's keys stay in metadata instead of vanishing.
    """
    block = dict(resource_block)
    present = attrs.keys() & _ALL_KEYS
    if present:
        taken: set[str] = set()
        for key, field in _SPAN_KEYS + (_SDK_KEYS if aws_sdk else ()):
            if key not in present:
                continue
            value = attrs[key]
            if value is None or value == "" or field in taken:
                continue
            block[field] = str(value) if field == "account_id" else value
            taken.add(field)
        if aws_sdk and "retry_attempts" in present:
            block["retries"] = status_code(attrs["retry_attempts"])
    messaging_url = attrs.get("messaging.url")
    if isinstance(messaging_url, str) and messaging_url:
        block["queue_url"] = messaging_url
    tables = attrs.get("aws.dynamodb.table_names")
    if isinstance(tables, str):
        block["table_name"] = tables
    elif isinstance(tables, (tuple, list)) and tables:
        if len(tables) == 1:
            block["table_name"] = tables[0]
        else:
            block.pop("table_name", None)
            block["table_names"] = list(tables)
    return block


def with_sampling_rule(block: dict[str, Any] | None, rule: Any) -> dict[str, Any] | None:
    """``block`` plus ``xray.sampling_rule_name``, where the X-Ray SDKs name the centralized
    rule that sampled the trace. Copies what it extends: resource parts are shared."""
    if rule is None or rule == "":
        return block
    extended = dict(block) if block is not None else {}
    xray = extended.get("xray")
    extended["xray"] = {**(xray if isinstance(xray, dict) else {}), "sampling_rule_name": str(rule)}
    return extended
