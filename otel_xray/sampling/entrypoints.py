"""Sampler factories for ``OTEL_TRACES_SAMPLER=awsxray_local`` / ``awsxray_remote``.

The SDK's auto-configuration calls a factory with the raw ``OTEL_TRACES_SAMPLER_ARG`` string
(``None`` when unset). Both factories return parent-based samplers (``XRayParentBased``): X-Ray
decides once, at the root, and every downstream span follows the propagated decision, except
that a caller's ``Sampled=?`` asks the rules to decide, as the X-Ray SDK middleware does.

A rules file that cannot be used is logged as an error and the X-Ray default rules (one trace per
second plus 5 %) apply. Raising instead would make the SDK log a warning and silently fall back to
``parentbased_always_on``, which samples everything: the opposite of what a rules file asks.
"""

from __future__ import annotations

import logging

from opentelemetry.sdk.trace.sampling import Sampler

from otel_xray.sampling.local import XRayLocalSampler
from otel_xray.sampling.parent import XRayParentBased
from otel_xray.sampling.remote import XRayRemoteSampler
from otel_xray.sampling.rules import DEFAULT_RULES, LocalRules, load_rules

_logger = logging.getLogger("otel_xray.sampling")


def _rules_from_arg(arg: str | float | None) -> LocalRules:
    if arg is None or not str(arg).strip():
        return DEFAULT_RULES
    try:
        return load_rules(str(arg).strip())
    except ValueError as exc:
        _logger.error(
            "OTEL_TRACES_SAMPLER_ARG: %s; using the default X-Ray sampling rules "
            "(1 trace per second, then 5 %%)",
            exc,
        )
        return DEFAULT_RULES


def local_sampler_factory(arg: str | float | None = None) -> Sampler:
    """``awsxray_local``: ``OTEL_TRACES_SAMPLER_ARG`` is the rules file (empty: default rules)."""
    return XRayParentBased(XRayLocalSampler(_rules_from_arg(arg)))


def remote_sampler_factory(arg: str | float | None = None) -> Sampler:
    """``awsxray_remote``: ``OTEL_TRACES_SAMPLER_ARG`` is the fallback rules file (optional).

    The daemon address comes from ``AWS_XRAY_DAEMON_ADDRESS`` (a malformed value is logged and
    the default address used, as by the exporter); the service name and type from the tracer
    provider's resource, read when the first span starts.
    """
    return XRayParentBased(XRayRemoteSampler(fallback_rules=_rules_from_arg(arg)))
