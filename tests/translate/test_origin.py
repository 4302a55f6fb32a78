"""Resource -> origin, aws.ec2/ecs/eks/elastic_beanstalk/cloudwatch_logs/xray, service.

Inputs are the attribute sets the resource detectors emit: opentelemetry-sdk-extension-aws's
(run for real where they can reach a loopback endpoint, otherwise their documented keys) and the
standard keys our own detectors use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.extension.aws.resource import (
    AwsEcsResourceDetector,
    AwsLambdaResourceDetector,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

from tests.translate.spans import make_span, one


def segment_for(attributes: dict[str, Any]) -> dict[str, Any]:
    return one(make_span(kind=SpanKind.SERVER, resource=Resource(attributes)))


def test_ec2_block_and_origin() -> None:
    doc = segment_for(
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_ec2",
            "cloud.account_id": "123456789",
            "cloud.availability_zone": "us-east-1c",
            "cloud.region": "us-east-1",
            "host.id": "i-0123456789abcdef0",
            "host.type": "m5.xlarge",
            "host.image.id": "ami-12345",
            "host.name": "ip-10-0-0-1",
        }
    )
    assert doc["origin"] == "AWS::EC2::Instance"
    assert doc["aws"]["account_id"] == "123456789"
    assert doc["aws"]["ec2"] == {
        "instance_id": "i-0123456789abcdef0",
        "availability_zone": "us-east-1c",
        "instance_size": "m5.xlarge",
        "instance_type": "m5.xlarge",
        "ami_id": "ami-12345",
    }
    for absent in ("ecs", "eks", "elastic_beanstalk"):
        assert absent not in doc["aws"]


def test_missing_ec2_fields_are_left_out_not_null() -> None:
    doc = segment_for({"cloud.provider": "aws", "cloud.platform": "aws_ec2", "host.id": "i-1"})
    assert doc["aws"]["ec2"] == {"instance_id": "i-1"}


def test_machine_id_is_not_an_ec2_instance() -> None:
    doc = segment_for({"cloud.provider": "aws", "host.id": "4d6e1f1a9c2b4e8f9a0b1c2d3e4f5a6b"})
    assert "ec2" not in doc["aws"] and "origin" not in doc


@pytest.mark.parametrize(
    ("launch_type", "origin"),
    [
        (None, "AWS::ECS::Container"),
        ("ec2", "AWS::ECS::EC2"),
        ("fargate", "AWS::ECS::Fargate"),
        ("FARGATE", "AWS::ECS::Fargate"),
    ],
)
def test_ecs_origin_by_launch_type(launch_type: str | None, origin: str) -> None:
    attributes = {"cloud.provider": "aws", "cloud.platform": "aws_ecs"}
    if launch_type:
        attributes["aws.ecs.launchtype"] = launch_type
    assert segment_for(attributes)["origin"] == origin


def test_ecs_block_with_ec2_host() -> None:
    doc = segment_for(
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_ecs",
            "cloud.availability_zone": "us-east-1a",
            "container.name": "api",
            "container.id": "c0ffee",
            "host.id": "i-0abc",
            "aws.ecs.container.arn": "arn:aws:ecs:us-east-1:123:container/x",
            "aws.ecs.cluster.arn": "arn:aws:ecs:us-east-1:123:cluster/c",
            "aws.ecs.task.arn": "arn:aws:ecs:us-east-1:123:task/c/t",
            "aws.ecs.task.family": "fam",
            "aws.ecs.launchtype": "ec2",
        }
    )
    assert doc["aws"]["ecs"] == {
        "container": "api",
        "container_id": "c0ffee",
        "availability_zone": "us-east-1a",
        "container_arn": "arn:aws:ecs:us-east-1:123:container/x",
        "cluster_arn": "arn:aws:ecs:us-east-1:123:cluster/c",
        "task_arn": "arn:aws:ecs:us-east-1:123:task/c/t",
        "task_family": "fam",
        "launch_type": "ec2",
    }
    assert doc["aws"]["ec2"] == {"instance_id": "i-0abc", "availability_zone": "us-east-1a"}
    assert doc["origin"] == "AWS::ECS::EC2"


def test_beanstalk_block_and_origin() -> None:
    # What the upstream Beanstalk detector reads from environment.conf.
    doc = segment_for(
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_elastic_beanstalk",
            "service.name": "aws_elastic_beanstalk",
            "service.namespace": "production",
            "service.instance.id": 232,
            "service.version": "4",
        }
    )
    assert doc["origin"] == "AWS::ElasticBeanstalk::Environment"
    assert doc["aws"]["elastic_beanstalk"] == {
        "environment_name": "production",
        "version_label": "4",
        "deployment_id": 232,
    }


def test_eks_block_and_origin_from_the_upstream_detector_keys() -> None:
    doc = segment_for(
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_eks",
            "k8s.cluster.name": "production",
            "container.id": "abc123",
            "k8s.pod.name": "api-7d9f",
        }
    )
    assert doc["origin"] == "AWS::EKS::Container"
    assert doc["aws"]["eks"] == {
        "cluster_name": "production",
        "pod": "api-7d9f",
        "container_id": "abc123",
    }


@pytest.mark.parametrize(
    ("attributes", "origin"),
    [
        # An EKS pod whose resource also carries its node's EC2 identity (EC2 detector last).
        (
            {"cloud.platform": "aws_ec2", "k8s.cluster.name": "prod", "host.id": "i-1"},
            "AWS::EKS::Container",
        ),
        (
            {
                "cloud.platform": "aws_elastic_beanstalk",
                "host.id": "i-1",
                "aws.ecs.task.arn": "arn:t",
            },
            "AWS::ElasticBeanstalk::Environment",
        ),
        (
            {"cloud.platform": "aws_ec2", "aws.ecs.task.arn": "arn:t", "host.id": "i-1"},
            "AWS::ECS::Container",
        ),
        ({"cloud.platform": "aws_app_runner"}, "AWS::AppRunner::Service"),
        ({"cloud.platform": "aws_lambda", "faas.name": "fn"}, None),
        ({}, None),
    ],
)
def test_origin_precedence(attributes: dict[str, Any], origin: str | None) -> None:
    doc = segment_for({"cloud.provider": "aws", **attributes})
    assert doc.get("origin") == origin


def test_not_aws_means_no_origin_and_no_aws_block() -> None:
    doc = segment_for(
        {"cloud.provider": "gcp", "host.id": "i-1", "cloud.platform": "gcp_compute_engine"}
    )
    assert "origin" not in doc and "aws" not in doc


def test_kubernetes_outside_aws_is_not_eks() -> None:
    doc = segment_for({"k8s.cluster.name": "kind", "k8s.pod.name": "p"})
    assert "origin" not in doc and "eks" not in doc["aws"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["group1", "group2"], [{"log_group": "group1"}, {"log_group": "group2"}]),
        ("group1", [{"log_group": "group1"}]),
        ("group1&&group2&", [{"log_group": "group1"}, {"log_group": "group2"}]),
        ("&group1&group2", [{"log_group": "group1"}, {"log_group": "group2"}]),
    ],
)
def test_log_group_names(value: Any, expected: list[dict[str, str]]) -> None:
    assert segment_for({"aws.log.group.names": value})["aws"]["cloudwatch_logs"] == expected


@pytest.mark.parametrize("value", ["&", 1])
def test_log_group_names_without_a_name(value: Any) -> None:
    assert "cloudwatch_logs" not in segment_for({"aws.log.group.names": value})["aws"]


def test_log_group_arns() -> None:
    arn1 = "arn:aws:logs:us-east-1:123456789123:log-group:group1"
    arn2 = "arn:aws:logs:us-east-1:123456789123:log-group:group2:*"
    logs = segment_for({"aws.log.group.arns": f"{arn1}&{arn2}"})["aws"]["cloudwatch_logs"]
    assert logs == [{"log_group": "group1", "arn": arn1}, {"log_group": "group2", "arn": arn2}]


def test_log_groups_from_options() -> None:
    from tests.translate.spans import translate

    (doc,) = translate(make_span(kind=SpanKind.SERVER), log_group_names=["my-logGroup-1", "g2"])
    assert doc["aws"]["cloudwatch_logs"] == [{"log_group": "my-logGroup-1"}, {"log_group": "g2"}]


@pytest.mark.parametrize(
    ("attributes", "xray"),
    [
        (
            {
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": "java",
                "telemetry.sdk.version": "1.2.3",
            },
            {
                "sdk": "opentelemetry for java",
                "sdk_version": "1.2.3",
                "auto_instrumentation": False,
            },
        ),
        (
            {
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": "java",
                "telemetry.auto.version": "3.4.5",
            },
            {"sdk": "opentelemetry for java", "auto_instrumentation": True},
        ),
        (
            {"telemetry.sdk.name": "opentelemetry", "telemetry.distro.version": "3.4.5"},
            {"sdk": "opentelemetry", "auto_instrumentation": True},
        ),
    ],
)
def test_xray_block_from_resource_for_foreign_spans(
    attributes: dict[str, Any], xray: dict[str, Any]
) -> None:
    from tests.translate.spans import translate

    (doc,) = translate(make_span(resource=Resource(attributes)), sdk_from_resource=True)
    assert doc["aws"]["xray"] == xray


def test_auto_instrumentation_flag_for_our_own_sdk_block() -> None:
    doc = segment_for({"telemetry.auto.version": "0.66b1"})
    assert doc["aws"]["xray"]["auto_instrumentation"] is True
    assert doc["aws"]["xray"]["sdk"] == "otel-xray for Python"


@pytest.mark.parametrize(
    ("attributes", "service"),
    [
        (
            {"service.version": "semver:1.1.4", "container.image.tag": "v1"},
            {"version": "semver:1.1.4"},
        ),
        ({"container.image.tag": "v1"}, {"version": "v1"}),
        (
            {"process.runtime.name": "cpython", "process.runtime.version": "3.11.7"},
            {"runtime": "cpython", "runtime_version": "3.11.7"},
        ),
        ({}, None),
    ],
)
def test_service_block(attributes: dict[str, Any], service: dict[str, Any] | None) -> None:
    assert segment_for(attributes).get("service") == service


def test_service_and_origin_are_on_subsegments_too_but_resource_metadata_is_not() -> None:
    resource = Resource(
        {
            "service.name": "s",
            "service.version": "2",
            "cloud.provider": "aws",
            "cloud.platform": "aws_ec2",
        }
    )
    doc = one(make_span(kind=SpanKind.CLIENT, resource=resource, attributes={"attr1@1": "val1"}))
    assert doc["service"] == {"version": "2"}
    assert doc["origin"] == "AWS::EC2::Instance"
    assert doc["metadata"] == {"default": {"attr1@1": "val1"}}


# --- upstream detectors run for real ------------------------------------------------------------


class _EcsMetadata(BaseHTTPRequestHandler):
    container = {
        "ContainerARN": "arn:aws:ecs:us-west-2:111122223333:container/0206b271-b33f-47ab-86c6-a0ba208a70a9",  # noqa: E501
        "LogDriver": "awslogs",
        "LogOptions": {
            "awslogs-group": "/ecs/metadata",
            "awslogs-region": "us-west-2",
            "awslogs-stream": "ecs/curl/8f03e41243824aea923aca126495f665",
        },
    }
    task = {
        "Cluster": "default",
        "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c",  # noqa: E501
        "Family": "curltest",
        "Revision": "26",
        "LaunchType": "FARGATE",
    }

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps(self.task if self.path.endswith("/task") else self.container).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def ecs_metadata_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EcsMetadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v4/abc"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_upstream_ecs_detector_output_maps(
    ecs_metadata_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", ecs_metadata_endpoint)
    resource = (
        AwsEcsResourceDetector(raise_on_error=True)
        .detect()
        .merge(Resource({"service.name": "api"}))
    )
    doc = one(make_span(kind=SpanKind.SERVER, resource=resource))
    assert doc["origin"] == "AWS::ECS::Fargate"
    ecs = doc["aws"]["ecs"]
    assert ecs["task_arn"] == _EcsMetadata.task["TaskARN"]
    assert ecs["cluster_arn"] == "arn:aws:ecs:us-west-2:111122223333:cluster/default"
    assert ecs["task_family"] == "curltest"
    assert ecs["launch_type"] == "fargate"
    assert ecs["container_arn"] == _EcsMetadata.container["ContainerARN"]
    assert doc["aws"]["cloudwatch_logs"] == [
        {
            "log_group": "/ecs/metadata",
            "arn": "arn:aws:logs:us-west-2:111122223333:log-group:/ecs/metadata",
        }
    ]


def test_upstream_lambda_detector_output_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abc",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }.items():
        monkeypatch.setenv(key, value)
    resource = AwsLambdaResourceDetector(raise_on_error=True).detect()
    doc = one(make_span(kind=SpanKind.SERVER, parent="remote", resource=resource))
    # Lambda writes its own AWS::Lambda::Function segment; ours is the handler's.
    assert "origin" not in doc
    assert doc["aws"]["xray"]["sdk"] == "otel-xray for Python"
    assert doc["metadata"]["default"]["otel.resource.faas.name"] == "orders"
