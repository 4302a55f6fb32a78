"""ADOT's OTLP-over-UDP spans (``T1S``/``T1U`` datagrams) on the collector's UDP port.

The sender is AWS's own ``OTLPUdpSpanExporter`` from aws-opentelemetry-distro, which pins exact
OpenTelemetry versions and so runs from its own venv (``.venv/adot``, built once per worktree
by :func:`support.helper_venv.helper_venv` from the wheelhouse). Stored traces are read back with
boto3.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_xray_collector.app import Collector
from otel_xray_collector.config import format_address

from tests.support.wheelhouse import ADOT, read_requirements

from .conftest import make_config
from .support.helper_venv import helper_venv
from .support.segments import HEADER

ADOT_REQUIREMENTS = read_requirements(ADOT)
APP = Path(__file__).parent / "support" / "adot_udp_app.py"


@pytest.fixture(scope="session")
def adot_python() -> Path:
    return helper_venv("adot", ADOT_REQUIREMENTS)


def xray_trace_id(hex_id: str) -> str:
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


def run_adot_app(python: Path, collector: Collector) -> dict[str, str]:
    env = dict(os.environ, AWS_XRAY_DAEMON_ADDRESS=format_address(collector.udp_address))
    run = subprocess.run(
        [str(python), str(APP)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    ids: dict[str, str] = json.loads(run.stdout.strip().splitlines()[-1])
    return ids


@pytest.mark.timeout(900)  # the first use builds .venv/adot (from the local wheelhouse)
def test_adot_sampled_spans_are_stored_and_unsampled_ones_counted(
    adot_python: Path, collector: Collector, xray_client: Any
) -> None:
    ids = run_adot_app(adot_python, collector)
    assert collector.wait_for_datagrams(2, timeout=60)  # one batch of each kind
    with urllib.request.urlopen(collector.endpoint_url + "/status", timeout=30) as response:
        status = json.load(response)
    assert status["rejected"] == {}
    assert status["udp"]["otlp"] == {
        "sampled_datagrams": 1,
        "sampled_spans": 2,
        "unsampled_datagrams": 1,
        "unsampled_spans": 3,
    }
    assert status["stored"] == 2

    sampled = xray_trace_id(ids["sampled"])
    traces = xray_client.batch_get_traces(TraceIds=[sampled])["Traces"]
    documents = [json.loads(s["Document"]) for s in traces[0]["Segments"]]
    [segment] = [d for d in documents if not d.get("inferred")]
    assert segment["name"] == "adot-lambda"
    assert segment["http"]["request"]["method"] == "GET"
    assert segment["aws"]["xray"]["sdk"].startswith("opentelemetry for python")
    assert [sub["name"] for sub in segment["subsegments"]] == ["DynamoDB"]  # the client span
    unsampled = xray_trace_id(ids["unsampled"])
    assert xray_client.batch_get_traces(TraceIds=[unsampled])["Traces"] == []


def _t1(prefix: bytes, payload: bytes) -> bytes:
    return HEADER + prefix + payload


def _request_bytes() -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-raw"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    return bytes(encode_spans(memory.get_finished_spans()).SerializeToString())


@pytest.mark.parametrize("receiver_process", [True, False], ids=["receiver-process", "thread"])
def test_bad_otlp_datagrams_are_counted_per_reason(tmp_path: Path, receiver_process: bool) -> None:
    collector = Collector(
        make_config(tmp_path / "xray.db", otlp=None, receiver_process=receiver_process)
    ).start()
    good = base64.b64encode(_request_bytes())
    datagrams = [
        _t1(b"T1S", b"not base64!"),
        _t1(b"T1U", b"@@@@"),
        _t1(b"T1S", base64.b64encode(b"\xff\xff\xff\xff garbage")),
        _t1(b"M1", base64.b64encode(b"")),
        _t1(b"T1S", good),
        _t1(b"T1U", good),
    ]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for datagram in datagrams:
                udp.sendto(datagram, collector.udp_address)
        assert collector.wait_for_datagrams(len(datagrams), timeout=60)
        status = collector.status()
        assert status["received"] == len(datagrams)
        assert status["rejected"] == {
            "otlp_invalid_base64": 2,
            "otlp_invalid_protobuf": 1,
            "otlp_metrics_unsupported": 1,
        }
        assert status["stored"] == 1
        assert status["udp"]["otlp"] == {
            "sampled_datagrams": 1,
            "sampled_spans": 1,
            "unsampled_datagrams": 1,
            "unsampled_spans": 1,
        }
    finally:
        collector.stop()
