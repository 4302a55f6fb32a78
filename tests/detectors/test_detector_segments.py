"""Detected resources, exported as real segments to a UDP daemon: ``aws.*`` blocks and ``origin``.

The second half runs opentelemetry-sdk-extension-aws's detectors against the same fake services
and files and checks that they produce the same blocks (see docs/detectors.md, "Interop").
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.extension.aws.resource import (
    AwsBeanstalkResourceDetector,
    AwsEc2ResourceDetector,
    AwsEcsResourceDetector,
    AwsEksResourceDetector,
    AwsLambdaResourceDetector,
)
from opentelemetry.sdk.extension.aws.resource import beanstalk as upstream_beanstalk
from opentelemetry.sdk.extension.aws.resource import ec2 as upstream_ec2
from opentelemetry.sdk.extension.aws.resource import eks as upstream_eks
from opentelemetry.sdk.resources import Resource, get_aggregated_resources
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from otel_xray.detectors import (
    BeanstalkResourceDetector,
    Ec2ResourceDetector,
    EcsResourceDetector,
    EksResourceDetector,
    LambdaResourceDetector,
    default_detectors,
)
from otel_xray.exporter import XRayUdpSpanExporter
from tests.detectors import proc_fixtures as proc
from tests.detectors.conftest import Kubernetes
from tests.detectors.metadata_servers import (
    ECS_CONTAINER_ARN,
    ECS_DOCKER_ID,
    ECS_TASK_ARN,
    RunningServer,
    config_map,
    ecs_container_document,
    ecs_task_document,
)
from tests.detectors.test_detector_beanstalk import ENVIRONMENT_CONF
from tests.detectors.test_detector_lambda import LAMBDA_ENV
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon

BASE = Resource(
    {
        "service.name": "shop",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.45.0",
    }
)
CLUSTER_ARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
LOG_GROUP_ARN = "arn:aws:logs:us-west-2:111122223333:log-group:/ecs/metadata"
K8S_CONFIG_MAPS = {
    ("amazon-cloudwatch", "cluster-info"): config_map(
        "amazon-cloudwatch", "cluster-info", {"cluster.name": "shop-prod"}
    ),
    ("kube-system", "aws-auth"): config_map("kube-system", "aws-auth", {"mapRoles": "[]"}),
}


def export_segment(detected: Resource, daemon: UdpDaemon) -> dict[str, Any]:
    """One server span through a real provider and exporter; the segment the daemon got."""
    daemon.clear()
    provider = TracerProvider(resource=BASE.merge(detected), shutdown_on_exit=False)
    provider.add_span_processor(
        SimpleSpanProcessor(XRayUdpSpanExporter(daemon_address=daemon.address))
    )
    with provider.get_tracer("detector-test").start_as_current_span("GET /", kind=SpanKind.SERVER):
        pass
    provider.shutdown()
    documents = daemon.documents(1)
    assert len(documents) == 1, documents
    assert_valid(documents[0])
    return documents[0]


def pick(block: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The expected keys of ``block`` (missing ones show up as absent in the diff)."""
    return {key: block.get(key, "<absent>") for key in expected}


# --------------------------------------------------------------------------- per platform


def test_ec2_segment(imds: Callable[..., RunningServer], udp_daemon: UdpDaemon) -> None:
    imds()

    segment = export_segment(Ec2ResourceDetector().detect(), udp_daemon)

    assert segment["origin"] == "AWS::EC2::Instance"
    expected = {
        "instance_id": "i-1234567890abcdef0",
        "availability_zone": "us-west-2b",
        "instance_size": "t2.micro",
        "ami_id": "ami-5fb8c835",
    }
    assert pick(segment["aws"]["ec2"], expected) == expected
    assert segment["aws"]["account_id"] == "123456789012"


@pytest.mark.parametrize(
    ("launch_type", "origin"),
    [
        ("EC2", "AWS::ECS::EC2"),
        ("FARGATE", "AWS::ECS::Fargate"),
        ("EXTERNAL", "AWS::ECS::Container"),  # ECS Anywhere
    ],
)
def test_ecs_segment(
    ecs_metadata: Callable[..., RunningServer],
    udp_daemon: UdpDaemon,
    launch_type: str,
    origin: str,
) -> None:
    ecs_metadata(task=ecs_task_document(launch_type=launch_type))

    segment = export_segment(EcsResourceDetector().detect(), udp_daemon)

    assert segment["origin"] == origin
    expected = {
        "container": socket.gethostname(),
        "container_id": ECS_DOCKER_ID,
        "availability_zone": "us-west-2d",
        "container_arn": ECS_CONTAINER_ARN,
        "cluster_arn": CLUSTER_ARN,
        "task_arn": ECS_TASK_ARN,
        "task_family": "curltest",
        "launch_type": launch_type.lower(),
    }
    assert pick(segment["aws"]["ecs"], expected) == expected
    assert segment["aws"]["cloudwatch_logs"] == [
        {"log_group": "/ecs/metadata", "arn": LOG_GROUP_ARN}
    ]
    assert segment["aws"]["account_id"] == "111122223333"


