"""Resource -> ``origin`` and the resource half of the ``aws`` block.

Reads only the standard resource keys (``cloud.*``, ``host.*``, ``container.*``, ``k8s.*``,
``aws.ecs.*``, ``aws.log.*``, ``service.*``), so any detector feeds it: ours,
opentelemetry-sdk-extension-aws's, or ``OTEL_RESOURCE_ATTRIBUTES``. Computed once per Resource
(see ``resource.py``), never per span.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ORIGIN_EC2 = "AWS::EC2::Instance"
ORIGIN_ECS = "AWS::ECS::Container"
ORIGIN_ECS_EC2 = "AWS::ECS::EC2"
ORIGIN_ECS_FARGATE = "AWS::ECS::Fargate"
ORIGIN_EKS = "AWS::EKS::Container"
ORIGIN_BEANSTALK = "AWS::ElasticBeanstalk::Environment"
ORIGIN_APP_RUNNER = "AWS::AppRunner::Service"

_ECS_EVIDENCE = ("aws.ecs.task.arn", "aws.ecs.cluster.arn", "aws.ecs.container.arn")


def _text(attrs: Mapping[str, Any], key: str) -> str:
    value = attrs.get(key)
    return value if isinstance(value, str) else ""


def _put(block: dict[str, Any], key: str, value: str) -> None:
    if value:
        block[key] = value


def is_aws(attrs: Mapping[str, Any]) -> bool:
    """Whether the resource may be on AWS (the provider is ``aws`` or unstated)."""
    provider = attrs.get("cloud.provider")
    return provider is None or provider == "aws"


def _on_aws(attrs: Mapping[str, Any]) -> bool:
    return attrs.get("cloud.provider") == "aws"


def ec2_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Present on EC2, or on AWS wherever ``host.id`` is an EC2 instance id (ECS on EC2, EKS
    nodes).

    Only an ``i-`` id counts: the generic host detector puts ``/etc/machine-id`` in
    ``host.id``, which is no instance. ``instance_size`` is the documented key; the Python X-Ray
    SDK wrote ``instance_type``, so both carry ``host.type``.
    """
    host_id = _text(attrs, "host.id")
    if attrs.get("cloud.platform") != "aws_ec2" and not (
        host_id.startswith("i-") and _on_aws(attrs)
    ):
        return None
    block: dict[str, Any] = {}
    _put(block, "instance_id", host_id)
    _put(block, "availability_zone", _text(attrs, "cloud.availability_zone"))
    host_type = _text(attrs, "host.type")
    _put(block, "instance_size", host_type)
    _put(block, "instance_type", host_type)
    _put(block, "ami_id", _text(attrs, "host.image.id"))
    return block


def ecs_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != "aws_ecs" and not (
        _on_aws(attrs) and any(k in attrs for k in _ECS_EVIDENCE)
    ):
        return None
    block: dict[str, Any] = {}
    _put(block, "container", _text(attrs, "container.name"))
    _put(block, "container_id", _text(attrs, "container.id"))
    _put(block, "availability_zone", _text(attrs, "cloud.availability_zone"))
    _put(block, "container_arn", _text(attrs, "aws.ecs.container.arn"))
    _put(block, "cluster_arn", _text(attrs, "aws.ecs.cluster.arn"))
    _put(block, "task_arn", _text(attrs, "aws.ecs.task.arn"))
    _put(block, "task_family", _text(attrs, "aws.ecs.task.family"))
    _put(block, "launch_type", _text(attrs, "aws.ecs.launchtype"))
    return block


def eks_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != "aws_eks" and not (
        _on_aws(attrs) and _text(attrs, "k8s.cluster.name")
    ):
        return None
    block: dict[str, Any] = {}
    _put(block, "cluster_name", _text(attrs, "k8s.cluster.name"))
    _put(block, "pod", _text(attrs, "k8s.pod.name"))
    _put(block, "container_id", _text(attrs, "container.id"))
    return block


def beanstalk_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != "aws_elastic_beanstalk":
        return None
    block: dict[str, Any] = {}
    _put(block, "environment_name", _text(attrs, "service.namespace"))
    _put(block, "version_label", _text(attrs, "service.version"))
    deployment = attrs.get("service.instance.id")
    if isinstance(deployment, int) and not isinstance(deployment, bool):
        block["deployment_id"] = deployment
    elif isinstance(deployment, str) and deployment.isdigit():
        block["deployment_id"] = int(deployment)
    return block


def _log_group_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [piece for piece in value.split("&") if piece]
    if isinstance(value, (list, tuple)):
        return [piece for piece in value if isinstance(piece, str) and piece]
    return []


def cloudwatch_logs(attrs: Mapping[str, Any], fallback: Iterable[str]) -> list[dict[str, str]]:
    """Trace-to-logs correlation: log group ARNs, else names, else the configured names."""
    arns = _log_group_values(attrs.get("aws.log.group.arns"))
    if arns:
        entries = []
        for arn in arns:
            fields = arn.split(":")
            entries.append({"log_group": fields[6] if len(fields) >= 7 else arn, "arn": arn})
        return entries
    names = _log_group_values(attrs.get("aws.log.group.names")) or list(fallback)
    return [{"log_group": name} for name in names]


def origin(
    attrs: Mapping[str, Any],
    ec2: dict[str, Any] | None,
    ecs: dict[str, Any] | None,
    eks: dict[str, Any] | None,
    beanstalk: dict[str, Any] | None,
) -> str | None:
    """Most specific platform wins: Elastic Beanstalk > EKS > ECS > EC2 (the X-Ray docs' order),
    so an EKS pod whose resource also carries its node's EC2 identity is an EKS container."""
    if not attrs or not is_aws(attrs):
        return None
    if beanstalk is not None:
        return ORIGIN_BEANSTALK
    if eks is not None:
        return ORIGIN_EKS
    if ecs is not None:
        launch_type = _text(attrs, "aws.ecs.launchtype").lower()
        if launch_type == "ec2":
            return ORIGIN_ECS_EC2
        if launch_type == "fargate":
            return ORIGIN_ECS_FARGATE
        return ORIGIN_ECS
    if ec2 is not None:
        return ORIGIN_EC2
    if attrs.get("cloud.platform") == "aws_app_runner":
        return ORIGIN_APP_RUNNER
    return None


def service_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """``version`` (``service.version``, else the image tag) and, like the Python X-Ray SDK,
    ``runtime`` / ``runtime_version`` when the process detector supplied them."""
    block: dict[str, Any] = {}
    version = attrs.get("service.version")
    if version is None or version == "":
        version = attrs.get("container.image.tag")
    if version is not None and version != "":
        block["version"] = str(version)
    runtime = _text(attrs, "process.runtime.name")
    if runtime:
        block["runtime"] = runtime
        _put(block, "runtime_version", _text(attrs, "process.runtime.version"))
    return block or None
