"""``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument python app.py``: X-Ray with no code.

``opentelemetry-instrument`` runs, in order: the distro's ``configure()`` (here: environment
defaults), then the first ``opentelemetry_configurator`` entry point (the one that actually
builds the SDK; the SDK ships none, the ``opentelemetry-distro`` package ships one), then the
instrumentors. So this module provides both: :class:`XRayDistro` chooses the X-Ray pieces by
default — never overriding a variable the user set — and :class:`XRayConfigurator` builds the
SDK from those variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_PROPAGATORS,
    OTEL_PYTHON_ID_GENERATOR,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS,
    OTEL_TRACES_SAMPLER,
)
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.config import sdk_enabled

_logger = logging.getLogger("otel_xray.distro")

#: Our configurator's entry-point name (group ``opentelemetry_configurator``).
CONFIGURATOR_NAME = "awsxray"

# Least specific first: the resource merge lets later detectors win (see otel_xray.detectors).
_DETECTORS = "awsxray_ec2,awsxray_ecs,awsxray_eks,awsxray_beanstalk,awsxray_lambda"


def on_lambda(environ: MutableMapping[str, str]) -> bool:
    return bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def default_environment(environ: MutableMapping[str, str]) -> dict[str, str]:
    """The variables the distro sets when absent (Lambda gets Lambda-specific choices).

    On Lambda the invocation's trace header arrives in ``_X_AMZN_TRACE_ID`` (the
    ``awsxray-lambda`` propagator reads it), there is no daemon sampling proxy to poll, and only
    the Lambda detector can find anything.
    """
    lambda_ = on_lambda(environ)
    return {
        OTEL_TRACES_EXPORTER: "awsxray",
        OTEL_METRICS_EXPORTER: "none",
        OTEL_LOGS_EXPORTER: "none",
        OTEL_PROPAGATORS: ("awsxray-lambda" if lambda_ else "awsxray") + ",tracecontext,baggage",
        OTEL_PYTHON_ID_GENERATOR: "xray",
        OTEL_TRACES_SAMPLER: "awsxray_local" if lambda_ else "awsxray_remote",
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS: "awsxray_lambda" if lambda_ else _DETECTORS,
        OTEL_PYTHON_CONFIGURATOR: CONFIGURATOR_NAME,
    }


class XRayDistro(BaseDistro):  # type: ignore[misc]
    """Defaults every variable to its X-Ray choice; what the user set always wins."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in default_environment(os.environ).items():
            os.environ.setdefault(name, value)


class XRayConfigurator(_OTelSDKConfigurator):
    """The SDK's standard environment-driven setup, plus the propagator and the kill switch.

    ``opentelemetry.propagate`` builds the global propagator from ``OTEL_PROPAGATORS`` when it
    is first imported, which ``opentelemetry-instrument`` does before the distro sets its
    defaults; so it is built again here, from the variable's final value.
    """

    def _configure(self, **kwargs: Any) -> None:
        if not sdk_enabled():
            _logger.info("AWS_XRAY_SDK_ENABLED is false: OpenTelemetry SDK not installed")
            return
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        propagator = propagator_from_env(os.environ)
        if propagator is not None:
            propagate.set_global_textmap(propagator)


def propagator_from_env(environ: MutableMapping[str, str]) -> TextMapPropagator | None:
    """The composite ``OTEL_PROPAGATORS`` names (``none`` for none), or None when unset."""
    value = environ.get(OTEL_PROPAGATORS)
    if value is None:
        return None
    propagators: list[TextMapPropagator] = []
    for name in (n.strip() for n in value.split(",")):
        if not name or name.lower() == "none":
            continue
        found = list(entry_points(group="opentelemetry_propagator", name=name))
        if not found:
            _logger.error("%s: no propagator named %r is installed", OTEL_PROPAGATORS, name)
            continue
        try:
            propagators.append(found[0].load()())
        except Exception:
            _logger.exception("%s: propagator %r failed to load", OTEL_PROPAGATORS, name)
    return CompositePropagator(propagators)
