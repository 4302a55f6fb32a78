"""configure(): the one-call setup, its defaults, overrides and environment variables."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource, ResourceDetector
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, TraceIdRatioBased

from otel_xray.config import default_propagator_names, sdk_enabled
from otel_xray.distro import propagator_from_env
from otel_xray.exporter import XRayUdpSpanExporter
from otel_xray.processor import XRaySpanProcessor
from otel_xray.provider import build_resource, configure, default_propagator, sampler_from_env
from otel_xray.sampling import XRayParentBased
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon


class StaticDetector(ResourceDetector):
    """A user-supplied detector (the ``detectors=`` argument is public API)."""

    def __init__(self, attributes: dict[str, str]) -> None:
        super().__init__()
        self.attributes = attributes

    def detect(self) -> Resource:
        return Resource(self.attributes)


@pytest.fixture
def providers() -> Iterator[list[TracerProvider]]:
    made: list[TracerProvider] = []
    yield made
    for provider in made:
        provider.shutdown()


def test_spans_reach_the_daemon_as_segments(
    udp_daemon: UdpDaemon, providers: list[TracerProvider]
) -> None:
    provider = configure(
        "checkout",
        daemon_address=udp_daemon.address,
        detectors=[],
        sampler=ALWAYS_ON,
        set_global=False,
        indexed_attributes=["order"],
    )
    providers.append(provider)
    with provider.get_tracer("t").start_as_current_span("pay", attributes={"order": "o-1"}):
        pass
    assert provider.force_flush()
    (doc,) = udp_daemon.documents(1)
    assert_valid(doc)
    assert doc["name"] == "checkout" and doc["annotations"] == {"order": "o-1"}


def test_defaults_are_xray_ids_parent_based_remote_sampling_and_the_udp_exporter(
    providers: list[TracerProvider],
) -> None:
    provider = configure(detectors=[], set_global=False, environ={})
    providers.append(provider)
    assert isinstance(provider.id_generator, AwsXRayIdGenerator)
    assert isinstance(provider.sampler, XRayParentBased)
    assert "XRayRemoteSampler" in provider.sampler.get_description()
    (processor,) = provider._active_span_processor._span_processors
    assert isinstance(processor, XRaySpanProcessor) and not processor.synchronous
    assert isinstance(processor.exporter, XRayUdpSpanExporter)


def test_sampler_from_the_environment_wins_over_the_default(
    providers: list[TracerProvider],
) -> None:
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    provider = configure(detectors=[], set_global=False, environ=env)
    providers.append(provider)
    assert isinstance(provider.sampler, TraceIdRatioBased) and provider.sampler.rate == 0.25
    off = sampler_from_env({"OTEL_TRACES_SAMPLER": "always_off"})
    assert off is not None and off.should_sample(None, 1, "x").decision is Decision.DROP
    local = sampler_from_env({"OTEL_TRACES_SAMPLER": "awsxray_local"})
    assert isinstance(local, XRayParentBased)


def test_unknown_sampler_name_warns_and_keeps_the_default(
    caplog: pytest.LogCaptureFixture, providers: list[TracerProvider]
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        provider = configure(
            detectors=[], set_global=False, environ={"OTEL_TRACES_SAMPLER": "awsxray_remot"}
        )
    providers.append(provider)
    assert isinstance(provider.sampler, XRayParentBased)
    assert any("awsxray_remot" in r.getMessage() for r in caplog.records)


def test_service_name_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    detected = StaticDetector({"service.name": "detected", "cloud.platform": "aws_ec2"})
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert build_resource(None, [detected]).attributes["service.name"] == "detected"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=pay")
    resource = build_resource(None, [detected])
    assert resource.attributes["service.name"] == "from-attrs"
    assert resource.attributes["team"] == "pay"
    assert resource.attributes["cloud.platform"] == "aws_ec2"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert build_resource(None, [detected]).attributes["service.name"] == "from-env"
    assert build_resource("from-code", [detected]).attributes["service.name"] == "from-code"


def test_explicit_resource_is_used_as_given(providers: list[TracerProvider]) -> None:
    provider = configure(
        "named", resource=Resource({"k": "v"}), sampler=ALWAYS_ON, set_global=False, environ={}
    )
    providers.append(provider)
    assert dict(provider.resource.attributes) == {"k": "v", "service.name": "named"}


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("true", True), ("Yes", True), ("0", False), ("OFF", False), ("maybe", True)],
)
def test_sdk_enabled_reads_the_xray_variable(value: str | None, enabled: bool) -> None:
    env = {} if value is None else {"AWS_XRAY_SDK_ENABLED": value}
    assert sdk_enabled(env) is enabled


def test_disabled_sdk_installs_nothing_and_records_nothing(udp_daemon: UdpDaemon) -> None:
    before = trace.get_tracer_provider()
    provider = configure(
        "svc",
        daemon_address=udp_daemon.address,
        detectors=[],
        environ={"AWS_XRAY_SDK_ENABLED": "false"},
    )
    assert trace.get_tracer_provider() is before
    span = provider.get_tracer("t").start_span("x")
    assert not span.is_recording()
    assert provider.sampler.should_sample(None, 1, "x").decision is Decision.DROP


def test_exporter_options_with_a_custom_exporter_are_rejected() -> None:
    with pytest.raises(TypeError, match="indexed_attributes"):
        configure(
            exporter=XRayUdpSpanExporter("127.0.0.1:2000"),
            indexed_attributes=["a"],
            detectors=[],
            set_global=False,
            environ={},
        )


def test_configure_installs_the_global_provider_and_propagators(udp_daemon: UdpDaemon) -> None:
    # In a child interpreter: the global provider can only be set once per process.
    script = textwrap.dedent(
        f"""
        from opentelemetry import propagate, trace
        import otel_xray

        provider = otel_xray.configure("front", daemon_address="{udp_daemon.address}", detectors=[])
        assert trace.get_tracer_provider() is provider
        headers = {{}}
        with trace.get_tracer("t").start_as_current_span("root"):
            propagate.inject(headers)
        assert "X-Amzn-Trace-Id" in headers and "traceparent" in headers, headers
        provider.shutdown()
        """
    )
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    (doc,) = udp_daemon.documents(1)
    assert doc["name"] == "front" and "type" not in doc


BEANSTALK = {
    "cloud.provider": "aws",
    "cloud.platform": "aws_elastic_beanstalk",
    "service.namespace": "shop-prod",
    "service.version": "v42",
    "service.instance.id": "23",
}


def test_detected_beanstalk_deployment_id_survives_the_sdk_random_instance_id(
    udp_daemon: UdpDaemon, providers: list[TracerProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = configure(
        "shop",
        daemon_address=udp_daemon.address,
        detectors=[StaticDetector(BEANSTALK)],
        sampler=ALWAYS_ON,
        set_global=False,
    )
    providers.append(provider)
    assert provider.resource.attributes["service.instance.id"] == "23"
    with provider.get_tracer("t").start_as_current_span("GET /", kind=trace.SpanKind.SERVER):
        pass
    (doc,) = udp_daemon.documents(1)
    assert doc["origin"] == "AWS::ElasticBeanstalk::Environment"
    assert doc["aws"]["elastic_beanstalk"]["deployment_id"] == 23


def test_a_forked_worker_keeps_the_detected_instance_id(
    providers: list[TracerProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pre-fork servers (gunicorn): the SDK re-randomises service.instance.id in each child."""
    import os

    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = configure(
        "shop",
        daemon_address="127.0.0.1:9",
        detectors=[StaticDetector(BEANSTALK)],
        sampler=ALWAYS_ON,
        set_global=False,
    )
    providers.append(provider)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: report what it sees, then leave without running pytest's atexit
        os.close(read_end)
        os.write(write_end, str(provider.resource.attributes["service.instance.id"]).encode())
        os._exit(0)
    os.close(write_end)
    seen = os.read(read_end, 200).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert seen == "23"


