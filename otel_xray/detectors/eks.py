"""EKS: the pod's view of its cluster, established without demanding extra RBAC.

Kubernetes itself is recognised by the service-account token file kubelet mounts in every pod
(none there: empty result, no I/O). "This cluster is EKS" then comes from the first that works:

1. ``EKS_CLUSTER_NAME`` (the user says so; also gives the name),
2. the ``amazon-cloudwatch/cluster-info`` ConfigMap (Container Insights; gives the name),
3. the token's issuer, ``https://oidc.eks.<region>.amazonaws.com/id/…`` (no API call needed;
   gives the region),
4. the ``kube-system/aws-auth`` ConfigMap exists (no name).

Upstream needs (2) and (4) and returns nothing when the pod may not read ConfigMaps; here a pod
without those permissions still gets ``cloud.platform=aws_eks`` through (3), and any pod in
Kubernetes keeps ``k8s.pod.name``, ``k8s.namespace.name`` and ``container.id``. Without proof of
EKS no ``cloud.*`` is claimed, so the segment origin is not invented.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from otel_xray.config import (
    EKS_CLUSTER_NAME_ENV,
    HOSTNAME_ENV,
    K8S_POD_NAME_ENV,
    K8S_SERVICEACCOUNT_DIR_ENV,
    KUBERNETES_SERVICE_HOST_ENV,
    KUBERNETES_SERVICE_PORT_ENV,
    env_text,
)
from otel_xray.detectors._base import (
    Attributes,
    AwsResourceDetector,
    Deadline,
    logger,
    read_text,
)
from otel_xray.detectors._container_id import detect_container_id
from otel_xray.detectors._http import request

DEFAULT_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

_CLUSTER_INFO = ("amazon-cloudwatch", "cluster-info")
_AWS_AUTH = ("kube-system", "aws-auth")
_EKS_ISSUER = re.compile(r"^https://oidc\.eks\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/id/")


def issuer_region(token: str) -> str | None:
    """The region in an EKS service-account token's issuer, or None for any other token.

    Only the unsigned payload is read: this decides what to report, not whom to trust.
    """
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    payload = pieces[1] + "=" * (-len(pieces[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    match = _EKS_ISSUER.match(issuer) if isinstance(issuer, str) else None
    return match.group(1) if match else None


def _api_url(environ: Mapping[str, str]) -> str | None:
    host = env_text(KUBERNETES_SERVICE_HOST_ENV, environ)
    if not host:
        return None
    port = env_text(KUBERNETES_SERVICE_PORT_ENV, environ) or "443"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


class _KubernetesApi:
    """GETs against the API server with the pod's own token, trusting only the cluster CA."""

    def __init__(self, base_url: str, token: str, ca_file: str, deadline: Deadline) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._context = ssl.create_default_context(cafile=ca_file)
        self._deadline = deadline

    def config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap, or None when it is absent or the pod may not read it."""
        path = f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"
        response = request(
            "GET",
            self._base_url + path,
            self._deadline,
            headers=self._headers,
            ssl_context=self._context,
        )
        if not response.ok:
            logger.debug("EksResourceDetector: %s/%s: HTTP %d", namespace, name, response.status)
            return None
        document = json.loads(response.body)
        return document if isinstance(document, dict) else None


class EksResourceDetector(AwsResourceDetector):
    """``k8s.*`` and ``container.id`` in any pod; ``cloud.platform=aws_eks`` once EKS is proven."""

    def __init__(
        self,
        raise_on_error: bool = False,
        *,
        serviceaccount_dir: str | None = None,
        api_url: str | None = None,
        cluster_name: str | None = None,
        cgroup_path: str | None = None,
        mountinfo_path: str | None = None,
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(raise_on_error, timeout=timeout, environ=environ)
        self._serviceaccount_dir = serviceaccount_dir
        self._api_url = api_url
        self._cluster_name = cluster_name
        self._cgroup_path = cgroup_path
        self._mountinfo_path = mountinfo_path

    def _detect(self, deadline: Deadline) -> Attributes:
        account_dir = self.env_or(
            self._serviceaccount_dir, K8S_SERVICEACCOUNT_DIR_ENV, DEFAULT_SERVICEACCOUNT_DIR
        )
        token = (read_text(os.path.join(account_dir, "token")) or "").strip()
        if not token:
            return {}

        attributes: Attributes = {}
        pod_name = (
            env_text(K8S_POD_NAME_ENV, self.env)
            or env_text(HOSTNAME_ENV, self.env)
            or socket.gethostname()
        )
        if pod_name:
            attributes["k8s.pod.name"] = pod_name
        namespace = (read_text(os.path.join(account_dir, "namespace")) or "").strip()
        if namespace:
            attributes["k8s.namespace.name"] = namespace
        container_id = detect_container_id(self._cgroup_path, self._mountinfo_path, self.env)
        if container_id:
            attributes["container.id"] = container_id

        cluster_name = self.env_or(self._cluster_name, EKS_CLUSTER_NAME_ENV, "")
        region = issuer_region(token)
        is_eks = bool(cluster_name) or region is not None
        if not cluster_name:
            api = self._api(account_dir, token, deadline)
            if api is not None:
                cluster_name = self._cluster_name_from_api(api)
                is_eks = is_eks or bool(cluster_name) or self._has_aws_auth(api)

        if is_eks:
            attributes["cloud.provider"] = "aws"
            attributes["cloud.platform"] = "aws_eks"
            if cluster_name:
                attributes["k8s.cluster.name"] = cluster_name
            if region:
                attributes["cloud.region"] = region
        else:
            logger.debug("EksResourceDetector: Kubernetes, but nothing shows it is EKS")
        return attributes

    def _api(self, account_dir: str, token: str, deadline: Deadline) -> _KubernetesApi | None:
        base_url = self._api_url or _api_url(self.env)
        ca_file = os.path.join(account_dir, "ca.crt")
        if base_url is None or not os.path.isfile(ca_file):
            logger.debug("EksResourceDetector: no API server address or no ca.crt")
            return None
        return _KubernetesApi(base_url, token, ca_file, deadline)

    @staticmethod
    def _cluster_name_from_api(api: _KubernetesApi) -> str:
        try:
            config_map = api.config_map(*_CLUSTER_INFO)
        except Exception as exc:  # noqa: BLE001 - the name is optional
            logger.debug("EksResourceDetector: cluster-info: %s", exc)
            return ""
        data = config_map.get("data") if config_map else None
        name = data.get("cluster.name") if isinstance(data, dict) else None
        return name.strip() if isinstance(name, str) else ""

    @staticmethod
    def _has_aws_auth(api: _KubernetesApi) -> bool:
        try:
            return api.config_map(*_AWS_AUTH) is not None
        except Exception as exc:  # noqa: BLE001 - proof of EKS is optional
            logger.debug("EksResourceDetector: aws-auth: %s", exc)
            return False
