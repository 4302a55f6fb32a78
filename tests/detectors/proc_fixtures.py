"""``/proc/self/cgroup`` and ``/proc/self/mountinfo`` texts as real hosts produce them."""

from __future__ import annotations

DOCKER_ID = "3b1c2a4f5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"
K8S_CONTAINER_ID = "8e5d3a1b2c4f6e7d9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
SANDBOX_ID = "5f9e8d7c6b5a493827161504f3e2d1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a2"
OVERLAY_LAYER = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
FARGATE_ID = "8a9f7c6d5e4b3a2918f7e6d5c4b3a291-3367829483"

# Docker on a cgroup v1 host (Amazon Linux 2, ECS on EC2).
CGROUP_V1_DOCKER = "".join(
    f"{n}:{ctl}:/docker/{DOCKER_ID}\n"
    for n, ctl in [
        (11, "pids"),
        (10, "devices"),
        (9, "cpuset"),
        (8, "memory"),
        (4, "cpu,cpuacct"),
        (1, "name=systemd"),
    ]
)

# Kubernetes (EKS, dockershim era) on cgroup v1.
CGROUP_V1_KUBEPODS = (
    "12:memory:/kubepods/burstable/pod2c48913c-b29f-11e7-9350-020968147796/"
    f"{K8S_CONTAINER_ID}\n"
    "11:cpuset:/kubepods/burstable/pod2c48913c-b29f-11e7-9350-020968147796/"
    f"{K8S_CONTAINER_ID}\n"
)

# systemd cgroup driver, cgroup v2 without a cgroup namespace (containerd on EKS).
CGROUP_V2_SYSTEMD_SCOPE = (
    "0::/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod2c48913c_b29f_11e7_9350_020968147796.slice/"
    f"cri-containerd-{K8S_CONTAINER_ID}.scope\n"
)

# ECS Fargate platform 1.4 (cgroup v1): task id / task id-number.
CGROUP_V1_FARGATE = (
    f"9:memory:/ecs/8a9f7c6d5e4b3a2918f7e6d5c4b3a291/{FARGATE_ID}\n"
    f"1:name=systemd:/ecs/8a9f7c6d5e4b3a2918f7e6d5c4b3a291/{FARGATE_ID}\n"
)

# cgroup v2 with a cgroup namespace (Docker >= 20.10 default): no id at all.
CGROUP_V2_NAMESPACED = "0::/\n"

# Docker on a cgroup v2 host: the overlay root mentions layer ids, the bind mounts the container.
MOUNTINFO_DOCKER_V2 = (
    "1226 1011 0:120 / / rw,relatime master:321 - overlay overlay rw,"
    f"lowerdir=/var/lib/docker/overlay2/l/KX3Q:/var/lib/docker/overlay2/l/ZP7A,"
    f"upperdir=/var/lib/docker/overlay2/{OVERLAY_LAYER}/diff,"
    f"workdir=/var/lib/docker/overlay2/{OVERLAY_LAYER}/work\n"
    "1227 1226 0:123 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "1231 1226 0:127 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n"
    f"1235 1226 259:1 /var/lib/docker/containers/{DOCKER_ID}/resolv.conf /etc/resolv.conf "
    "rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
    f"1236 1226 259:1 /var/lib/docker/containers/{DOCKER_ID}/hostname /etc/hostname "
    "rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
    f"1237 1226 259:1 /var/lib/docker/containers/{DOCKER_ID}/hosts /etc/hosts "
    "rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
)

# containerd (CRI) pod on cgroup v2: only the sandbox is named.
MOUNTINFO_CONTAINERD_V2 = (
    "2001 1990 0:310 / / rw,relatime - overlay overlay rw,"
    "lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/41/fs\n"
    "2010 2001 259:1 /var/lib/kubelet/pods/2c48913c-b29f-11e7-9350-020968147796/etc-hosts "
    "/etc/hosts rw,noatime - xfs /dev/nvme0n1p1 rw\n"
    "2011 2001 259:1 /var/lib/kubelet/pods/2c48913c-b29f-11e7-9350-020968147796/containers/"
    "app/0a1b2c3d /dev/termination-log rw,noatime - xfs /dev/nvme0n1p1 rw\n"
    "2012 2001 259:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/"
    f"{SANDBOX_ID}/hostname /etc/hostname rw,noatime - xfs /dev/nvme0n1p1 rw\n"
    "2013 2001 259:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/"
    f"{SANDBOX_ID}/resolv.conf /etc/resolv.conf rw,noatime - xfs /dev/nvme0n1p1 rw\n"
)

# A machine that is not a container.
MOUNTINFO_HOST = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
    "27 1 259:1 / / rw,relatime - ext4 /dev/nvme0n1p1 rw\n"
)