def test_eks_segment(
    kubernetes: Callable[..., Kubernetes],
    proc_files: Callable[[str, str], None],
    udp_daemon: UdpDaemon,
) -> None:
    kubernetes(K8S_CONFIG_MAPS)
    proc_files(proc.CGROUP_V2_NAMESPACED, proc.MOUNTINFO_CONTAINERD_V2)

    segment = export_segment(EksResourceDetector().detect(), udp_daemon)

    assert segment["origin"] == "AWS::EKS::Container"
    expected = {
        "cluster_name": "shop-prod",
        "pod": "web-7d9f8b6c5-x2x4q",
        "container_id": proc.SANDBOX_ID,
    }
    assert pick(segment["aws"]["eks"], expected) == expected


def test_beanstalk_segment(beanstalk_conf: Callable[[str], Path], udp_daemon: UdpDaemon) -> None:
    beanstalk_conf(ENVIRONMENT_CONF)

    segment = export_segment(BeanstalkResourceDetector().detect(), udp_daemon)

    assert segment["origin"] == "AWS::ElasticBeanstalk::Environment"
    assert segment["aws"]["elastic_beanstalk"] == {
        "environment_name": "shop-prod",
        "version_label": "app-0f1e-210315",
        "deployment_id": 23,
    }


def test_lambda_segment_has_log_group_and_no_origin(
    monkeypatch: pytest.MonkeyPatch, udp_daemon: UdpDaemon
) -> None:
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, value)

    segment = export_segment(LambdaResourceDetector().detect(), udp_daemon)

    assert "origin" not in segment
    assert segment["aws"]["cloudwatch_logs"] == [{"log_group": "/aws/lambda/checkout"}]
    assert not {"ec2", "ecs", "eks", "elastic_beanstalk"} & set(segment["aws"])


def test_all_platforms_merged_by_default_detectors(
    imds: Callable[..., RunningServer],
    ecs_metadata: Callable[..., RunningServer],
    kubernetes: Callable[..., Kubernetes],
    beanstalk_conf: Callable[[str], Path],
    udp_daemon: UdpDaemon,
) -> None:
    """Every block is kept; the most specific platform names the origin."""
    imds()
    ecs_metadata()
    kubernetes(K8S_CONFIG_MAPS)
    beanstalk_conf(ENVIRONMENT_CONF)

    merged = get_aggregated_resources(default_detectors(), Resource.get_empty())
    segment = export_segment(merged, udp_daemon)

    assert segment["origin"] == "AWS::ElasticBeanstalk::Environment"
    assert {"ec2", "ecs", "eks", "elastic_beanstalk"} <= set(segment["aws"])


def test_ecs_on_ec2_merged_origin_is_ecs_ec2(
    imds: Callable[..., RunningServer],
    ecs_metadata: Callable[..., RunningServer],
    udp_daemon: UdpDaemon,
) -> None:
    imds()
    ecs_metadata()

    merged = get_aggregated_resources(default_detectors(), Resource.get_empty())
    segment = export_segment(merged, udp_daemon)

    assert segment["origin"] == "AWS::ECS::EC2"
    assert segment["aws"]["ec2"]["instance_id"] == "i-1234567890abcdef0"
    assert segment["aws"]["ecs"]["task_family"] == "curltest"


# --------------------------------------------------------------------------- interop


def blocks(segment: dict[str, Any]) -> dict[str, Any]:
    """What the comparison covers: origin and every aws.* block but the SDK identity."""
    aws = {k: v for k, v in segment.get("aws", {}).items() if k != "xray"}
    return {"origin": segment.get("origin"), "aws": aws}


