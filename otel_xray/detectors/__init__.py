"""AWS resource detectors whose output becomes X-Ray's ``aws.*`` blocks and segment ``origin``.

They emit the standard OpenTelemetry resource attributes (the same keys as
opentelemetry-sdk-extension-aws), so either package's detectors feed the translator alike.
Each one is bounded in time (``OTEL_XRAY_DETECTOR_TIMEOUT``, 1 s by default), returns an empty
resource off its platform without a warning, and never raises. See docs/detectors.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.resources import ResourceDetector

from otel_xray.detectors.beanstalk import BeanstalkResourceDetector
from otel_xray.detectors.ec2 import Ec2ResourceDetector
from otel_xray.detectors.ecs import EcsResourceDetector
from otel_xray.detectors.eks import EksResourceDetector
from otel_xray.detectors.lambda_ import LambdaResourceDetector

__all__ = [
    "BeanstalkResourceDetector",
    "Ec2ResourceDetector",
    "EcsResourceDetector",
    "EksResourceDetector",
    "LambdaResourceDetector",
    "default_detectors",
]


def default_detectors(environ: Mapping[str, str] | None = None) -> list[ResourceDetector]:
    """All five, least specific first.

    ``Resource.merge`` lets the later resource win on shared keys, and the segment origin
    follows ``cloud.platform``; so this order yields the documented origin precedence
    Elastic Beanstalk > EKS > ECS > EC2 (Lambda, which runs alone, last) while every
    platform's own attributes, and so its ``aws.*`` block, are kept. Pass the list to
    ``get_aggregated_resources``, which runs detectors concurrently and merges in list order.
    ``environ`` (default ``os.environ``) is what they read their variables from.
    """
    return [
        Ec2ResourceDetector(environ=environ),
        EcsResourceDetector(environ=environ),
        EksResourceDetector(environ=environ),
        BeanstalkResourceDetector(environ=environ),
        LambdaResourceDetector(environ=environ),
    ]
