"""Fixtures for collector tests, shared by every collector test module.

- ``collector``: an in-process ``Collector`` on ephemeral 127.0.0.1 ports (UDP, HTTP, OTLP)
  with its SQLite file in ``tmp_path``.
- ``xray_client``: boto3's ``xray`` client pointed at that collector (dummy credentials).
- ``collector_process``: the ``otel-xray-collector`` console script as a subprocess, ports read
  from its listening line, killed at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.config import CollectorConfig

from .support.process import CollectorProcess


def make_config(db: Path, **overrides: Any) -> CollectorConfig:
    settings: dict[str, Any] = {
        "udp": "127.0.0.1:0",
        "tcp": "127.0.0.1:0",
        "otlp": "127.0.0.1:0",
        "otlp_http": "127.0.0.1:0",
        "db": str(db),
    }
    settings.update(overrides)
    return CollectorConfig(**settings)


def xray_client_for(endpoint_url: str) -> Any:
    return boto3.client(
        "xray",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(make_config(tmp_path / "xray.db")).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def xray_client(collector: Collector) -> Any:
    return xray_client_for(collector.endpoint_url)


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(tmp_path / "xray.db")
    try:
        yield process
    finally:
        process.kill()
