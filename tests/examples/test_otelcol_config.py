"""collector/otelcol/config.yaml: the upstream Collector pipeline for X-Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "collector" / "otelcol" / "config.yaml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_otlp_receiver_takes_grpc_and_http(config: dict[str, Any]) -> None:
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_awsxray_receiver_listens_like_the_daemon(config: dict[str, Any]) -> None:
    receiver = config["receivers"]["awsxray"]
    assert receiver["transport"] == "udp"
    assert receiver["endpoint"].endswith(":2000")
    assert receiver["proxy_server"]["endpoint"].endswith(":2000")  # the sampling API on TCP


def test_awsxray_exporter_has_region_and_indexed_attributes(config: dict[str, Any]) -> None:
    exporter = config["exporters"]["awsxray"]
    assert exporter["region"] == "${env:AWS_REGION}"
    assert isinstance(exporter["indexed_attributes"], list) and exporter["indexed_attributes"]
    assert all(isinstance(name, str) for name in exporter["indexed_attributes"])
    # Documented exporter keys only (contrib exporter/awsxrayexporter README).
    assert set(exporter) <= {
        "num_workers",
        "endpoint",
        "request_timeout_seconds",
        "max_retries",
        "no_verify_ssl",
        "proxy_address",
        "region",
        "local_mode",
        "resource_arn",
        "role_arn",
        "indexed_attributes",
        "index_all_attributes",
        "aws_log_groups",
        "telemetry",
    }


def test_one_traces_pipeline_from_both_receivers_through_batch_to_xray(
    config: dict[str, Any],
) -> None:
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces"}
    traces = pipelines["traces"]
    assert traces["receivers"] == ["otlp", "awsxray"]
    assert traces["processors"][-1] == "batch"
    assert traces["exporters"] == ["awsxray"]


def test_every_component_used_is_defined_and_every_defined_one_is_used(
    config: dict[str, Any],
) -> None:
    traces = config["service"]["pipelines"]["traces"]
    for section in ("receivers", "processors", "exporters"):
        assert set(traces[section]) == set(config[section]), section