@pytest.fixture
def upstream_reaches_loopback(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point upstream's hard-coded addresses/paths at the test's servers and files.

    Upstream EC2 reads ``http://169.254.169.254`` (module constant ``_AWS_METADATA_HOST``),
    EKS ``https://kubernetes.default.svc`` (inline in ``_aws_http_request``) and the service
    account files at fixed paths (``_TOKEN_PATH``, ``_CERT_PATH``), Beanstalk a fixed file.
    Only those addresses are rewritten; requests still go over real sockets to the servers.
    """

    def redirect(
        imds_url: str | None = None,
        k8s: Kubernetes | None = None,
        beanstalk_file: Path | None = None,
    ) -> None:
        if imds_url is not None:
            monkeypatch.setattr(upstream_ec2, "_AWS_METADATA_HOST", imds_url[len("http://") :])
        if k8s is not None:
            assert k8s.server is not None
            monkeypatch.setattr(upstream_eks, "_TOKEN_PATH", str(k8s.serviceaccount_dir / "token"))
            monkeypatch.setattr(upstream_eks, "_CERT_PATH", str(k8s.serviceaccount_dir / "ca.crt"))
            api = k8s.server.url

            def urlopen(request: urllib.request.Request, **kwargs: Any) -> Any:
                request.full_url = request.full_url.replace("https://kubernetes.default.svc", api)
                return urllib.request.urlopen(request, **kwargs)

            monkeypatch.setattr(upstream_eks, "urlopen", urlopen)
        if beanstalk_file is not None:
            fixed = "/var/elasticbeanstalk/xray/environment.conf"

            def exists(path: str) -> bool:
                return os.path.exists(str(beanstalk_file) if path == fixed else path)

            def open_(path: str, *args: Any, **kwargs: Any) -> Any:
                return open(str(beanstalk_file) if path == fixed else path, *args, **kwargs)

            fake_os = SimpleNamespace(name="posix", path=SimpleNamespace(exists=exists))
            monkeypatch.setattr(upstream_beanstalk, "os", fake_os)
            monkeypatch.setattr(upstream_beanstalk, "open", open_, raising=False)

    return redirect


def both(ours: Any, theirs: Any, daemon: UdpDaemon) -> tuple[dict[str, Any], dict[str, Any]]:
    return blocks(export_segment(ours.detect(), daemon)), blocks(
        export_segment(theirs.detect(), daemon)
    )


def test_interop_ec2(
    imds: Callable[..., RunningServer],
    upstream_reaches_loopback: Callable[..., None],
    udp_daemon: UdpDaemon,
) -> None:
    server = imds()
    upstream_reaches_loopback(imds_url=server.url)

    ours, theirs = both(Ec2ResourceDetector(), AwsEc2ResourceDetector(), udp_daemon)

    # Upstream does not read imageId: ours adds ami_id, nothing else differs.
    assert ours["aws"]["ec2"].pop("ami_id") == "ami-5fb8c835"
    assert ours == theirs


def test_interop_ecs(ecs_metadata: Callable[..., RunningServer], udp_daemon: UdpDaemon) -> None:
    # Upstream takes the container id only from the real /proc/self/cgroup, which tests cannot
    # redirect; without DockerId in the metadata and with no fixture /proc, both have none here.
    ecs_metadata(container=ecs_container_document(with_docker_id=False))

    ours, theirs = both(EcsResourceDetector(), AwsEcsResourceDetector(), udp_daemon)

    # Ours also reads the task's zone and the account in its ARN (upstream: neither).
    assert ours["aws"]["ecs"].pop("availability_zone") == "us-west-2d"
    assert ours["aws"].pop("account_id") == "111122223333"
    assert "account_id" not in theirs["aws"]
    assert ours == theirs
    assert theirs["origin"] == "AWS::ECS::EC2"


def test_interop_eks(
    kubernetes: Callable[..., Kubernetes],
    upstream_reaches_loopback: Callable[..., None],
    udp_daemon: UdpDaemon,
) -> None:
    k8s = kubernetes(K8S_CONFIG_MAPS)
    upstream_reaches_loopback(k8s=k8s)

    ours, theirs = both(EksResourceDetector(), AwsEksResourceDetector(), udp_daemon)

    # Upstream records no pod name.
    assert ours["aws"]["eks"].pop("pod") == "web-7d9f8b6c5-x2x4q"
    assert ours == theirs
    assert theirs["origin"] == "AWS::EKS::Container"


def test_interop_beanstalk(
    beanstalk_conf: Callable[[str], Path],
    upstream_reaches_loopback: Callable[..., None],
    udp_daemon: UdpDaemon,
) -> None:
    conf = beanstalk_conf(ENVIRONMENT_CONF)
    upstream_reaches_loopback(beanstalk_file=conf)

    ours, theirs = both(BeanstalkResourceDetector(), AwsBeanstalkResourceDetector(), udp_daemon)

    assert ours == theirs
    assert theirs["origin"] == "AWS::ElasticBeanstalk::Environment"


def test_interop_lambda(monkeypatch: pytest.MonkeyPatch, udp_daemon: UdpDaemon) -> None:
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, value)

    ours, theirs = both(LambdaResourceDetector(), AwsLambdaResourceDetector(), udp_daemon)

    # Ours adds the function's log group (trace-to-logs link); upstream sets no aws.log.*.
    assert ours["aws"].pop("cloudwatch_logs") == [{"log_group": "/aws/lambda/checkout"}]
    assert ours == theirs
    assert theirs["origin"] is None
