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
ORIGIN_LAMBDA = "AWS::Lambda::Function"
ORIGIN_APP_RUNNER = "AWS::AppRunner::Service"

PLATFORM_EC2 = "aws_ec2"
PLATFORM_ECS = "aws_ecs"
PLATFORM_EKS = "aws_eks"
PLATFORM_BEANSTALK = "aws_elastic_beanstalk"
PLATFORM_LAMBDA = "aws_lambda"
PLATFORM_APP_RUNNER = "aws_app_runner"

#: X-Ray origin -> the ``cloud.platform`` it stands for. One table for both directions: the
#: translator finds a resource's origin through the platform's blocks below, the collector's
#: converter (segment -> OTLP) the platform of a document's origin. A Lambda function's origin
#: is the Lambda service's to write (its own segment), never the translator's.
ORIGIN_PLATFORMS = {
    ORIGIN_EC2: PLATFORM_EC2,
    ORIGIN_ECS: PLATFORM_ECS,
    ORIGIN_ECS_EC2: PLATFORM_ECS,
    ORIGIN_ECS_FARGATE: PLATFORM_ECS,
    ORIGIN_EKS: PLATFORM_EKS,
    ORIGIN_BEANSTALK: PLATFORM_BEANSTALK,
    ORIGIN_LAMBDA: PLATFORM_LAMBDA,
    ORIGIN_APP_RUNNER: PLATFORM_APP_RUNNER,
}
#: ``aws.ecs.launchtype`` (any case) -> the ECS origin that names it (else ``ORIGIN_ECS``).
ECS_LAUNCH_TYPE_ORIGINS = {"ec2": ORIGIN_ECS_EC2, "fargate": ORIGIN_ECS_FARGATE}

# The resource half of each ``aws`` block: (field of the block, resource attribute it comes
# from), in the order the block is written. Read forwards here, backwards by the converter.
EC2_FIELDS = (
    ("instance_id", "host.id"),
    ("availability_zone", "cloud.availability_zone"),
    # ``instance_size`` is the documented key; the Python X-Ray SDK wrote ``instance_type``.
    ("instance_size", "host.type"),
    ("instance_type", "host.type"),
    ("ami_id", "host.image.id"),
)
ECS_FIELDS = (
    ("container", "container.name"),
    ("container_id", "container.id"),
    ("availability_zone", "cloud.availability_zone"),
    ("container_arn", "aws.ecs.container.arn"),
    ("cluster_arn", "aws.ecs.cluster.arn"),
    ("task_arn", "aws.ecs.task.arn"),
    ("task_family", "aws.ecs.task.family"),
    ("launch_type", "aws.ecs.launchtype"),
)
EKS_FIELDS = (
    ("cluster_name", "k8s.cluster.name"),
    ("pod", "k8s.pod.name"),
    ("container_id", "container.id"),
)
BEANSTALK_FIELDS = (
    ("environment_name", "service.namespace"),
    ("version_label", "service.version"),
)
#: The deployment id is a number in the block (the resource may hold it as text).
BEANSTALK_DEPLOYMENT = ("deployment_id", "service.instance.id")

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


def _block(attrs: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for name, key in fields:
        _put(block, name, _text(attrs, key))
    return block


def ec2_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Present on EC2, or on AWS wherever ``host.id`` is an EC2 instance id (ECS on EC2, EKS
    nodes).

    Only an ``i-`` id counts: the generic host detector puts ``/etc/machine-id`` in
    ``host.id``, which is no instance.
    """
    if attrs.get("cloud.platform") != PLATFORM_EC2 and not (
        _text(attrs, "host.id").startswith("i-") and _on_aws(attrs)
    ):
        return None
    return _block(attrs, EC2_FIELDS)


def ecs_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != PLATFORM_ECS and not (
        _on_aws(attrs) and any(k in attrs for k in _ECS_EVIDENCE)
    ):
        return None
    return _block(attrs, ECS_FIELDS)


def eks_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != PLATFORM_EKS and not (
        _on_aws(attrs) and _text(attrs, "k8s.cluster.name")
    ):
        return None
    return _block(attrs, EKS_FIELDS)


def beanstalk_block(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    if attrs.get("cloud.platform") != PLATFORM_BEANSTALK:
        return None
    block = _block(attrs, BEANSTALK_FIELDS)
    name, key = BEANSTALK_DEPLOYMENT
    deployment = attrs.get(key)
    if isinstance(deployment, int) and not isinstance(deployment, bool):
        block[name] = deployment
    elif isinstance(deployment, str) and deployment.isdigit():
        block[name] = int(deployment)
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
        return ECS_LAUNCH_TYPE_ORIGINS.get(launch_type, ORIGIN_ECS)
    if ec2 is not None:
        return ORIGIN_EC2
    if attrs.get("cloud.platform") == PLATFORM_APP_RUNNER:
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
