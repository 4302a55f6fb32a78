"""``configure()``: one call that sets up OpenTelemetry the way X-Ray SDK users expect.

X-Ray trace ids, X-Ray sampling rules (centralized, with the local 1/s + 5 % fallback), AWS
resource detection, the UDP exporter behind the trace-aware processor (a segment leaves when its
request ends; SIGTERM flushes before the process ends), and the ``X-Amzn-Trace-Id`` propagator
next to W3C's. Every piece can be replaced by a keyword argument; everything read from the
environment is read through :mod:`otel_xray.config` from the one ``environ`` given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    Resource,
    ResourceDetector,
    get_aggregated_resources,
)
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.config import (
    MAX_QUEUE_SIZE_ENV,
    PROPAGATORS_ENV,
    RESOURCE_ATTRIBUTES_ENV,
    SAMPLER_ARG_ENV,
    SAMPLER_ENV,
    SDK_ENABLED_ENV,
    STREAMING_THRESHOLD_ENV,
    env_int,
    env_text,
    on_lambda,
    processor_kind,
    sdk_enabled,
    sigterm_flush_settings,
)

_logger = logging.getLogger("otel_xray.config")


def build_span_processor(
    exporter: SpanExporter, kind: str | None = None, environ: Mapping[str, str] | None = None
) -> SpanProcessor:
    """The processor that carries ``exporter``'s spans: by default the trace-aware one
    (synchronous on Lambda, where a frozen function runs no background thread), else the
    SDK's batch or simple processor."""
    env = os.environ if environ is None else environ
    chosen = processor_kind(kind, env)
    if chosen == "batch":
        return BatchSpanProcessor(exporter)
    if chosen == "simple":
        return SimpleSpanProcessor(exporter)
    from otel_xray.processor import (
        DEFAULT_MAX_QUEUE_SIZE,
        DEFAULT_STREAMING_THRESHOLD,
        XRaySpanProcessor,
    )

    return XRaySpanProcessor(
        exporter,
        max_queue_size=env_int(env, MAX_QUEUE_SIZE_ENV, DEFAULT_MAX_QUEUE_SIZE, minimum=1),
        streaming_threshold=env_int(env, STREAMING_THRESHOLD_ENV, DEFAULT_STREAMING_THRESHOLD),
        synchronous=on_lambda(env),
    )


