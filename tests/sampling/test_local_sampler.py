from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import flask
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_xray.sampling import XRayLocalSampler
from otel_xray.sampling.entrypoints import local_sampler_factory
from tests.sampling.conftest import FakeClock
from tests.support.rules import HEALTHCHECK_V1, HEALTHCHECK_V2


def _http(method: str, path: str, host: str = "shop.example.com") -> dict[str, Any]:
    return {"http.method": method, "http.target": path, "http.host": host}


def _sampled(sampler: Any, attributes: Any = None) -> bool:
    result = sampler.should_sample(None, 1, "span", attributes=attributes)
    return bool(result.decision is Decision.RECORD_AND_SAMPLE)


def test_healthcheck_rule_drops_healthchecks_and_default_samples_the_rest(
    clock: FakeClock,
) -> None:
    sampler = XRayLocalSampler(HEALTHCHECK_V1, clock=clock)
    for _second in range(3):
        assert [_sampled(sampler, _http("GET", "/healthcheck")) for _ in range(50)] == [False] * 50
        assert [_sampled(sampler, _http("GET", "/api?x=1")) for _ in range(50)] == [True] * 50
        assert _sampled(sampler, _http("POST", "/healthcheck"))  # the rule is for GET only
        clock.advance(1)


def test_sampled_result_keeps_the_span_attributes(clock: FakeClock) -> None:
    sampler = XRayLocalSampler(HEALTHCHECK_V1, clock=clock)
    attributes = _http("GET", "/api")
    result = sampler.should_sample(None, 1, "span", attributes=attributes)
    assert dict(result.attributes) == attributes


def test_reservoir_takes_exactly_fixed_target_per_wall_clock_second(clock: FakeClock) -> None:
    rules = {"version": 2, "default": {"fixed_target": 3, "rate": 0}}
    clock.now = 1_700_000_000.0
    sampler = XRayLocalSampler(rules, clock=clock)
    per_second = []
    for _ in range(4):
        taken = 0
        for _ in range(10):  # 10 requests spread over the second: .0, .1, ... .9
            taken += _sampled(sampler)
            clock.advance(0.1)
        per_second.append(taken)
    assert per_second == [3, 3, 3, 3]


def test_reservoir_boundary_is_the_epoch_second_not_the_first_request(clock: FakeClock) -> None:
    rules = {"version": 2, "default": {"fixed_target": 1, "rate": 0}}
    clock.now = 1_700_000_000.9
    sampler = XRayLocalSampler(rules, clock=clock)
    assert _sampled(sampler)
    assert not _sampled(sampler)
    clock.now = 1_700_000_001.0  # 100 ms later, but a new second
    assert _sampled(sampler)


