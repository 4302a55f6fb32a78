"""Lambda: the runtime's reserved environment variables; nothing to fetch.

``AWS_LAMBDA_FUNCTION_NAME`` is the platform check: absent means not on Lambda, which is normal
and therefore silent (upstream logs a warning with a KeyError). ``faas.max_memory`` is in bytes,
as current semantic conventions define it (upstream still reports MB).
"""

from __future__ import annotations

from otel_xray.config import (
    DEFAULT_REGION_ENV,
    LAMBDA_FUNCTION_ENV,
    LAMBDA_FUNCTION_MEMORY_ENV,
    LAMBDA_FUNCTION_VERSION_ENV,
    LAMBDA_LOG_GROUP_ENV,
    LAMBDA_LOG_STREAM_ENV,
    REGION_ENV,
    env_text,
)
from otel_xray.detectors._base import Attributes, AwsResourceDetector, Deadline, logger

_MIB = 1024 * 1024


class LambdaResourceDetector(AwsResourceDetector):
    """``cloud.platform=aws_lambda`` with ``faas.*`` and the function's log group and stream."""

    def _detect(self, deadline: Deadline) -> Attributes:
        env = self.env
        function_name = env_text(LAMBDA_FUNCTION_ENV, env)
        if not function_name:
            return {}
        attributes: Attributes = {
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "faas.name": function_name,
        }
        region = env.get(REGION_ENV) or env.get(DEFAULT_REGION_ENV)
        if region:
            attributes["cloud.region"] = region
        version = env.get(LAMBDA_FUNCTION_VERSION_ENV)
        if version:
            attributes["faas.version"] = version
        stream = env.get(LAMBDA_LOG_STREAM_ENV)
        if stream:
            attributes["faas.instance"] = stream
            attributes["aws.log.stream.names"] = [stream]
        group = env.get(LAMBDA_LOG_GROUP_ENV)
        if group:
            attributes["aws.log.group.names"] = [group]
        memory = env_text(LAMBDA_FUNCTION_MEMORY_ENV, env)
        if memory:
            try:
                attributes["faas.max_memory"] = int(memory) * _MIB
            except ValueError:
                logger.debug("LambdaResourceDetector: memory size %r is not a number", memory)
        return attributes
