"""The id of the container this process runs in, from ``/proc/self``.

Under cgroup v1 (and under cgroup v2 without a cgroup namespace) the id is part of the cgroup
path: ``/docker/<id>``, ``/kubepods/.../<id>``, ``docker-<id>.scope``,
``cri-containerd-<id>.scope``, or ECS Fargate's ``/ecs/<task>/<task>-<n>``. Under cgroup v2
with a namespace (the Docker and containerd default today) ``/proc/self/cgroup`` says only
``0::/`` -- the case where the upstream detectors give up. The runtime's bind mounts still name
the container in ``/proc/self/mountinfo``: ``/var/lib/docker/containers/<id>/hostname``
(Docker, and Podman's ``overlay-containers/<id>``), or, under containerd/CRI (EKS),
``.../sandboxes/<id>/hostname``: the pod sandbox's id, the best that file offers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from otel_xray.config import CGROUP_PATH_ENV, MOUNTINFO_PATH_ENV, explicit_or_env
from otel_xray.detectors._base import read_text

DEFAULT_CGROUP = "/proc/self/cgroup"
DEFAULT_MOUNTINFO = "/proc/self/mountinfo"

_HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_ECS_TASK_CONTAINER = re.compile(r"(?:^|/)([0-9a-f]{32}-[0-9]{1,20})$")
_MOUNT_CONTAINER = re.compile(r"(?:^|/)(?:overlay-)?containers/([0-9a-f]{64})(?:/|$)")
_MOUNT_SANDBOX = re.compile(r"(?:^|/)sandboxes/([0-9a-f]{64})(?:/|$)")


def from_cgroup(text: str) -> str | None:
    """The container id in a ``/proc/<pid>/cgroup`` text, or None (e.g. cgroup v2's ``0::/``)."""
    for line in text.splitlines():
        fields = line.strip().split(":", 2)
        if len(fields) != 3:
            continue
        path = fields[2]
        ids: list[str] = _HEX64.findall(path)
        if ids:
            return ids[-1]
        fargate = _ECS_TASK_CONTAINER.search(path)
        if fargate:
            return fargate.group(1)
    return None


def from_mountinfo(text: str) -> str | None:
    """The container id named by the runtime's bind mounts in a ``mountinfo`` text, or None."""
    sandbox: str | None = None
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        root = fields[3]  # the mounted directory's path inside its own filesystem
        match = _MOUNT_CONTAINER.search(root)
        if match:
            return match.group(1)
        if sandbox is None:
            found = _MOUNT_SANDBOX.search(root)
            if found:
                sandbox = found.group(1)
    return sandbox


def detect_container_id(
    cgroup_path: str | None = None,
    mountinfo_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """cgroup first (it names the container itself), then mountinfo; paths overridable."""
    cgroup_file = explicit_or_env(cgroup_path, CGROUP_PATH_ENV, DEFAULT_CGROUP, environ)
    cgroup_text = read_text(cgroup_file)
    if cgroup_text:
        found = from_cgroup(cgroup_text)
        if found:
            return found
    mountinfo_file = explicit_or_env(mountinfo_path, MOUNTINFO_PATH_ENV, DEFAULT_MOUNTINFO, environ)
    mountinfo_text = read_text(mountinfo_file)
    if mountinfo_text:
        return from_mountinfo(mountinfo_text)
    return None
