"""``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument python app.py``: X-Ray with no code.

``opentelemetry-instrument`` runs, in order: the distro's ``configure()`` (here: environment
defaults), then the first ``opentelemetry_configurator`` entry point (the one that actually
builds the SDK; the SDK ships none, the ``opentelemetry-distro`` package ships one), then the
instrumentors. So this module provides both: :class:`XRayDistro` chooses the X-Ray pieces by
default — never overriding a variable the user set — and :class:`XRayConfigurator` builds the
SDK from those variables.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import propagate, trace
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
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.config import (
    default_propagator_names,
    on_lambda,
    sdk_enabled,
    sigterm_flush_settings,
)
from otel_xray.provider import build_span_processor

_logger = logging.getLogger("otel_xray.distro")

#: Our configurator's entry-point name (group ``opentelemetry_configurator``).
CONFIGURATOR_NAME = "awsxray"

# Least specific first: the resource merge lets later detectors win (see otel_xray.detectors).
_DETECTORS = "awsxray_ec2,awsxray_ecs,awsxray_eks,awsxray_beanstalk,awsxray_lambda"


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
        OTEL_PROPAGATORS: default_propagator_names(lambda_=lambda_),
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
    """The SDK's standard environment-driven setup, plus the propagator, the kill switch, the
    trace-aware processor for the ``awsxray`` exporter and the SIGTERM flush.

    ``opentelemetry.propagate`` builds the global propagator from ``OTEL_PROPAGATORS`` when it
    is first imported, which ``opentelemetry-instrument`` does before the distro sets its
    defaults; so it is built again here, from the variable's final value.

    The SDK wraps every exporter named in ``OTEL_TRACES_EXPORTER`` in a ``BatchSpanProcessor``.
    SDKs that take an ``export_span_processor`` factory get :func:`export_span_processor`
    (ours for the ``awsxray`` exporter, theirs for the others); older ones have the batch
    processor around our exporter replaced once the provider is built.
    """

    def _configure(self, **kwargs: Any) -> None:
        if not sdk_enabled():
            _logger.info("AWS_XRAY_SDK_ENABLED is false: OpenTelemetry SDK not installed")
            return
        takes_factory = "export_span_processor" in _initialize_parameters()
        if takes_factory:
            kwargs.setdefault("export_span_processor", export_span_processor)
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        provider = trace.get_tracer_provider()
        if not takes_factory and isinstance(provider, TracerProvider):
            replace_batch_processors(provider)
        propagator = propagator_from_env(os.environ)
        if propagator is not None:
            propagate.set_global_textmap(propagator)
        flush, timeout_millis = sigterm_flush_settings()
        if flush and isinstance(provider, TracerProvider):
            from otel_xray.sigterm import install_sigterm_flush

            install_sigterm_flush(provider, timeout_millis)


def export_span_processor(exporter: SpanExporter) -> SpanProcessor:
    """The processor for one exporter the SDK's configuration built: ours (``OTEL_XRAY_PROCESSOR``)
    for the X-Ray exporter, the SDK's usual ``BatchSpanProcessor`` for any other."""
    from otel_xray.exporter import XRayUdpSpanExporter

    if isinstance(exporter, XRayUdpSpanExporter):
        return build_span_processor(exporter)
    return BatchSpanProcessor(exporter)


def replace_batch_processors(provider: TracerProvider) -> None:
    """For SDKs without the factory: swap the batch processor around each X-Ray exporter."""
    from otel_xray.exporter import XRayUdpSpanExporter

    multi = provider._active_span_processor
    replaced: list[SpanProcessor] = []
    for processor in multi._span_processors:
        exporter = getattr(processor, "span_exporter", None)
        if isinstance(processor, BatchSpanProcessor) and isinstance(exporter, XRayUdpSpanExporter):
            processor.shutdown()  # type: ignore[no-untyped-call]  # stops its worker (and closes that exporter: make another)
            replaced.append(export_span_processor(XRayUdpSpanExporter()))
        else:
            replaced.append(processor)
    with multi._lock:
        multi._span_processors = tuple(replaced)


def _initialize_parameters() -> frozenset[str]:
    from opentelemetry.sdk import _configuration

    return frozenset(inspect.signature(_configuration._initialize_components).parameters)


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
