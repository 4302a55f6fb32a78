"""EC2: the instance identity document from the instance metadata service (IMDS).

Off AWS the metadata address 169.254.169.254 usually does not answer at all, so a plain probe
costs its whole timeout (upstream waits a full second). When the endpoint is the default one,
the detector first asks the kernel: on Linux, ``/sys`` says whether the machine is an EC2
instance (DMI vendor "Amazon EC2" on Nitro, ``*.amazon`` BIOS and ``ec2…`` UUIDs on Xen). A
definite "no" costs a few file reads and no network. The network probe happens when the answer
is "yes" or "can't tell" (no ``/sys``, other OS), with a short connect timeout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from otel_xray.config import (
    EC2_METADATA_DISABLED_ENV,
    EC2_METADATA_ENDPOINT_ENV,
    SYSFS_ROOT_ENV,
    env_text,
    on_lambda,
)
from otel_xray.detectors._base import (
    Attributes,
    AwsResourceDetector,
    Deadline,
    logger,
    read_text,
)
from otel_xray.detectors._http import NoResponse, request

DEFAULT_ENDPOINT = "http://169.254.169.254"
DEFAULT_SYSFS = "/sys"

_TOKEN_PATH = "/latest/api/token"
_IDENTITY_PATH = "/latest/dynamic/instance-identity/document"
_HOSTNAME_PATH = "/latest/meta-data/hostname"
_TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
_TOKEN_HEADER = "X-aws-ec2-metadata-token"
_TOKEN_TTL_SECONDS = "60"
# The answers by which IMDS (or a proxy in front of it) says "no tokens here": use IMDSv1.
_TOKEN_REFUSED = frozenset({403, 404, 405})
_DMI_VENDOR_FILES = ("sys_vendor", "board_vendor", "bios_vendor")


def looks_like_ec2(sysfs_root: str) -> bool | None:
    """True/False from the kernel's view of the hardware, None when there is no such view."""
    dmi = os.path.join(sysfs_root, "devices", "virtual", "dmi", "id")
    hypervisor_uuid = read_text(os.path.join(sysfs_root, "hypervisor", "uuid"))
    if not os.path.isdir(dmi) and hypervisor_uuid is None:
        return None
    if hypervisor_uuid is not None and hypervisor_uuid.strip().lower().startswith("ec2"):
        return True
    for name in _DMI_VENDOR_FILES:
        value = read_text(os.path.join(dmi, name))
        if value is not None and "amazon ec2" in value.lower():
            return True
    bios_version = read_text(os.path.join(dmi, "bios_version"))
    if bios_version is not None and "amazon" in bios_version.lower():
        return True
    product_uuid = read_text(os.path.join(dmi, "product_uuid"))  # root-only on most systems
    return product_uuid is not None and product_uuid.strip().lower().startswith("ec2")


class Ec2ResourceDetector(AwsResourceDetector):
    """``cloud.*`` and ``host.*`` of the EC2 instance; empty anywhere else.

    Honours ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` and ``AWS_EC2_METADATA_DISABLED`` like the AWS
    SDKs. On Lambda (no IMDS there) it returns at once.
    """

    def __init__(
        self,
        raise_on_error: bool = False,
        *,
        endpoint: str | None = None,
        sysfs_root: str | None = None,
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(raise_on_error, timeout=timeout, environ=environ)
        self._endpoint = endpoint
        self._sysfs_root = sysfs_root

    def _detect(self, deadline: Deadline) -> Attributes:
        if env_text(EC2_METADATA_DISABLED_ENV, self.env).lower() == "true":
            logger.debug("Ec2ResourceDetector: %s=true", EC2_METADATA_DISABLED_ENV)
            return {}
        if on_lambda(self.env):
            return {}
        endpoint = self.env_or(self._endpoint, EC2_METADATA_ENDPOINT_ENV, DEFAULT_ENDPOINT)
        endpoint = endpoint.rstrip("/")
        if endpoint == DEFAULT_ENDPOINT:
            verdict = looks_like_ec2(self.env_or(self._sysfs_root, SYSFS_ROOT_ENV, DEFAULT_SYSFS))
            if verdict is False:
                return {}

        token = self._token(endpoint, deadline)
        headers = {_TOKEN_HEADER: token} if token is not None else {}
        identity_response = request("GET", endpoint + _IDENTITY_PATH, deadline, headers=headers)
        if not identity_response.ok:
            logger.debug(
                "Ec2ResourceDetector: identity document: HTTP %d", identity_response.status
            )
            return {}
        identity = json.loads(identity_response.body)
        if not isinstance(identity, dict) or not identity.get("instanceId"):
            return {}

        attributes: Attributes = {
            "cloud.provider": "aws",
            "cloud.platform": "aws_ec2",
        }
        for key, field in (
            ("cloud.account.id", "accountId"),
            ("cloud.region", "region"),
            ("cloud.availability_zone", "availabilityZone"),
            ("host.id", "instanceId"),
            ("host.type", "instanceType"),
            ("host.image.id", "imageId"),
        ):
            value = identity.get(field)
            if isinstance(value, str) and value:
                attributes[key] = value
        hostname = self._hostname(endpoint, headers, deadline)
        if hostname:
            attributes["host.name"] = hostname
        return attributes

    @staticmethod
    def _token(endpoint: str, deadline: Deadline) -> str | None:
        """An IMDSv2 session token, or None to go on with IMDSv1.

        IMDSv1 is used only when the service refused tokens (403/404/405), or accepted the
        connection but never answered the PUT: that is how a token response looks when it is
        dropped by the hop limit (a container one hop behind the instance). No connection at
        all means there is no IMDS; that error propagates and the result is empty.
        """
        try:
            response = request(
                "PUT",
                endpoint + _TOKEN_PATH,
                deadline,
                headers={_TOKEN_TTL_HEADER: _TOKEN_TTL_SECONDS},
                response_timeout=deadline.seconds / 3,
            )
        except NoResponse as exc:
            logger.debug("Ec2ResourceDetector: no token (%s); trying IMDSv1", exc)
            return None
        if response.ok:
            return response.text().strip()
        if response.status in _TOKEN_REFUSED:
            logger.debug("Ec2ResourceDetector: token refused (HTTP %d); IMDSv1", response.status)
            return None
        raise ValueError(f"token request answered HTTP {response.status}")

    @staticmethod
    def _hostname(endpoint: str, headers: dict[str, str], deadline: Deadline) -> str | None:
        """The private DNS name; optional, so its failure leaves the rest intact."""
        try:
            response = request("GET", endpoint + _HOSTNAME_PATH, deadline, headers=headers)
        except Exception as exc:  # noqa: BLE001 - optional attribute
            logger.debug("Ec2ResourceDetector: hostname: %s", exc)
            return None
        hostname = response.text().strip() if response.ok else ""
        return hostname or None
