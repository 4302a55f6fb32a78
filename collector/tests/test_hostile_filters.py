"""Issue 15 case 6 over the wire: hostile filter expressions are a 400, never a 500."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from otel_xray_collector.api.filter import MAX_EXPRESSION_LENGTH

NOW = time.time()


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("(" * 600 + "ok" + ")" * 600, "nesting deeper than"),
        ("(" * 5000, "nesting deeper than"),
        ("fault or " * (MAX_EXPRESSION_LENGTH // 8), "over the limit"),
    ],
    ids=["parens-600", "open-parens-5000", "over-length"],
)
def test_hostile_filter_expressions_are_invalid_request_exceptions(
    xray_client: Any, expression: str, fragment: str
) -> None:
    with pytest.raises(ClientError) as caught:
        xray_client.get_trace_summaries(
            StartTime=NOW - 60, EndTime=NOW, FilterExpression=expression
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in error["Error"]["Message"]


def test_a_thousand_negations_are_answered(xray_client: Any) -> None:
    page = xray_client.get_trace_summaries(
        StartTime=NOW - 60, EndTime=NOW, FilterExpression="!" * 1000 + "ok"
    )
    assert page["TraceSummaries"] == []
