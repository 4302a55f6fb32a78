from __future__ import annotations

import pytest

from otel_xray.detectors._container_id import from_cgroup, from_mountinfo
from tests.detectors import proc_fixtures as proc


@pytest.mark.parametrize(
    ("text", "container_id"),
    [
        (proc.CGROUP_V1_DOCKER, proc.DOCKER_ID),
        (proc.CGROUP_V1_KUBEPODS, proc.K8S_CONTAINER_ID),
        (proc.CGROUP_V2_SYSTEMD_SCOPE, proc.K8S_CONTAINER_ID),
        (f"0::/system.slice/docker-{proc.DOCKER_ID}.scope\n", proc.DOCKER_ID),
        (proc.CGROUP_V1_FARGATE, proc.FARGATE_ID),
        (proc.CGROUP_V2_NAMESPACED, None),
        ("4:memory:/process_api/be2c8f307bf95b86600bd64961d4f515\n0::/\n", None),
        (f"0::/docker/{proc.DOCKER_ID}f\n", None),  # 65 hex digits: not an id
        ("", None),
    ],
)
def test_from_cgroup(text: str, container_id: str | None) -> None:
    assert from_cgroup(text) == container_id


@pytest.mark.parametrize(
    ("text", "container_id"),
    [
        (proc.MOUNTINFO_DOCKER_V2, proc.DOCKER_ID),
        (proc.MOUNTINFO_CONTAINERD_V2, proc.SANDBOX_ID),
        (
            "812 790 0:45 /overlay-containers/"
            f"{proc.DOCKER_ID}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n",
            proc.DOCKER_ID,
        ),
        (proc.MOUNTINFO_HOST, None),
        ("", None),
    ],
)
def test_from_mountinfo(text: str, container_id: str | None) -> None:
    assert from_mountinfo(text) == container_id


def test_overlay_layer_ids_are_not_container_ids() -> None:
    only_overlay = proc.MOUNTINFO_DOCKER_V2.splitlines()[0] + "\n"

    assert proc.OVERLAY_LAYER in only_overlay
    assert from_mountinfo(only_overlay) is None
