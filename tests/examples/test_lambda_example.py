"""examples/lambda/handler.py invoked the way Lambda does, exporting to a stand-in daemon."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon

HANDLER = Path(__file__).resolve().parents[2] / "examples" / "lambda" / "handler.py"
LAMBDA_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_SEGMENT = "53995c3f42cd8ad8"
FUNCTION = "price"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


def lambda_context(request_id: str) -> Any:
    """The attributes of the runtime's context object that the handler reads."""
    return SimpleNamespace(
        function_name=FUNCTION, aws_request_id=request_id, invoked_function_arn=ARN
    )


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch, udp_daemon: UdpDaemon) -> Iterator[ModuleType]:
    """A fresh execution environment: the variables Lambda sets, then the module (cold start)."""
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/05/01/[$LATEST]0123456789abcdef",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(HANDLER.parent),
        "AWS_XRAY_DAEMON_ADDRESS": udp_daemon.address,
        "_X_AMZN_TRACE_ID": f"Root={LAMBDA_ROOT};Parent={LAMBDA_SEGMENT};Sampled=1",
    }.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("lambda_example_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    if module.provider is not None:
        module.provider.shutdown()


def segments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every document, with embedded subsegments flattened out."""
    flat = []
    pending = list(docs)
    while pending:
        doc = pending.pop()
        flat.append(doc)
        pending.extend(doc.get("subsegments", []))
    return flat


def handler_segment(daemon: UdpDaemon) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    docs = daemon.wait_until(lambda ds: any(d.get("name") == FUNCTION for d in segments(ds)))
    for doc in docs:
        assert_valid(doc)
    (segment,) = [d for d in segments(docs) if d.get("name") == FUNCTION]
    return segment, segments(docs)


def test_invocation_continues_lambdas_trace_under_its_segment(
    function: ModuleType, udp_daemon: UdpDaemon
) -> None:
    response = function.handler({"pathParameters": {"item": "apple"}}, lambda_context("req-1"))
    assert response["statusCode"] == 200 and json.loads(response["body"])["price"] == 1.25

    segment, everything = handler_segment(udp_daemon)
    assert segment["trace_id"] == LAMBDA_ROOT
    assert segment["parent_id"] == LAMBDA_SEGMENT
    assert "type" not in segment  # the SERVER span is a segment of its own
    assert segment["annotations"]["item"] == "apple"
    assert segment["metadata"]["lambda"] == {"request_id": "req-1"}
    assert segment["fault"] is False and segment["error"] is False
    # Lambda writes the AWS::Lambda::Function segment itself; ours claims no origin but links
    # the function's log group.
    assert "origin" not in segment
    assert {"log_group": f"/aws/lambda/{FUNCTION}"} in segment["aws"]["cloudwatch_logs"]
    (lookup,) = [d for d in everything if d.get("name") == "lookup-price"]
    assert lookup["trace_id"] == LAMBDA_ROOT
    assert lookup.get("parent_id", segment["id"]) == segment["id"]


def test_unsampled_lambda_uses_the_api_gateway_header(
    function: ModuleType, udp_daemon: UdpDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={LAMBDA_ROOT};Parent={LAMBDA_SEGMENT};Sampled=0")
    caller_root, caller_parent = "1-66666666-0123456789abcdef01234567", "1111222233334444"
    event = {
        "headers": {"x-amzn-trace-id": f"Root={caller_root};Parent={caller_parent};Sampled=1"},
        "pathParameters": {"item": "kiwi"},
    }
    response = function.handler(event, lambda_context("req-2"))
    assert response["statusCode"] == 404

    segment, _ = handler_segment(udp_daemon)
    assert (segment["trace_id"], segment["parent_id"]) == (caller_root, caller_parent)
    assert segment["error"] is True and segment["fault"] is False  # 404 = client error


def test_each_invocation_follows_its_own_trace_header(
    function: ModuleType, udp_daemon: UdpDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    function.handler({"pathParameters": {"item": "pear"}}, lambda_context("req-3"))
    second_root = "1-5759e989-00000000000000000000beef"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={second_root};Parent=2222333344445555;Sampled=1")
    function.handler({"pathParameters": {"item": "plum"}}, lambda_context("req-4"))

    docs = udp_daemon.wait_until(
        lambda ds: len([d for d in segments(ds) if d.get("name") == FUNCTION]) == 2
    )
    traces = {(d["trace_id"], d["parent_id"]) for d in segments(docs) if d.get("name") == FUNCTION}
    assert traces == {(LAMBDA_ROOT, LAMBDA_SEGMENT), (second_root, "2222333344445555")}