def test_reservoir_is_exact_under_concurrent_threads(clock: FakeClock) -> None:
    sampler = XRayLocalSampler(
        {"version": 2, "default": {"fixed_target": 7, "rate": 0}}, clock=clock
    )
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [_sampled(sampler) for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 7 and len(results) == 4000


def test_rate_applies_after_the_reservoir(clock: FakeClock) -> None:
    sampler = XRayLocalSampler(
        {"version": 2, "default": {"fixed_target": 2, "rate": 1}}, clock=clock
    )
    assert all(_sampled(sampler) for _ in range(20))
    zero = XRayLocalSampler({"version": 2, "default": {"fixed_target": 2, "rate": 0}}, clock=clock)
    assert sum(_sampled(zero) for _ in range(20)) == 2


def test_v1_and_v2_files_decide_the_same(clock: FakeClock) -> None:
    requests = [
        _http("GET", "/healthcheck"),
        _http("get", "/HEALTHCHECK"),
        _http("GET", "/healthcheck/"),
        _http("POST", "/healthcheck"),
        _http("GET", "/api"),
        {"http.request.method": "GET", "url.path": "/healthcheck", "server.address": "a"},
        {"http.request.method": "GET", "url.path": "/other"},
        None,
    ]
    v1 = XRayLocalSampler(json.dumps(HEALTHCHECK_V1), clock=clock)
    v2 = XRayLocalSampler(json.dumps(HEALTHCHECK_V2), clock=clock)
    decisions_v1 = [_sampled(v1, attrs) for attrs in requests]
    decisions_v2 = [_sampled(v2, attrs) for attrs in requests]
    assert decisions_v1 == decisions_v2 == [False, False, True, True, True, False, True, True]


def test_first_matching_rule_wins_and_host_matches_with_or_without_port(clock: FakeClock) -> None:
    rules = {
        "version": 2,
        "rules": [
            {
                "host": "admin.example.com",
                "http_method": "*",
                "url_path": "*",
                "fixed_target": 0,
                "rate": 1,
            },
            {"host": "*", "http_method": "*", "url_path": "/admin/*", "fixed_target": 0, "rate": 0},
        ],
        "default": {"fixed_target": 0, "rate": 0},
    }
    sampler = XRayLocalSampler(rules, clock=clock)
    assert _sampled(sampler, _http("GET", "/admin/x", host="admin.example.com:8443"))
    assert not _sampled(sampler, _http("GET", "/admin/x", host="shop.example.com"))


def test_missing_http_values_match_implicitly(clock: FakeClock) -> None:
    rules = {
        "version": 2,
        "rules": [
            {
                "host": "api.example.com",
                "http_method": "GET",
                "url_path": "/x",
                "fixed_target": 0,
                "rate": 1,
            }
        ],
        "default": {"fixed_target": 0, "rate": 0},
    }
    sampler = XRayLocalSampler(rules, clock=clock)
    # No host attribute: the host matcher does not exclude it (X-Ray SDK for Python behaviour).
    assert _sampled(sampler, {"http.method": "GET", "http.target": "/x"})


def test_root_span_without_http_attributes_is_decided_by_default(clock: FakeClock) -> None:
    rules = dict(HEALTHCHECK_V1, default={"fixed_target": 0, "rate": 1})
    sampler = XRayLocalSampler(rules, clock=clock)
    # The healthcheck rule (rate 0) would match by implicit matching; the default decides instead.
    assert _sampled(sampler, None)
    assert _sampled(sampler, {"job.name": "nightly-report"})


def test_no_rules_means_one_per_second_then_five_percent(clock: FakeClock) -> None:
    sampler = XRayLocalSampler(clock=clock)
    assert sampler.rules.default.fixed_target == 1
    assert sampler.rules.default.rate == 0.05
    assert _sampled(sampler)
    assert "built-in" in sampler.get_description()


def test_malformed_rules_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"<dict>: rules\[0\]\.rate: 1\.5 is outside 0\.\.1"):
        XRayLocalSampler(dict(HEALTHCHECK_V1, rules=[dict(HEALTHCHECK_V1["rules"][0], rate=1.5)]))


def _remote_parent(sampled: bool) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(
        0x5F0A1B2C3D4E5F60718293A4B5C6D7E8, 0x1234, is_remote=True, trace_flags=flags
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def test_parent_based_children_follow_their_parent(tmp_path: Path) -> None:
    path = tmp_path / "sampling-rules.json"
    path.write_text(json.dumps(HEALTHCHECK_V1))
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=local_sampler_factory(str(path)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    healthcheck = _http("GET", "/healthcheck")
    api = _http("GET", "/api")

    with tracer.start_as_current_span("root-hc", attributes=healthcheck):
        pass
    with tracer.start_as_current_span("root-api", attributes=api):
        with tracer.start_as_current_span("child-hc", attributes=healthcheck):
            pass
    with tracer.start_as_current_span(
        "sampled-upstream-hc", _remote_parent(True), attributes=healthcheck
    ):
        pass
    with tracer.start_as_current_span(
        "unsampled-upstream-api", _remote_parent(False), attributes=api
    ):
        pass
    provider.shutdown()
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "child-hc",
        "root-api",
        "sampled-upstream-hc",
    ]


def test_flask_instrumentation_attributes_drive_the_rules(clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=XRayLocalSampler(HEALTHCHECK_V1, clock=clock))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = flask.Flask("sampling-test")
    app.add_url_rule("/healthcheck", "hc", lambda: "ok")
    app.add_url_rule("/api", "api", lambda: "api")
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    try:
        client = app.test_client()
        for _ in range(3):
            assert client.get("/healthcheck").status_code == 200
            assert client.get("/api?q=1").status_code == 200
    finally:
        FlaskInstrumentor().uninstrument_app(app)
        provider.shutdown()
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["GET /api"] * 3
