"""The ``awsxray_local`` / ``awsxray_remote`` names as the SDK's auto-configuration loads them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler

from tests.support.rules import HEALTHCHECK_V1


def _load(name: str) -> Sampler:
    sampler = _import_sampler(name)
    assert isinstance(sampler, ParentBased)
    return sampler


def _sampled(sampler: Sampler, path: str) -> bool:
    attributes: Any = {"http.method": "GET", "http.target": path}
    return sampler.should_sample(None, 1, "GET", attributes=attributes).decision is (
        Decision.RECORD_AND_SAMPLE
    )


def test_local_entry_point_reads_the_rules_file_from_sampler_arg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(json.dumps(HEALTHCHECK_V1))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(path))
    sampler = _load("awsxray_local")
    assert f"root:XRayLocalSampler{{{path}}}" in sampler.get_description()
    assert not _sampled(sampler, "/healthcheck")
    assert all(_sampled(sampler, "/api") for _ in range(20))


def test_local_entry_point_without_arg_uses_default_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    sampler = _load("awsxray_local")
    assert "root:XRayLocalSampler{<built-in default rules>}" in sampler.get_description()


def test_malformed_rules_file_logs_and_keeps_xray_default_not_always_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(json.dumps(dict(HEALTHCHECK_V1, default={"fixed_target": 1, "rate": 5})))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(path))
    with caplog.at_level(logging.ERROR, logger="otel_xray.sampling"):
        sampler = _load("awsxray_local")
    assert "root:XRayLocalSampler{<built-in default rules>}" in sampler.get_description()
    assert f"{path}: default.rate: 5 is outside 0..1" in caplog.text


def test_remote_entry_point_uses_daemon_address_and_fallback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fallback.json"
    path.write_text(json.dumps(HEALTHCHECK_V1))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", str(path))
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2999 udp:127.0.0.1:2998")
    sampler = _load("awsxray_remote")
    assert (
        f"root:XRayRemoteSampler{{http://127.0.0.1:2999, fallback={path}}}"
        in sampler.get_description()
    )


def test_remote_entry_point_with_bad_daemon_address_polls_the_default_address(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As the exporter does (docs/decisions.md, "Daemon address parsing")."""
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "not-an-address:x")
    with caplog.at_level(logging.ERROR, logger="otel_xray.config"):
        sampler = _load("awsxray_remote")
    assert "root:XRayRemoteSampler{http://127.0.0.1:2000, fallback=" in sampler.get_description()
    assert "Invalid AWS_XRAY_DAEMON_ADDRESS='not-an-address:x'" in caplog.text
