from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from otel_xray.detectors.eks import EksResourceDetector, issuer_region
from tests.detectors import proc_fixtures as proc
from tests.detectors.conftest import Kubernetes
from tests.detectors.metadata_servers import (
    EKS_ISSUER,
    PLAIN_ISSUER,
    RefusedPort,
    config_map,
    service_account_token,
)
from tests.detectors.test_detector_ec2 import no_warnings

CLUSTER_INFO = {
    ("amazon-cloudwatch", "cluster-info"): config_map(
        "amazon-cloudwatch", "cluster-info", {"cluster.name": "shop-prod", "logs.region": "x"}
    )
}
AWS_AUTH = {("kube-system", "aws-auth"): config_map("kube-system", "aws-auth", {"mapRoles": ""})}
POD = {
    "k8s.pod.name": "web-7d9f8b6c5-x2x4q",
    "k8s.namespace.name": "shop",
    "container.id": proc.K8S_CONTAINER_ID,
}
EKS = {"cloud.provider": "aws", "cloud.platform": "aws_eks"}
CLUSTER_INFO_PATH = "/api/v1/namespaces/amazon-cloudwatch/configmaps/cluster-info"
AWS_AUTH_PATH = "/api/v1/namespaces/kube-system/configmaps/aws-auth"


@pytest.fixture(autouse=True)
def kubepods_cgroup(proc_files: Callable[[str, str], None]) -> None:
    proc_files(proc.CGROUP_V1_KUBEPODS, proc.MOUNTINFO_HOST)


def test_cluster_name_from_the_cluster_info_config_map(
    kubernetes: Callable[..., Kubernetes], caplog: pytest.LogCaptureFixture
) -> None:
    k8s = kubernetes(CLUSTER_INFO)
    caplog.set_level(logging.DEBUG)

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == {**POD, **EKS, "k8s.cluster.name": "shop-prod"}
    assert k8s.server is not None
    assert [(r.path, r.headers["authorization"]) for r in k8s.server.seen] == [
        (CLUSTER_INFO_PATH, f"Bearer {k8s.token}")
    ]
    no_warnings(caplog)


def test_env_cluster_name_needs_no_api_call(
    kubernetes: Callable[..., Kubernetes], monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s = kubernetes(CLUSTER_INFO)
    monkeypatch.setenv("EKS_CLUSTER_NAME", "from-env")
    monkeypatch.setenv("K8S_POD_NAME", "downward-api-name")

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == {
        **POD,
        **EKS,
        "k8s.pod.name": "downward-api-name",
        "k8s.cluster.name": "from-env",
    }
    assert k8s.server is not None and k8s.server.seen == []


def test_aws_auth_config_map_proves_eks_without_a_name(
    kubernetes: Callable[..., Kubernetes],
) -> None:
    k8s = kubernetes(AWS_AUTH)

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == {**POD, **EKS}
    assert k8s.server is not None
    assert [r.path for r in k8s.server.seen] == [CLUSTER_INFO_PATH, AWS_AUTH_PATH]


def test_forbidden_config_maps_with_an_eks_token_issuer(
    kubernetes: Callable[..., Kubernetes], caplog: pytest.LogCaptureFixture
) -> None:
    """No RBAC for ConfigMaps (403): the token's EKS issuer still establishes the platform."""
    kubernetes(forbid=True, issuer=EKS_ISSUER)
    caplog.set_level(logging.DEBUG)

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == {**POD, **EKS, "cloud.region": "eu-west-1"}
    no_warnings(caplog)


def test_forbidden_config_maps_elsewhere_keep_only_pod_facts(
    kubernetes: Callable[..., Kubernetes], caplog: pytest.LogCaptureFixture
) -> None:
    k8s = kubernetes(forbid=True, issuer=PLAIN_ISSUER)
    caplog.set_level(logging.DEBUG)

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == POD
    assert k8s.server is not None
    assert [r.path for r in k8s.server.seen] == [CLUSTER_INFO_PATH, AWS_AUTH_PATH]
    no_warnings(caplog)


def test_api_server_with_an_untrusted_certificate_is_not_believed(
    kubernetes: Callable[..., Kubernetes], caplog: pytest.LogCaptureFixture
) -> None:
    k8s = kubernetes(CLUSTER_INFO, trusted=False)
    caplog.set_level(logging.DEBUG)

    resource = EksResourceDetector().detect()

    assert dict(resource.attributes) == POD
    assert k8s.server is not None and k8s.server.seen == []
    no_warnings(caplog)


def test_unreachable_api_is_quick_and_quiet(
    kubernetes: Callable[..., Kubernetes],
    refused_port: RefusedPort,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kubernetes(api=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(refused_port.port))
    caplog.set_level(logging.DEBUG)

    started = time.monotonic()
    resource = EksResourceDetector(raise_on_error=True).detect()
    elapsed = time.monotonic() - started

    assert dict(resource.attributes) == POD
    assert elapsed < 1.0  # the detector's own budget
    no_warnings(caplog)


def test_container_id_from_containerd_sandbox_under_cgroup_v2(
    kubernetes: Callable[..., Kubernetes], proc_files: Callable[[str, str], None]
) -> None:
    kubernetes(CLUSTER_INFO)
    proc_files(proc.CGROUP_V2_NAMESPACED, proc.MOUNTINFO_CONTAINERD_V2)

    assert EksResourceDetector().detect().attributes["container.id"] == proc.SANDBOX_ID


def test_constructor_arguments_override_the_environment(
    kubernetes: Callable[..., Kubernetes], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    k8s = kubernetes(AWS_AUTH)
    assert k8s.server is not None
    monkeypatch.setenv("OTEL_XRAY_K8S_SERVICEACCOUNT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")

    resource = EksResourceDetector(
        serviceaccount_dir=str(k8s.serviceaccount_dir),
        api_url=k8s.server.url,
        cluster_name="given",
    ).detect()

    assert dict(resource.attributes) == {**POD, **EKS, "k8s.cluster.name": "given"}


def test_outside_kubernetes_is_empty_and_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    assert dict(EksResourceDetector().detect().attributes) == {}
    no_warnings(caplog)


@pytest.mark.parametrize(
    ("token", "region"),
    [
        (service_account_token(EKS_ISSUER), "eu-west-1"),
        (
            service_account_token("https://oidc.eks.cn-north-1.amazonaws.com.cn/id/ABCDEF"),
            "cn-north-1",
        ),
        (service_account_token(PLAIN_ISSUER), None),
        (service_account_token("https://oidc.eks.evil.example.com/id/X"), None),
        ("not-a-jwt", None),
        ("a.%%%.c", None),
    ],
)
def test_issuer_region(token: str, region: str | None) -> None:
    assert issuer_region(token) == region
