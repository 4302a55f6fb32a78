"""Lambda: the runtime's reserved environment variables; nothing to fetch.

``AWS_LAMBDA_FUNCTION_NAME`` is the platform check: absent means not on Lambda, which is normal
and therefore silent (upstream logs a warning with a KeyError). ``faas.max_memory`` is in bytes,
as current semantic conventions define it (upstream still reports MB).
"""

from __future__ import annotations

import os

from otel_xray.detectors._base import Attributes, AwsResourceDetector, Deadline, logger

_MIB = 1024 * 1024


class LambdaResourceDetector(AwsResourceDetector):
    """``cloud.platform=aws_lambda`` with ``faas.*`` and the function's log group and stream."""

    def _detect(self, deadline: Deadline) -> Attributes:
        function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
        if not function_name:
            return {}
        attributes: Attributes = {
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "faas.name": function_name,
        }
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            attributes["cloud.region"] = region
        version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        if version:
            attributes["faas.version"] = version
        stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        if stream:
            attributes["faas.instance"] = stream
            attributes["aws.log.stream.names"] = [stream]
        group = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        if group:
            attributes["aws.log.group.names"] = [group]
        memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
        if memory:
            try:
                attributes["faas.max_memory"] = int(memory) * _MIB
            except ValueError:
                logger.debug("LambdaResourceDetector: memory size %r is not a number", memory)
        return attributes
