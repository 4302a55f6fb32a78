"""Fixtures for collector tests, shared by every collector test module.

- ``db``: the store a test runs against: ``sqlite`` (a file in ``tmp_path``), or in modules
  marked ``pytestmark = BOTH_STORES`` (support/postgres.py) also ``postgres`` (a fresh database
  in the session's PostgreSQL server, ``postgres_server``).
- ``collector``: an in-process ``Collector`` on ephemeral 127.0.0.1 ports (UDP, HTTP, OTLP)
  over ``db``.
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
from botocore.config import Config
from otel_xray_collector.app import Collector
from otel_xray_collector.config import CollectorConfig

from .support.postgres import STORES, PostgresServer
from .support.process import CollectorProcess


def make_config(db: Path | str, **overrides: Any) -> CollectorConfig:
    settings: dict[str, Any] = {
        "udp": "127.0.0.1:0",
        "tcp": "127.0.0.1:0",
        "otlp": "127.0.0.1:0",
        "otlp_http": "127.0.0.1:0",
        "db": str(db),
    }
    settings.update(overrides)
    return CollectorConfig(**settings)


def forwarding_collector(endpoint_url: str, protocol: str, **settings: Any) -> Collector:
    """A started in-memory collector (UDP and the API on free ports, no OTLP listeners)
    forwarding to ``endpoint_url`` with ``protocol`` (region us-west-2 unless ``settings``
    say otherwise)."""
    settings.setdefault("region", "us-west-2")
    config = make_config(
        Path(":memory:"),
        otlp=None,
        otlp_http=None,
        forward_endpoint=endpoint_url,
        forward_protocol=protocol,
        **settings,
    )
    return Collector(config).start()


def xray_client_for(endpoint_url: str, attempts: int | None = None) -> Any:
    """boto3's X-Ray client for a collector; ``attempts=1``: no retries, so each call is one
    request and its answer (a 503, say) is the test's."""
    retries = None
    if attempts is not None:
        retries = Config(retries={"total_max_attempts": attempts, "mode": "standard"})
    return boto3.client(
        "xray",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=retries,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("db", STORES, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (initdb in a temporary directory), stopped after."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session's server (its URL), dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``--db`` value of the store under test: SQLite, unless the module runs on both stores
    with ``pytestmark = BOTH_STORES``."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("postgres_db"))
    return str(tmp_path / "xray.db")


@pytest.fixture
def collector(db: str) -> Iterator[Collector]:
    instance = Collector(make_config(db)).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def xray_client(collector: Collector) -> Any:
    return xray_client_for(collector.endpoint_url)


@pytest.fixture
def collector_process(db: str) -> Iterator[CollectorProcess]:
    process = CollectorProcess(db)
    try:
        yield process
    finally:
        process.kill()
