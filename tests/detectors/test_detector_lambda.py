from __future__ import annotations

import logging

import pytest

from otel_xray.detectors.lambda_ import LambdaResourceDetector
from tests.detectors.test_detector_ec2 import no_warnings

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "checkout",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/checkout",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_REGION": "eu-central-1",
}


def test_runtime_environment_becomes_faas_and_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, value)

    resource = LambdaResourceDetector().detect()

    stream = LAMBDA_ENV["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert dict(resource.attributes) == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-central-1",
        "faas.name": "checkout",
        "faas.version": "$LATEST",
        "faas.instance": stream,
        "faas.max_memory": 512 * 1024 * 1024,
        "aws.log.group.names": ("/aws/lambda/checkout",),
        "aws.log.stream.names": (stream,),
    }


def test_bad_memory_size_is_dropped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")

    attributes = dict(LambdaResourceDetector().detect().attributes)

    assert attributes["faas.name"] == "checkout"
    assert "faas.max_memory" not in attributes


def test_off_lambda_is_empty_and_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    assert dict(LambdaResourceDetector(raise_on_error=True).detect().attributes) == {}
    no_warnings(caplog)
