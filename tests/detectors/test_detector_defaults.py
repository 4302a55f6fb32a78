"""default_detectors() order, merged resources, and the entry points as the SDK loads them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource, get_aggregated_resources

from otel_xray.detectors import (
    BeanstalkResourceDetector,
    Ec2ResourceDetector,
    EcsResourceDetector,
    EksResourceDetector,
    LambdaResourceDetector,
    default_detectors,
)
from tests.detectors import proc_fixtures as proc
from tests.detectors.conftest import Kubernetes
from tests.detectors.metadata_servers import RunningServer, config_map
from tests.detectors.test_detector_beanstalk import ENVIRONMENT_CONF
from tests.detectors.test_detector_ec2 import no_warnings

REPO = Path(__file__).resolve().parents[2]
CLUSTER_INFO = {
    ("amazon-cloudwatch", "cluster-info"): config_map(
        "amazon-cloudwatch", "cluster-info", {"cluster.name": "shop-prod"}
    )
}
BASE = Resource({"service.name": "shop"})


def test_order_is_least_specific_first() -> None:
    assert [type(d) for d in default_detectors()] == [
        Ec2ResourceDetector,
        EcsResourceDetector,
        EksResourceDetector,
        BeanstalkResourceDetector,
        LambdaResourceDetector,
    ]


def test_ecs_on_ec2_keeps_both_and_platform_is_ecs(
    imds: Callable[..., RunningServer], ecs_metadata: Callable[..., RunningServer]
) -> None:
    imds()
    ecs_metadata()

    merged = get_aggregated_resources(default_detectors(), BASE).attributes

    assert merged["cloud.platform"] == "aws_ecs"
    assert merged["host.id"] == "i-1234567890abcdef0"
    assert merged["aws.ecs.launchtype"] == "ec2"


def test_eks_node_platform_is_eks(
    imds: Callable[..., RunningServer],
    kubernetes: Callable[..., Kubernetes],
    proc_files: Callable[[str, str], None],
) -> None:
    imds()
    kubernetes(CLUSTER_INFO)
    proc_files(proc.CGROUP_V1_KUBEPODS, proc.MOUNTINFO_HOST)

    merged = get_aggregated_resources(default_detectors(), BASE).attributes

    assert merged["cloud.platform"] == "aws_eks"
    assert merged["k8s.cluster.name"] == "shop-prod"
    assert merged["host.type"] == "t2.micro"


def test_everything_at_once_beanstalk_wins(
    imds: Callable[..., RunningServer],
    ecs_metadata: Callable[..., RunningServer],
    kubernetes: Callable[..., Kubernetes],
    beanstalk_conf: Callable[[str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    imds()
    ecs_metadata()
    kubernetes(CLUSTER_INFO)
    beanstalk_conf(ENVIRONMENT_CONF)
    caplog.set_level(logging.DEBUG)

    merged = get_aggregated_resources(default_detectors(), BASE).attributes

    assert merged["cloud.platform"] == "aws_elastic_beanstalk"
    assert merged["service.instance.id"] == "23"
    assert merged["k8s.cluster.name"] == "shop-prod"
    assert merged["aws.ecs.task.family"] == "curltest"
    assert merged["host.id"] == "i-1234567890abcdef0"
    assert merged["service.name"] == "shop"
    no_warnings(caplog)


def test_nothing_anywhere_is_the_initial_resource_and_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    assert get_aggregated_resources(default_detectors(), BASE) == BASE
    no_warnings(caplog)


_RESOURCE_CREATE = """
import json, logging
logging.basicConfig(level=logging.WARNING)
from opentelemetry.sdk.resources import Resource
print(json.dumps({k: v if not isinstance(v, tuple) else list(v)
                  for k, v in Resource.create().attributes.items()}))
"""


def _resource_in_subprocess(
    env: dict[str, str], code: str = _RESOURCE_CREATE
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ECS_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
        check=True,
    )


def test_entry_points_through_otel_experimental_resource_detectors(
    imds: Callable[..., RunningServer],
    ecs_metadata: Callable[..., RunningServer],
    kubernetes: Callable[..., Kubernetes],
    beanstalk_conf: Callable[[str], Path],
    proc_files: Callable[[str, str], None],
) -> None:
    """What ``opentelemetry-instrument`` does: ``Resource.create()`` loads the entry points."""
    imds()
    ecs_metadata()
    kubernetes(CLUSTER_INFO)
    beanstalk_conf(ENVIRONMENT_CONF)
    proc_files(proc.CGROUP_V1_KUBEPODS, proc.MOUNTINFO_HOST)
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("OTEL_", "AWS_", "ECS_", "KUBERNETES_"))
    }
    env["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] = (
        "awsxray_lambda,awsxray_ec2,awsxray_ecs,awsxray_eks,awsxray_beanstalk"
    )
    env["OTEL_SERVICE_NAME"] = "shop"

    done = _resource_in_subprocess(env)
    attributes = json.loads(done.stdout)

    assert attributes["cloud.platform"] == "aws_elastic_beanstalk"
    assert attributes["service.name"] == "shop"
    assert attributes["service.instance.id"] == "23"
    assert attributes["host.id"] == "i-1234567890abcdef0"
    assert attributes["aws.ecs.cluster.arn"] == "arn:aws:ecs:us-west-2:111122223333:cluster/default"
    assert attributes["k8s.cluster.name"] == "shop-prod"
    assert attributes["container.id"] == proc.K8S_CONTAINER_ID
    assert done.stderr == ""


def test_entry_points_off_platform_are_silent() -> None:
    env = {
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": (
            "awsxray_ec2,awsxray_ecs,awsxray_eks,awsxray_beanstalk,awsxray_lambda"
        ),
        **{k: v for k, v in os.environ.items() if k.startswith("OTEL_XRAY_")},
    }

    done = _resource_in_subprocess(env)

    assert "cloud.provider" not in json.loads(done.stdout)
    assert done.stderr == ""


_FORK = """
import json, os
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
provider = TracerProvider(resource=Resource.create(), shutdown_on_exit=False)
before = provider.resource.attributes["service.instance.id"]
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write_end, provider.resource.attributes["service.instance.id"].encode())
    os._exit(0)
os.close(write_end)
after = os.read(read_end, 1000).decode()
os.waitpid(pid, 0)
print(json.dumps({"before": before, "after_fork": after}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_beanstalk_deployment_id_survives_a_pre_forking_server(
    beanstalk_conf: Callable[[str], Path],
) -> None:
    """The SDK re-runs process-dependent detectors in forked children (gunicorn workers)."""
    beanstalk_conf(ENVIRONMENT_CONF)
    env = {k: v for k, v in os.environ.items() if k.startswith("OTEL_XRAY_")}
    env["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] = "awsxray_beanstalk"

    done = _resource_in_subprocess(env, _FORK)

    assert json.loads(done.stdout) == {"before": "23", "after_fork": "23"}
