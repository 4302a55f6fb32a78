"""The ``awsxray`` distro and configurator that ``opentelemetry-instrument`` loads."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.distro import (
    XRayConfigurator,
    XRayDistro,
    default_environment,
    export_span_processor,
    propagator_from_env,
    replace_batch_processors,
)
from tests.support.udp import UdpDaemon

DEFAULTED = [
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_PROPAGATORS",
    "OTEL_PYTHON_ID_GENERATOR",
    "OTEL_TRACES_SAMPLER",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
    "OTEL_PYTHON_CONFIGURATOR",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*DEFAULTED, "AWS_LAMBDA_FUNCTION_NAME"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_distro_sets_the_xray_defaults(clean_env: pytest.MonkeyPatch) -> None:
    XRayDistro().configure()
    assert os.environ["OTEL_TRACES_EXPORTER"] == "awsxray"
    assert os.environ["OTEL_PROPAGATORS"] == "tracecontext,baggage,awsxray"
    assert os.environ["OTEL_PYTHON_ID_GENERATOR"] == "xray"
    assert os.environ["OTEL_TRACES_SAMPLER"] == "awsxray_remote"
    assert os.environ["OTEL_METRICS_EXPORTER"] == "none"
    assert os.environ["OTEL_LOGS_EXPORTER"] == "none"
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "awsxray"
    assert os.environ["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"].split(",") == [
        "awsxray_ec2",
        "awsxray_ecs",
        "awsxray_eks",
        "awsxray_beanstalk",
        "awsxray_lambda",
    ]


def test_distro_never_overrides_what_the_user_set(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_TRACES_EXPORTER", "console")
    clean_env.setenv("OTEL_PROPAGATORS", "tracecontext")
    clean_env.setenv("OTEL_TRACES_SAMPLER", "always_on")
    XRayDistro().configure()
    assert os.environ["OTEL_TRACES_EXPORTER"] == "console"
    assert os.environ["OTEL_PROPAGATORS"] == "tracecontext"
    assert os.environ["OTEL_TRACES_SAMPLER"] == "always_on"
    assert os.environ["OTEL_PYTHON_ID_GENERATOR"] == "xray"


def test_lambda_gets_the_lambda_propagator_local_sampling_and_only_its_detector() -> None:
    env = default_environment({"AWS_LAMBDA_FUNCTION_NAME": "checkout"})
    assert env["OTEL_PROPAGATORS"] == "tracecontext,baggage,awsxray-lambda"
    assert env["OTEL_TRACES_SAMPLER"] == "awsxray_local"
    assert env["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] == "awsxray_lambda"


def test_every_defaulted_entry_point_exists() -> None:
    env = default_environment({})
    groups = {
        "OTEL_TRACES_EXPORTER": "opentelemetry_traces_exporter",
        "OTEL_TRACES_SAMPLER": "opentelemetry_traces_sampler",
        "OTEL_PYTHON_ID_GENERATOR": "opentelemetry_id_generator",
        "OTEL_PYTHON_CONFIGURATOR": "opentelemetry_configurator",
        "OTEL_PROPAGATORS": "opentelemetry_propagator",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "opentelemetry_resource_detector",
    }
    lambda_env = default_environment({"AWS_LAMBDA_FUNCTION_NAME": "f"})
    for variable, group in groups.items():
        names = {*env[variable].split(","), *lambda_env[variable].split(",")}
        for name in names:
            assert list(entry_points(group=group, name=name)), f"{group}:{name} missing"
    (distro,) = entry_points(group="opentelemetry_distro", name="awsxray")
    assert distro.load() is XRayDistro
    (configurator,) = entry_points(group="opentelemetry_configurator", name="awsxray")
    assert configurator.load() is XRayConfigurator


def test_no_entry_point_name_of_ours_collides_with_another_package() -> None:
    ours = [ep for ep in entry_points() if ep.value.startswith("otel_xray.")]
    assert len(ours) >= 12
    everything = Counter((ep.group, ep.name) for ep in entry_points())
    clashes = [(ep.group, ep.name) for ep in ours if everything[(ep.group, ep.name)] > 1]
    assert clashes == []


def test_propagator_from_env(caplog: pytest.LogCaptureFixture) -> None:
    propagator = propagator_from_env({"OTEL_PROPAGATORS": "awsxray, tracecontext"})
    assert propagator is not None
    assert {"X-Amzn-Trace-Id", "traceparent"} <= set(propagator.fields)
    none = propagator_from_env({"OTEL_PROPAGATORS": "none"})
    assert none is not None and not none.fields
    assert propagator_from_env({}) is None
    with caplog.at_level(logging.ERROR, logger="otel_xray"):
        propagator_from_env({"OTEL_PROPAGATORS": "awsxray,xray-typo"})
    assert any("xray-typo" in r.getMessage() for r in caplog.records)


def run_configurator(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Distro then configurator, as opentelemetry-instrument runs them, in a child process."""
    script = textwrap.dedent(
        """
        from opentelemetry import propagate, trace
        from otel_xray.distro import XRayConfigurator, XRayDistro

        XRayDistro().configure()
        XRayConfigurator().configure(auto_instrumentation_version="test")
        provider = trace.get_tracer_provider()
        print(type(provider).__name__, ",".join(sorted(propagate.get_global_textmap().fields)))
        processors = getattr(provider, "_active_span_processor", None)
        for processor in getattr(processors, "_span_processors", ()):
            print(type(processor).__name__, getattr(processor, "synchronous", "-"))
        with trace.get_tracer("t").start_as_current_span("job"):
            pass
        if hasattr(provider, "shutdown"):
            provider.shutdown()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )


def test_configurator_builds_the_sdk_from_the_distro_defaults(udp_daemon: UdpDaemon) -> None:
    result = run_configurator(
        {
            "AWS_XRAY_DAEMON_ADDRESS": udp_daemon.address,
            "OTEL_SERVICE_NAME": "batch-job",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
        }
    )
    assert result.returncode == 0, result.stderr
    provider, fields, processor, synchronous = result.stdout.split()
    assert provider == "TracerProvider"
    assert (processor, synchronous) == ("XRaySpanProcessor", "False")
    assert "X-Amzn-Trace-Id" in fields.split(",") and "traceparent" in fields.split(",")
    (doc,) = udp_daemon.documents(1)
    assert doc["name"] == "batch-job"
    assert doc["aws"]["xray"]["auto_instrumentation"] is True


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"AWS_LAMBDA_FUNCTION_NAME": "fn"}, ["XRaySpanProcessor", "True"]),
        ({"OTEL_XRAY_PROCESSOR": "batch"}, ["BatchSpanProcessor", "-"]),
    ],
)
def test_configurator_processor_choices(
    udp_daemon: UdpDaemon, extra: dict[str, str], expected: list[str]
) -> None:
    """On Lambda the segment is sent before the handler returns (synchronous, no timer); the
    plain batch processor stays one variable away; other exporters keep the SDK's batch one."""
    env = {
        "AWS_XRAY_DAEMON_ADDRESS": udp_daemon.address,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
        **extra,
    }
    result = run_configurator(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [" ".join(expected)]
    udp_daemon.documents(1)


def test_other_exporters_keep_the_sdk_batch_processor() -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    processor = export_span_processor(InMemorySpanExporter())
    assert isinstance(processor, BatchSpanProcessor)
    processor.shutdown()


def test_older_sdks_get_the_batch_processor_around_our_exporter_replaced(
    udp_daemon: UdpDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SDKs before the ``export_span_processor`` factory wrap every exporter in a batch
    processor: the configurator swaps the one around the X-Ray exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_xray.exporter import XRayUdpSpanExporter
    from otel_xray.processor import XRaySpanProcessor

    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", udp_daemon.address)
    provider = TracerProvider()
    other = BatchSpanProcessor(InMemorySpanExporter())
    provider.add_span_processor(BatchSpanProcessor(XRayUdpSpanExporter()))
    provider.add_span_processor(other)
    replace_batch_processors(provider)
    ours, kept = provider._active_span_processor._span_processors
    assert isinstance(ours, XRaySpanProcessor) and kept is other
    with provider.get_tracer("t").start_as_current_span("job"):
        pass
    udp_daemon.documents(1)
    provider.shutdown()


def test_configurator_installs_nothing_when_the_sdk_is_disabled(udp_daemon: UdpDaemon) -> None:
    result = run_configurator(
        {"AWS_XRAY_DAEMON_ADDRESS": udp_daemon.address, "AWS_XRAY_SDK_ENABLED": "false"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "ProxyTracerProvider"