def test_on_lambda_spans_are_sent_as_they_end(
    udp_daemon: UdpDaemon, providers: list[TracerProvider]
) -> None:
    """Lambda freezes the process after the handler returns: no batch timer would ever fire."""
    provider = configure(
        "fn",
        daemon_address=udp_daemon.address,
        detectors=[],
        sampler=ALWAYS_ON,
        set_global=False,
        environ={"AWS_LAMBDA_FUNCTION_NAME": "fn"},
    )
    providers.append(provider)
    with provider.get_tracer("t").start_as_current_span("handler"):
        pass
    (processor,) = provider._active_span_processor._span_processors
    assert isinstance(processor, XRaySpanProcessor) and processor.synchronous
    assert processor.exporter.counters.datagrams_sent == 1  # type: ignore[attr-defined]
    (doc,) = udp_daemon.documents(1)  # no force_flush: it was sent when the span ended
    assert doc["name"] == "fn"


@pytest.mark.parametrize(
    ("argument", "environ", "expected"),
    [
        (None, {}, "XRaySpanProcessor"),
        ("batch", {}, "BatchSpanProcessor"),
        ("simple", {}, "SimpleSpanProcessor"),
        (None, {"OTEL_XRAY_PROCESSOR": "batch"}, "BatchSpanProcessor"),
        (None, {"OTEL_XRAY_PROCESSOR": "Simple"}, "SimpleSpanProcessor"),
        ("xray", {"OTEL_XRAY_PROCESSOR": "batch"}, "XRaySpanProcessor"),
    ],
)
def test_the_plain_batch_processor_stays_available_by_argument_or_variable(
    argument: str | None, environ: dict[str, str], expected: str, providers: list[TracerProvider]
) -> None:
    provider = configure(
        detectors=[], set_global=False, sampler=ALWAYS_ON, processor=argument, environ=environ
    )
    providers.append(provider)
    (processor,) = provider._active_span_processor._span_processors
    assert type(processor).__name__ == expected


