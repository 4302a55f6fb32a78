from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.detectors.metadata_servers import (
    PLAIN_ISSUER,
    ImdsBehaviour,
    RefusedPort,
    RunningServer,
    ecs_container_document,
    ecs_route,
    ecs_task_document,
    imds_route,
    k8s_route,
    make_tls,
    service_account_token,
)

# Everything a detector reads from the environment: cleared so the host running the tests
# (which might be an EC2 instance, a pod, a Lambda...) cannot leak into them.
_DETECTOR_ENV = [
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "EKS_CLUSTER_NAME",
    "K8S_POD_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "OTEL_XRAY_DETECTOR_TIMEOUT",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "AWS_XRAY_DAEMON_ADDRESS",
]


def write_sysfs(root: Path, files: dict[str, str]) -> Path:
    """A fake ``/sys`` holding the given files (paths relative to the root)."""
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real platform: non-EC2 sysfs, no service account, no Beanstalk file, no /proc ids."""
    for name in _DETECTOR_ENV:
        monkeypatch.delenv(name, raising=False)
    base = tmp_path / "host"
    sysfs = write_sysfs(base / "sys", {"devices/virtual/dmi/id/sys_vendor": "QEMU\n"})
    monkeypatch.setenv("OTEL_XRAY_SYSFS_ROOT", str(sysfs))
    monkeypatch.setenv("OTEL_XRAY_K8S_SERVICEACCOUNT_DIR", str(base / "no-serviceaccount"))
    monkeypatch.setenv("OTEL_XRAY_BEANSTALK_CONF", str(base / "no-environment.conf"))
    monkeypatch.setenv("OTEL_XRAY_CGROUP_PATH", str(base / "no-cgroup"))
    monkeypatch.setenv("OTEL_XRAY_MOUNTINFO_PATH", str(base / "no-mountinfo"))
    monkeypatch.setenv("HOSTNAME", "web-7d9f8b6c5-x2x4q")
    return base


@pytest.fixture
def proc_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Install cgroup and mountinfo texts where the detectors look (through the env vars)."""

    def install(cgroup: str, mountinfo: str) -> None:
        cgroup_file = tmp_path / "proc-self-cgroup"
        mountinfo_file = tmp_path / "proc-self-mountinfo"
        cgroup_file.write_text(cgroup)
        mountinfo_file.write_text(mountinfo)
        monkeypatch.setenv("OTEL_XRAY_CGROUP_PATH", str(cgroup_file))
        monkeypatch.setenv("OTEL_XRAY_MOUNTINFO_PATH", str(mountinfo_file))

    return install


@pytest.fixture
def refused_port() -> Iterator[RefusedPort]:
    port = RefusedPort()
    try:
        yield port
    finally:
        port.close()


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


@pytest.fixture
def imds(
    servers: list[RunningServer], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., RunningServer]:
    """Start a fake IMDS and point ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` at it."""

    def start(behaviour: ImdsBehaviour | None = None) -> RunningServer:
        server = RunningServer(imds_route(behaviour or ImdsBehaviour()))
        servers.append(server)
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url)
        return server

    return start


@pytest.fixture
def ecs_metadata(
    servers: list[RunningServer], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., RunningServer]:
    """Start a fake task metadata endpoint and set ``ECS_CONTAINER_METADATA_URI_V4`` (or v3)."""

    def start(
        container: dict[str, Any] | None = None,
        task: dict[str, Any] | None = None,
        version: int = 4,
    ) -> RunningServer:
        prefix = f"/v{version}/0206b271-b33f-47ab-86c6-a0ba208a70a9"
        server = RunningServer(
            ecs_route(container or ecs_container_document(), task or ecs_task_document(), prefix)
        )
        servers.append(server)
        env = "ECS_CONTAINER_METADATA_URI_V4" if version == 4 else "ECS_CONTAINER_METADATA_URI"
        monkeypatch.setenv(env, server.url + prefix)
        return server

    return start


@dataclass
class Kubernetes:
    server: RunningServer | None
    serviceaccount_dir: Path
    token: str


@pytest.fixture
def kubernetes(
    servers: list[RunningServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., Kubernetes]:
    """A pod's view: service-account dir (token, ca.crt, namespace) and an HTTPS API server."""

    def start(
        config_maps: dict[tuple[str, str], dict[str, Any]] | None = None,
        *,
        forbid: bool = False,
        issuer: str = PLAIN_ISSUER,
        trusted: bool = True,
        api: bool = True,
    ) -> Kubernetes:
        token = service_account_token(issuer)
        account_dir = tmp_path / "serviceaccount"
        account_dir.mkdir(exist_ok=True)
        (account_dir / "token").write_text(token)
        (account_dir / "namespace").write_text("shop")
        cluster_tls = make_tls(tmp_path, "cluster")
        server_tls = cluster_tls if trusted else make_tls(tmp_path, "impostor")
        (account_dir / "ca.crt").write_bytes(cluster_tls.ca_pem)
        monkeypatch.setenv("OTEL_XRAY_K8S_SERVICEACCOUNT_DIR", str(account_dir))
        server = None
        if api:
            server = RunningServer(
                k8s_route(config_maps or {}, token=token, forbid=forbid),
                tls=server_tls.server_context,
            )
            servers.append(server)
            monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
        return Kubernetes(server, account_dir, token)

    return start


@pytest.fixture
def beanstalk_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        conf = tmp_path / "elasticbeanstalk" / "xray" / "environment.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
        monkeypatch.setenv("OTEL_XRAY_BEANSTALK_CONF", str(conf))
        return conf

    return write
