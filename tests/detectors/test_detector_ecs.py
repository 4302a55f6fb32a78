from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import pytest

from otel_xray.detectors.ecs import EcsResourceDetector
from tests.detectors import proc_fixtures as proc
from tests.detectors.metadata_servers import (
    ECS_CONTAINER_ARN,
    ECS_DOCKER_ID,
    ECS_TASK_ARN,
    RefusedPort,
    RunningServer,
    ecs_container_document,
    ecs_task_document,
)
from tests.detectors.test_detector_ec2 import no_warnings

CLUSTER_ARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
LOG_GROUP_ARN = "arn:aws:logs:us-west-2:111122223333:log-group:/ecs/metadata"


def expected(launch_type: str, container_id: str = ECS_DOCKER_ID) -> dict[str, object]:
    return {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ecs",
        "cloud.region": "us-west-2",
        "cloud.account.id": "111122223333",
        "cloud.availability_zone": "us-west-2d",
        "container.name": socket.gethostname(),
        "container.id": container_id,
        "aws.ecs.container.arn": ECS_CONTAINER_ARN,
        "aws.ecs.cluster.arn": CLUSTER_ARN,
        "aws.ecs.task.arn": ECS_TASK_ARN,
        "aws.ecs.task.family": "curltest",
        "aws.ecs.task.revision": "26",
        "aws.ecs.launchtype": launch_type,
        "aws.log.group.names": ("/ecs/metadata",),
        "aws.log.group.arns": (LOG_GROUP_ARN,),
        "aws.log.stream.names": ("ecs/curl/8f03e41243824aea923aca126495f665",),
        "aws.log.stream.arns": (
            f"{LOG_GROUP_ARN}:log-stream:ecs/curl/8f03e41243824aea923aca126495f665",
        ),
    }


def test_metadata_v4_container_and_task(
    ecs_metadata: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = ecs_metadata()
    caplog.set_level(logging.DEBUG)

    resource = EcsResourceDetector().detect()

    assert dict(resource.attributes) == expected("ec2")
    assert [r.path.rsplit("/", 1)[-1] for r in server.seen] == [
        "0206b271-b33f-47ab-86c6-a0ba208a70a9",
        "task",
    ]
    no_warnings(caplog)


def test_fargate_with_cluster_arn(ecs_metadata: Callable[..., RunningServer]) -> None:
    ecs_metadata(task=ecs_task_document(launch_type="FARGATE", cluster=CLUSTER_ARN))

    resource = EcsResourceDetector().detect()

    assert dict(resource.attributes) == expected("fargate")


def test_container_id_from_mountinfo_under_cgroup_v2(
    ecs_metadata: Callable[..., RunningServer], proc_files: Callable[[str, str], None]
) -> None:
    """No DockerId in the metadata, ``0::/`` in cgroup: mountinfo still names the container."""
    ecs_metadata(container=ecs_container_document(with_docker_id=False))
    proc_files(proc.CGROUP_V2_NAMESPACED, proc.MOUNTINFO_DOCKER_V2)

    resource = EcsResourceDetector().detect()

    assert resource.attributes["container.id"] == proc.DOCKER_ID


def test_container_id_from_cgroup_v1_on_fargate(
    ecs_metadata: Callable[..., RunningServer], proc_files: Callable[[str, str], None]
) -> None:
    ecs_metadata(container=ecs_container_document(with_docker_id=False))
    proc_files(proc.CGROUP_V1_FARGATE, proc.MOUNTINFO_HOST)

    assert EcsResourceDetector().detect().attributes["container.id"] == proc.FARGATE_ID


def test_no_awslogs_driver_means_no_log_attributes(
    ecs_metadata: Callable[..., RunningServer],
) -> None:
    ecs_metadata(container=ecs_container_document(awslogs=False))

    attributes = dict(EcsResourceDetector().detect().attributes)

    assert not [key for key in attributes if key.startswith("aws.log.")]
    assert attributes["aws.ecs.task.arn"] == ECS_TASK_ARN


def test_metadata_v3_is_the_fallback(ecs_metadata: Callable[..., RunningServer]) -> None:
    server = ecs_metadata(version=3)

    resource = EcsResourceDetector().detect()

    assert dict(resource.attributes) == expected("ec2")
    assert server.seen[0].path.startswith("/v3/")


def test_constructor_uri_overrides_the_environment(
    ecs_metadata: Callable[..., RunningServer],
    monkeypatch: pytest.MonkeyPatch,
    refused_port: RefusedPort,
) -> None:
    server = ecs_metadata()
    uri = server.url + "/v4/0206b271-b33f-47ab-86c6-a0ba208a70a9"
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", refused_port.http_url)

    assert EcsResourceDetector(metadata_uri=uri).detect().attributes["aws.ecs.launchtype"] == "ec2"


def test_unreachable_endpoint_still_says_ecs_quietly(
    refused_port: RefusedPort,
    monkeypatch: pytest.MonkeyPatch,
    proc_files: Callable[[str, str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent-set variable proves ECS; the endpoint only adds detail."""
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", refused_port.http_url + "/v4/x")
    proc_files(proc.CGROUP_V1_DOCKER, proc.MOUNTINFO_HOST)
    caplog.set_level(logging.DEBUG)

    started = time.monotonic()
    resource = EcsResourceDetector(raise_on_error=True).detect()
    elapsed = time.monotonic() - started

    assert dict(resource.attributes) == {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ecs",
        "container.name": socket.gethostname(),
        "container.id": proc.DOCKER_ID,
    }
    assert elapsed < 1.0  # the detector's own budget
    no_warnings(caplog)


def test_off_ecs_is_empty_without_io(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    assert dict(EcsResourceDetector().detect().attributes) == {}
    no_warnings(caplog)