def configure(
    service_name: str | None = None,
    *,
    sampler: Sampler | None = None,
    resource: Resource | None = None,
    detectors: Sequence[ResourceDetector] | None = None,
    id_generator: IdGenerator | None = None,
    exporter: SpanExporter | None = None,
    daemon_address: str | None = None,
    propagators: Sequence[TextMapPropagator] | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    processor: str | None = None,
    batch: bool | None = None,
    flush_on_sigterm: bool | None = None,
    sigterm_flush_timeout_millis: int | None = None,
    set_global: bool = True,
    environ: Mapping[str, str] | None = None,
    **exporter_options: Any,
) -> TracerProvider:
    """Build, install and return a ``TracerProvider`` that sends X-Ray segments.

    ``service_name`` becomes ``service.name`` (it wins over ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``, which win over detected attributes). ``resource`` replaces
    detection and environment entirely. ``detectors`` replaces the AWS detectors.
    ``sampler`` defaults to ``OTEL_TRACES_SAMPLER``/``_ARG`` when set, else parent-based
    centralized X-Ray sampling. ``exporter`` replaces the UDP exporter; otherwise
    ``daemon_address`` and ``exporter_options`` (``indexed_attributes``,
    ``index_all_attributes``, ``tracing_name``, ``log_group_names``, ``embed_subsegments``) go
    to :class:`~otel_xray.exporter.XRayUdpSpanExporter`. ``propagators`` replaces the global
    propagator; by default it becomes ``tracecontext,baggage,awsxray`` unless
    ``OTEL_PROPAGATORS`` chose otherwise.

    ``processor`` (default ``OTEL_XRAY_PROCESSOR``, else ``"xray"``) picks what carries spans
    to the exporter: ``"xray"``, :class:`~otel_xray.processor.XRaySpanProcessor`, sends each
    request's segment when the request ends (on Lambda, before the invocation returns);
    ``"batch"`` the SDK's ``BatchSpanProcessor`` (up to 5 s later); ``"simple"`` one export per
    ended span on the ending thread. ``batch=True``/``False`` is the earlier spelling of
    ``"batch"``/``"simple"``.

    ``flush_on_sigterm`` (default ``OTEL_XRAY_FLUSH_ON_SIGTERM``, else on when installing
    globally) makes a SIGTERM flush every ended span, for at most
    ``sigterm_flush_timeout_millis`` (``OTEL_XRAY_SIGTERM_FLUSH_TIMEOUT_MS``, 1000), before
    the signal takes its course: see :mod:`otel_xray.sigterm`. ``set_global=False`` leaves the
    global provider, propagator and signal handlers alone.

    With ``AWS_XRAY_SDK_ENABLED=false`` nothing is installed and the returned provider samples
    nothing, as the X-Ray SDK's disabled recorder emits nothing.
    """
    env = os.environ if environ is None else environ
    if processor is None and batch is not None:  # the earlier spelling
        processor = "batch" if batch else "simple"
    processor = processor_kind(processor, env)  # a bad argument fails before anything starts
    if not sdk_enabled(env):
        _logger.info("%s is false: tracing disabled, nothing installed", SDK_ENABLED_ENV)
        return TracerProvider(sampler=ALWAYS_OFF, resource=resource or Resource.get_empty())

    if resource is None:
        resource = build_resource(service_name, detectors, env)
    elif service_name is not None:
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    if sampler is None:
        sampler = sampler_from_env(env) or default_sampler(resource, daemon_address, env)
    if id_generator is None:
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator

        id_generator = AwsXRayIdGenerator()
    if exporter is None:
        from otel_xray.exporter import XRayUdpSpanExporter

        exporter = XRayUdpSpanExporter(daemon_address, environ=env, **exporter_options)
    elif exporter_options:
        raise TypeError(f"exporter options {sorted(exporter_options)} given with exporter=")

    provider = XRayTracerProvider(sampler=sampler, resource=resource, id_generator=id_generator)
    for extra in span_processors:
        provider.add_span_processor(extra)
    provider.add_span_processor(build_span_processor(exporter, processor, env))
    if flush_on_sigterm is None and not set_global:
        flush_on_sigterm = False
    flush, timeout_millis = sigterm_flush_settings(
        flush_on_sigterm, sigterm_flush_timeout_millis, env
    )
    if flush:
        from otel_xray.sigterm import install_sigterm_flush

        install_sigterm_flush(provider, timeout_millis)
    if set_global:
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            _logger.warning(
                "configure(): a tracer provider was already installed; the new one is returned"
                " but not global (call configure() once, early)"
            )
        if propagators is not None:
            propagate.set_global_textmap(CompositePropagator(list(propagators)))
        elif not env.get(PROPAGATORS_ENV):
            propagate.set_global_textmap(default_propagator())
    return provider