def test_processor_settings_come_from_the_environment(
    providers: list[TracerProvider], caplog: pytest.LogCaptureFixture
) -> None:
    environ = {
        "OTEL_XRAY_MAX_QUEUE_SIZE": "100",
        "OTEL_XRAY_STREAMING_THRESHOLD": "5",
        "OTEL_XRAY_PROCESSOR": "bulk",
    }
    with caplog.at_level(logging.WARNING, logger="otel_xray.config"):
        provider = configure(detectors=[], set_global=False, sampler=ALWAYS_ON, environ=environ)
    providers.append(provider)
    (processor,) = provider._active_span_processor._span_processors
    assert isinstance(processor, XRaySpanProcessor)
    assert (processor.max_queue_size, processor.streaming_threshold) == (100, 5)
    assert any("OTEL_XRAY_PROCESSOR='bulk'" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="processor='bulk'"):
        configure(detectors=[], set_global=False, processor="bulk", environ={})


def test_configure_environ_reaches_the_detectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detectors read the ``environ`` given to configure(), not the process environment."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    environ = {
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    provider = configure("svc", environ=environ, sampler=ALWAYS_ON, set_global=False)
    try:
        attributes = provider.resource.attributes
        assert (attributes["faas.name"], attributes["cloud.region"]) == ("orders", "eu-west-1")
    finally:
        provider.shutdown()


def test_every_environment_variable_is_named_in_the_config_module() -> None:
    """No module but otel_xray/config.py spells a variable's name (so each is documented once)."""
    import ast
    import re
    from pathlib import Path

    variable = re.compile(r"(AWS|OTEL|ECS|EKS|K8S|KUBERNETES|_X_AMZN)_[A-Z0-9_]+")
    package = Path(__file__).resolve().parents[1] / "otel_xray"
    spelled = [
        f"{path.relative_to(package)}: {node.value}"
        for path in package.rglob("*.py")
        if path.name != "config.py" or path.parent != package
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and variable.fullmatch(node.value)
    ]
    assert spelled == []


@pytest.mark.parametrize("lambda_", [False, True])
def test_default_propagators_let_the_x_ray_header_win_unless_root_only(lambda_: bool) -> None:
    """configure()'s propagator and the distro's OTEL_PROPAGATORS default read the same."""
    x_ray = "Root=1-6b05980d-5e644423c61ba3d658380682;Parent=53995c3f42cd8ad8;Sampled=1"
    w3c = "00-6b05980e00000000000000000000c0de-00f067aa0ba902b7-01"
    by_names = propagator_from_env({"OTEL_PROPAGATORS": default_propagator_names(lambda_=lambda_)})
    assert by_names is not None
    for propagator in (default_propagator(), by_names):
        both = propagator.extract({"x-amzn-trace-id": x_ray, "traceparent": w3c})
        parent = trace.get_current_span(both).get_span_context()
        assert (parent.trace_id, parent.span_id) == (
            0x6B05980D5E644423C61BA3D658380682,
            0x53995C3F42CD8AD8,
        )
        root_only = propagator.extract(
            {"x-amzn-trace-id": "Root=1-6b05980d-5e644423c61ba3d658380682", "traceparent": w3c}
        )
        parent = trace.get_current_span(root_only).get_span_context()
        assert (parent.trace_id, parent.span_id) == (
            0x6B05980E00000000000000000000C0DE,
            0x00F067AA0BA902B7,
        )
