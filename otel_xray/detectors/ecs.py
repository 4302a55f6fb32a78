"""ECS: the container and task metadata endpoint (v4, else v3) the ECS agent gives every container.

The agent sets ``ECS_CONTAINER_METADATA_URI_V4`` (or ``_URI`` for v3) in every task container,
so its presence is the platform check: without it the result is empty, with no I/O. With it,
the result always carries ``cloud.platform=aws_ecs``; the endpoint adds ARNs, launch type,
zone and the awslogs destination when it answers. Attribute keys and values follow the
upstream ``AwsEcsResourceDetector`` so translators map both alike (docs/detectors.md lists the
few deliberate differences).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

from otel_xray.config import ECS_METADATA_V3_ENV, ECS_METADATA_V4_ENV, env_text
from otel_xray.detectors._base import Attributes, AwsResourceDetector, Deadline, logger
from otel_xray.detectors._container_id import detect_container_id
from otel_xray.detectors._http import request


def _arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(partition, region, account) of an ``arn:partition:service:region:account:...``."""
    fields = arn.split(":", 5)
    if len(fields) < 6 or fields[0] != "arn" or not fields[3] or not fields[4]:
        return None
    return fields[1], fields[3], fields[4]


def _text(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)
    return None


def _fetch_json(url: str, deadline: Deadline) -> dict[str, Any]:
    response = request("GET", url, deadline)
    if not response.ok:
        raise ValueError(f"GET {url}: HTTP {response.status}")
    document = json.loads(response.body)
    if not isinstance(document, dict):
        raise ValueError(f"GET {url}: not a JSON object")
    return document


def task_attributes(container: dict[str, Any], task: dict[str, Any]) -> Attributes:
    """``aws.ecs.*`` and ``cloud.*`` from the container and task metadata documents."""
    attributes: Attributes = {}
    task_arn = _text(task, "TaskARN")
    arn_source = task_arn or _text(container, "ContainerARN") or ""
    parts = _arn_parts(arn_source)
    if parts is not None:
        _, region, account = parts
        attributes["cloud.region"] = region
        attributes["cloud.account.id"] = account
    container_arn = _text(container, "ContainerARN")
    if container_arn:
        attributes["aws.ecs.container.arn"] = container_arn
    cluster = _text(task, "Cluster")
    if cluster:
        if not cluster.startswith("arn:") and task_arn and ":" in task_arn:
            cluster = f"{task_arn[: task_arn.rindex(':')]}:cluster/{cluster}"
        attributes["aws.ecs.cluster.arn"] = cluster
    if task_arn:
        attributes["aws.ecs.task.arn"] = task_arn
    launch_type = _text(task, "LaunchType")
    if launch_type:
        attributes["aws.ecs.launchtype"] = launch_type.lower()
    for key, field in (("aws.ecs.task.family", "Family"), ("aws.ecs.task.revision", "Revision")):
        value = _text(task, field)
        if value:
            attributes[key] = value
    zone = _text(task, "AvailabilityZone")
    if zone:
        attributes["cloud.availability_zone"] = zone
    attributes.update(log_attributes(container, parts))
    return attributes


def log_attributes(container: dict[str, Any], arn_parts: tuple[str, str, str] | None) -> Attributes:
    """``aws.log.*`` for a container using the awslogs driver (trace-to-logs correlation)."""
    options = container.get("LogOptions")
    if container.get("LogDriver") != "awslogs" or not isinstance(options, dict):
        return {}
    group = options.get("awslogs-group")
    stream = options.get("awslogs-stream")
    if not isinstance(group, str) or not group:
        return {}
    attributes: Attributes = {"aws.log.group.names": [group]}
    if isinstance(stream, str) and stream:
        attributes["aws.log.stream.names"] = [stream]
    if arn_parts is None:
        return attributes
    partition, task_region, account = arn_parts
    region = options.get("awslogs-region")
    if not isinstance(region, str) or not region:
        region = task_region
    group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{group}"
    attributes["aws.log.group.arns"] = [group_arn]
    if isinstance(stream, str) and stream:
        attributes["aws.log.stream.arns"] = [f"{group_arn}:log-stream:{stream}"]
    return attributes


class EcsResourceDetector(AwsResourceDetector):
    """``cloud.platform=aws_ecs`` with task/container ARNs, launch type and log destination."""

    def __init__(
        self,
        raise_on_error: bool = False,
        *,
        metadata_uri: str | None = None,
        cgroup_path: str | None = None,
        mountinfo_path: str | None = None,
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(raise_on_error, timeout=timeout, environ=environ)
        self._metadata_uri = metadata_uri
        self._cgroup_path = cgroup_path
        self._mountinfo_path = mountinfo_path

    def _detect(self, deadline: Deadline) -> Attributes:
        uri = (
            self._metadata_uri
            or env_text(ECS_METADATA_V4_ENV, self.env)
            or env_text(ECS_METADATA_V3_ENV, self.env)
        ).rstrip("/")
        if not uri:
            return {}
        attributes: Attributes = {
            "cloud.provider": "aws",
            "cloud.platform": "aws_ecs",
            # Hostname, as the X-Ray SDKs record it under aws.ecs.container and upstream does.
            "container.name": socket.gethostname(),
        }
        docker_id: str | None = None
        try:
            container = _fetch_json(uri, deadline)
            task = _fetch_json(f"{uri}/task", deadline)
        except Exception as exc:  # noqa: BLE001 - the env var alone proves ECS
            logger.debug("EcsResourceDetector: metadata endpoint %s: %s", uri, exc)
        else:
            attributes.update(task_attributes(container, task))
            docker_id = _text(container, "DockerId")
        container_id = docker_id or detect_container_id(
            self._cgroup_path, self._mountinfo_path, self.env
        )
        if container_id:
            attributes["container.id"] = container_id
        return attributes