def build_resource(
    service_name: str | None = None,
    detectors: Sequence[ResourceDetector] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Resource:
    """Detected attributes, overridden by ``OTEL_*`` variables, overridden by ``service_name``."""
    if detectors is None:
        from otel_xray.detectors import default_detectors

        detectors = default_detectors(environ)
    detected = get_aggregated_resources(list(detectors), Resource.get_empty())
    attributes = {SERVICE_NAME: service_name} if service_name else {}
    # Resource.create adds the SDK's telemetry.* keys, OTEL_RESOURCE_ATTRIBUTES and
    # OTEL_SERVICE_NAME, and an "unknown_service" name when nothing named the service.
    created = Resource.create(attributes)
    merged = detected.merge(created)
    restore: dict[str, Any] = {}
    detected_name = detected.attributes.get(SERVICE_NAME)
    created_name = str(created.attributes.get(SERVICE_NAME, ""))
    if detected_name and created_name.startswith("unknown_service"):
        restore[SERVICE_NAME] = detected_name
    detected_instance = detected.attributes.get(SERVICE_INSTANCE_ID)
    if detected_instance is not None and not _user_set(SERVICE_INSTANCE_ID, environ):
        # The SDK adds a random service.instance.id; a detected one (Elastic Beanstalk's
        # deployment id, which the segment's aws.elastic_beanstalk block shows) means more.
        restore[SERVICE_INSTANCE_ID] = detected_instance
    return merged.merge(Resource(restore)) if restore else merged


def _user_set(key: str, environ: Mapping[str, str] | None) -> bool:
    return f"{key}=" in env_text(RESOURCE_ATTRIBUTES_ENV, environ).replace(" ", "")


class XRayTracerProvider(TracerProvider):
    """The SDK's provider, plus the two things it cannot know about what ``configure()`` built.

    Its ``shutdown()`` also stops the sampler (the centralized sampler's poller thread), and a
    detected ``service.instance.id`` survives fork: the SDK gives a forked child a fresh random
    one (gunicorn workers, for instance), which would lose the Beanstalk deployment id. That
    happens in the SDK's own after-fork hook of the provider, so the id is put back there
    rather than through :mod:`otel_xray.fork`, whose hook would run before the SDK's.
    """

    def __init__(self, *, sampler: Sampler, resource: Resource, id_generator: IdGenerator) -> None:
        super().__init__(sampler=sampler, resource=resource, id_generator=id_generator)
        self._xray_sampler = sampler
        self._instance_id = resource.attributes.get(SERVICE_INSTANCE_ID)

    def shutdown(self) -> None:
        super().shutdown()
        stop = getattr(self._xray_sampler, "shutdown", None)
        if callable(stop):
            stop()

    def _handle_fork(self) -> None:
        super()._handle_fork()
        if (
            self._instance_id is not None
            and self.resource.attributes.get(SERVICE_INSTANCE_ID) != self._instance_id
        ):
            self._update_resource(Resource({SERVICE_INSTANCE_ID: self._instance_id}))


def default_sampler(
    resource: Resource | None = None,
    daemon_address: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Sampler:
    """Parent-based centralized X-Ray sampling with the 1/s + 5 % local fallback."""
    from otel_xray.sampling import XRayParentBased, XRayRemoteSampler

    return XRayParentBased(
        XRayRemoteSampler(resource=resource, daemon_address=daemon_address, environ=environ)
    )


def sampler_from_env(environ: Mapping[str, str] | None = None) -> Sampler | None:
    """The sampler ``OTEL_TRACES_SAMPLER`` names (built-in or entry point), or None if unset.

    An unknown name or a failing factory is logged and yields None, so the caller's default
    applies: a typo must not turn tracing off.
    """
    env = os.environ if environ is None else environ
    name = env_text(SAMPLER_ENV, env)
    if not name:
        return None
    arg: Any = env.get(SAMPLER_ARG_ENV)
    try:
        found = list(entry_points(group="opentelemetry_traces_sampler", name=name))
        if not found:
            raise LookupError(f"no sampler named {name!r} is installed")
        factory = found[0].load()
        if name in ("traceidratio", "parentbased_traceidratio"):
            arg = float(arg) if arg else 1.0
        sampler = factory(arg)
        if not isinstance(sampler, Sampler):
            raise TypeError(f"{name} produced {sampler!r}, not a Sampler")
        return sampler
    except Exception as exc:
        _logger.warning("%s=%s cannot be used (%s); using the default", SAMPLER_ENV, name, exc)
        return None


def default_propagator() -> TextMapPropagator:
    """The propagators ``config.default_propagator_names`` names, in that order: the X-Ray
    header, extracted last, wins when both arrive."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from otel_xray.propagator import XRayPropagator

    return CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), XRayPropagator()]
    )
