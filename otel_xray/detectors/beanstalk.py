"""Elastic Beanstalk: the environment file the platform writes when X-Ray is enabled.

The keys match upstream's ``AwsBeanstalkResourceDetector`` (environment name in
``service.namespace``, version label in ``service.version``, deployment id in
``service.instance.id``) except that ``service.name`` is left alone: upstream sets it to
``aws_elastic_beanstalk``, which would rename every application's segments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from otel_xray.config import BEANSTALK_CONF_ENV
from otel_xray.detectors._base import Attributes, AwsResourceDetector, Deadline, read_text

DEFAULT_CONF = (
    "C:\\Program Files\\Amazon\\XRay\\environment.conf"
    if os.name == "nt"
    else "/var/elasticbeanstalk/xray/environment.conf"
)


def _as_text(value: object) -> str | None:
    """JSON strings and numbers as text (deployment_id is a number in the file)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return text or None
    return None


class BeanstalkResourceDetector(AwsResourceDetector):
    """``cloud.platform=aws_elastic_beanstalk`` with environment, version label and deployment."""

    def __init__(
        self,
        raise_on_error: bool = False,
        *,
        conf_path: str | None = None,
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(raise_on_error, timeout=timeout, environ=environ)
        self._conf_path = conf_path

    def is_process_dependent(self) -> bool:
        """Re-run after fork so the deployment id outlives a pre-forking server.

        Recent opentelemetry-sdk releases (1.45 included) re-run process-dependent detectors in a
        forked child and merge the result on top: the built-in ``service_instance`` detector
        then replaces ``service.instance.id`` with a fresh UUID, losing the deployment id in
        every gunicorn worker. Being re-run too (after it, by the configured order) puts the
        deployment id back. Reading one small file is cheap.
        """
        return True

    def _detect(self, deadline: Deadline) -> Attributes:
        text = read_text(self.env_or(self._conf_path, BEANSTALK_CONF_ENV, DEFAULT_CONF))
        if text is None:
            return {}
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("environment.conf is not a JSON object")
        attributes: Attributes = {
            "cloud.provider": "aws",
            "cloud.platform": "aws_elastic_beanstalk",
        }
        for key, field in (
            ("service.namespace", "environment_name"),
            ("service.version", "version_label"),
            ("service.instance.id", "deployment_id"),
        ):
            value = _as_text(document.get(field))
            if value is not None:
                attributes[key] = value
        return attributes
