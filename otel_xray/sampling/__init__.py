"""X-Ray sampling for OpenTelemetry: local rules files and centralized rules via the daemon.

Both samplers decide root spans only; wrap them in ``XRayParentBased`` (the ``awsxray_local`` and
``awsxray_remote`` entry points do) so a child follows its parent's decision, and a parent whose
``X-Amzn-Trace-Id`` said ``Sampled=?`` gets the rules' decision.
"""

from __future__ import annotations

from otel_xray.attributes import SAMPLING_RULE_ATTRIBUTE
from otel_xray.sampling.local import XRayLocalSampler
from otel_xray.sampling.parent import XRayParentBased
from otel_xray.sampling.remote import XRayRemoteSampler
from otel_xray.sampling.rules import DEFAULT_RULES, LocalRule, LocalRules, load_rules

__all__ = [
    "DEFAULT_RULES",
    "SAMPLING_RULE_ATTRIBUTE",
    "LocalRule",
    "LocalRules",
    "XRayLocalSampler",
    "XRayParentBased",
    "XRayRemoteSampler",
    "load_rules",
]
