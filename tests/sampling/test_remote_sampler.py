from __future__ import annotations

import logging
import random
import threading
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Decision

from otel_xray.sampling import SAMPLING_RULE_ATTRIBUTE, XRayRemoteSampler
from tests.sampling.api_server import SamplingApiServer, sampling_rule
from tests.sampling.conftest import FakeClock
from tests.support.rules import HEALTHCHECK_V1

SERVICE = Resource.create({"service.name": "checkout", "cloud.platform": "aws_ecs"})


def _sampler(api: SamplingApiServer, clock: FakeClock, **kwargs: Any) -> XRayRemoteSampler:
    kwargs.setdefault("resource", SERVICE)
    return XRayRemoteSampler(daemon_address=api.address, clock=clock, autostart=False, **kwargs)


def _decide(sampler: XRayRemoteSampler, attributes: Any = None) -> Any:
    return sampler.should_sample(None, 1, "span", attributes=attributes)


def _sampled(sampler: XRayRemoteSampler, attributes: Any = None) -> bool:
    return bool(_decide(sampler, attributes).decision is Decision.RECORD_AND_SAMPLE)


def _http(method: str, path: str) -> dict[str, Any]:
    return {"http.request.method": method, "url.path": path, "server.address": "shop.example.com"}


def test_borrows_one_per_second_before_the_first_quota(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, reservoir=5, fixed_rate=0.0)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    for _ in range(3):
        assert [_sampled(sampler) for _ in range(4)] == [True, False, False, False]
        clock.advance(1)


def test_follows_quota_changes_from_the_api(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, reservoir=5, fixed_rate=0.0)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    _sampled(sampler)  # the rule needs a request before it is reported (and gets a target)

    sampling_api.targets["Default"] = {
        "FixedRate": 0.0,
        "ReservoirQuota": 3,
        "ReservoirQuotaTTL": clock.now + 60,
        "Interval": 10,
    }
    clock.advance(10)
    assert sampler.report_statistics()
    assert sum(_sampled(sampler) for _ in range(10)) == 3

    sampling_api.targets["Default"]["ReservoirQuota"] = 1
    clock.advance(10)
    assert sampler.report_statistics()
    assert sum(_sampled(sampler) for _ in range(10)) == 1

    sampling_api.targets["Default"] = {"FixedRate": 1.0}  # a new rate, quota and TTL kept
    clock.advance(10)
    assert sampler.report_statistics()
    assert sum(_sampled(sampler) for _ in range(10)) == 10

    sampling_api.targets["Default"] = {"FixedRate": 0.0}
    clock.advance(10)
    assert sampler.report_statistics()
    clock.advance(30)  # past the quota's TTL, and no new quota came: borrow again
    assert [_sampled(sampler) for _ in range(3)] == [True, False, False]


def test_quota_expiry_returns_to_borrowing(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, reservoir=5)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    _sampled(sampler)
    sampling_api.targets["Default"] = {
        "FixedRate": 0.0,
        "ReservoirQuota": 4,
        "ReservoirQuotaTTL": clock.now + 15,
    }
    clock.advance(10)
    assert sampler.report_statistics()
    assert sum(_sampled(sampler) for _ in range(10)) == 4
    clock.advance(10)  # past ReservoirQuotaTTL
    assert sum(_sampled(sampler) for _ in range(10)) == 1


def test_priority_order_rule_name_attribute_and_default(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule("api-all", priority=20, fixed_rate=0.0, path="/api/*"),
        sampling_rule("api-get", priority=10, fixed_rate=1.0, method="GET", path="/api/*"),
        sampling_rule("b-same-priority", priority=30, fixed_rate=1.0, path="/z"),
        sampling_rule("a-same-priority", priority=30, fixed_rate=0.0, path="/z"),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    result = _decide(sampler, _http("GET", "/API/orders"))
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert result.attributes[SAMPLING_RULE_ATTRIBUTE] == "api-get"
    assert result.attributes["url.path"] == "/API/orders"
    assert not _sampled(sampler, _http("POST", "/api/orders"))  # api-all, rate 0
    assert not _sampled(sampler, _http("GET", "/z"))  # a-same-priority sorts first
    assert not _sampled(sampler, _http("GET", "/elsewhere"))  # Default


def test_service_name_and_type_come_from_the_resource(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule("other-service", priority=1, fixed_rate=0.0, service_name="payments"),
        sampling_rule(
            "lambda-only", priority=2, fixed_rate=0.0, service_type="AWS::Lambda::Function"
        ),
        sampling_rule(
            "one-arn",
            priority=3,
            fixed_rate=0.0,
            resource_arn="arn:aws:ecs:us-east-1:123456789012:task/other",
        ),
        sampling_rule(
            "checkout-on-ecs",
            priority=4,
            fixed_rate=1.0,
            service_name="Checkout",
            service_type="AWS::ECS::Container",
        ),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    result = _decide(sampler, _http("GET", "/"))
    assert result.attributes[SAMPLING_RULE_ATTRIBUTE] == "checkout-on-ecs"

    elsewhere = _sampler(
        sampling_api, clock, resource=Resource.create({"service.name": "payments"})
    )
    assert elsewhere.refresh_rules()
    assert not _sampled(elsewhere, _http("GET", "/"))


def test_resource_arn_rule_matches_the_resource_arn(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders"
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule("orders-fn", priority=1, fixed_rate=1.0, resource_arn="*:function:orders"),
    ]
    resource = Resource.create({"service.name": "orders", "cloud.resource_id": arn})
    sampler = _sampler(sampling_api, clock, resource=resource)
    assert sampler.refresh_rules()
    assert _decide(sampler).attributes[SAMPLING_RULE_ATTRIBUTE] == "orders-fn"


def test_rule_attributes_match_span_attributes_at_start(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule(
            "gold-tenants",
            priority=1,
            fixed_rate=1.0,
            attributes={"tenant.tier": "gold*", "http.request.method": "GET"},
        ),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    assert _sampled(sampler, dict(_http("GET", "/"), **{"tenant.tier": "Goldish"}))
    assert not _sampled(sampler, dict(_http("POST", "/"), **{"tenant.tier": "gold"}))
    assert not _sampled(sampler, _http("GET", "/"))  # attribute absent: the rule does not apply


def test_non_http_root_span_skips_http_specific_rules(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=1.0),
        sampling_rule("no-healthchecks", priority=1, fixed_rate=0.0, path="/healthcheck"),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    assert _decide(sampler, {"job": "nightly"}).attributes[SAMPLING_RULE_ATTRIBUTE] == "Default"
    assert not _sampled(sampler, _http("GET", "/healthcheck"))


def test_statistics_add_up_to_the_decisions_made(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    random.seed(7)
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, reservoir=1, fixed_rate=0.3),
        sampling_rule("api", priority=1, reservoir=0, fixed_rate=0.5, path="/api"),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    made = {"Default": [0, 0], "api": [0, 0]}  # requests, sampled
    for step in range(200):
        path = "/api" if step % 3 == 0 else "/other"
        result = _decide(sampler, _http("GET", path))
        name = "api" if path == "/api" else "Default"
        made[name][0] += 1
        made[name][1] += result.decision is Decision.RECORD_AND_SAMPLE
        clock.advance(0.05)  # 10 seconds in all
    assert sampler.report_statistics()
    documents = {doc["RuleName"]: doc for doc in sampling_api.statistics()}
    assert documents.keys() == {"Default", "api"}
    for name, (requests, sampled) in made.items():
        doc = documents[name]
        assert (doc["RequestCount"], doc["SampledCount"]) == (requests, sampled)
        assert doc["ClientID"] == sampler.client_id and len(sampler.client_id) == 24
        assert doc["Timestamp"] == int(clock.now)
    assert documents["Default"]["BorrowCount"] == 10  # one per second, counted in SampledCount too
    assert documents["api"]["BorrowCount"] == 0
    assert 0 < made["api"][1] < made["api"][0]

    clock.advance(10)
    assert sampler.report_statistics()  # nothing new: nothing reported
    assert len(sampling_api.bodies("/SamplingTargets")) == 1


def test_failed_report_keeps_its_counts_for_the_next_one(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=1.0)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    for _ in range(5):
        _sampled(sampler)
    clock.advance(10)
    sampling_api.mode = "error"
    assert not sampler.report_statistics()
    sampling_api.mode = "ok"
    _sampled(sampler)
    clock.advance(10)
    assert sampler.report_statistics()
    assert sampling_api.statistics()[-1]["RequestCount"] == 6


def test_report_interval_from_the_target(sampling_api: SamplingApiServer, clock: FakeClock) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=1.0)]
    sampling_api.targets["Default"] = {"FixedRate": 1.0, "Interval": 30}
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    reports = []
    for _ in range(6):  # six 10-second cycles with traffic
        _sampled(sampler)
        clock.advance(10)
        sampler.report_statistics()
        reports.append(len(sampling_api.statistics()))
    assert reports == [1, 1, 1, 2, 2, 2]


def test_more_than_25_rules_are_reported_in_several_calls(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000)] + [
        sampling_rule(f"r{i}", priority=i + 1, path=f"/r{i}") for i in range(30)
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    for i in range(30):
        _sampled(sampler, _http("GET", f"/r{i}"))
    clock.advance(10)
    assert sampler.report_statistics()
    assert [
        len(b["SamplingStatisticsDocuments"]) for b in sampling_api.bodies("/SamplingTargets")
    ] == [25, 5]


def test_rules_are_read_across_pages(sampling_api: SamplingApiServer, clock: FakeClock) -> None:
    sampling_api.page_size = 1
    sampling_api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule("a", priority=1, fixed_rate=0.0, path="/a"),
        sampling_rule("b", priority=2, fixed_rate=1.0, path="/b"),
    ]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    assert [b.get("NextToken") for b in sampling_api.bodies("/GetSamplingRules")] == [
        None,
        "1",
        "2",
    ]
    assert _decide(sampler, _http("GET", "/b")).attributes[SAMPLING_RULE_ATTRIBUTE] == "b"


def test_last_rule_modification_triggers_an_early_refetch(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=0.0)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.poll_now()
    _sampled(sampler)
    assert len(sampling_api.bodies("/GetSamplingRules")) == 1

    clock.advance(10)
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=1.0)]
    sampling_api.last_rule_modification = clock.now - 1  # edited after our fetch
    assert sampler.report_statistics()
    assert len(sampling_api.bodies("/GetSamplingRules")) == 2
    assert _sampled(sampler)

    _sampled(sampler)
    clock.advance(10)
    assert sampler.report_statistics()  # not modified since the last fetch: no refetch
    assert len(sampling_api.bodies("/GetSamplingRules")) == 2


def test_unusable_rules_are_skipped_and_logged_once(
    sampling_api: SamplingApiServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = sampling_rule("broken", priority=1, fixed_rate=1.0)
    del broken["FixedRate"]
    sampling_api.rules = [broken, sampling_rule("Default", priority=10000, fixed_rate=0.0)]
    sampler = _sampler(sampling_api, clock)
    with caplog.at_level(logging.WARNING, logger="otel_xray.sampling"):
        assert sampler.refresh_rules()
        assert sampler.refresh_rules()
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring a sampling rule: rule broken: FixedRate missing or not a number"
    ]
    assert not _sampled(sampler)


def test_unreachable_daemon_uses_the_fallback_rules(
    sampling_api: SamplingApiServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sampling_api.stop()
    sampler = _sampler(sampling_api, clock, fallback_rules=HEALTHCHECK_V1)
    with caplog.at_level(logging.INFO, logger="otel_xray.sampling"):
        assert not sampler.refresh_rules()
        assert not sampler.refresh_rules()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert sampling_api.address in caplog.records[0].getMessage()
    assert not _sampled(sampler, _http("GET", "/healthcheck"))
    result = _decide(sampler, _http("GET", "/api"))
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert SAMPLING_RULE_ATTRIBUTE not in result.attributes


def test_falls_back_when_the_daemon_goes_away_and_recovers_when_it_returns(
    sampling_api: SamplingApiServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=0.0)]
    sampler = _sampler(
        sampling_api,
        clock,
        fallback_rules={"version": 2, "default": {"fixed_target": 0, "rate": 1.0}},
    )
    with caplog.at_level(logging.INFO, logger="otel_xray.sampling"):
        assert sampler.refresh_rules()
        assert not _sampled(sampler)  # centralized Default: rate 0

        sampling_api.stop()
        for _ in range(3):
            clock.advance(300)
            assert not sampler.refresh_rules()
            assert not _sampled(sampler)  # the last rules stay in force for rules_ttl (1 h)
        clock.advance(3600)
        assert _sampled(sampler)  # expired: local fallback rules (rate 1)

        sampling_api.start()  # same port
        assert sampler.refresh_rules()
        assert not _sampled(sampler)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["WARNING", "INFO"]
    assert "unavailable" in messages[0][1] and "available again" in messages[1][1]


def test_garbage_answers_count_as_an_outage(
    sampling_api: SamplingApiServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sampling_api.mode = "garbage"
    sampler = _sampler(sampling_api, clock, fallback_rules=HEALTHCHECK_V1)
    with caplog.at_level(logging.WARNING, logger="otel_xray.sampling"):
        assert not sampler.refresh_rules()
    assert "not JSON" in caplog.records[0].getMessage()
    assert not _sampled(sampler, _http("GET", "/healthcheck"))
    assert _sampled(sampler, _http("GET", "/api"))


def test_quota_borrowing_and_statistics_are_exact_across_threads(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, reservoir=1, fixed_rate=0.0)]
    sampler = _sampler(sampling_api, clock)
    assert sampler.refresh_rules()
    sampled: list[bool] = []
    lock = threading.Lock()

    def burst() -> None:
        start = threading.Barrier(8)

        def worker() -> None:
            start.wait()
            mine = [_sampled(sampler) for _ in range(250)]
            with lock:
                sampled.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    burst()  # no quota yet: exactly one borrowed this second
    assert sum(sampled) == 1
    sampling_api.targets["Default"] = {"ReservoirQuota": 5, "ReservoirQuotaTTL": clock.now + 60}
    clock.advance(10)
    assert sampler.report_statistics()
    sampled.clear()
    burst()  # with a quota of 5 per second
    assert sum(sampled) == 5
    clock.advance(10)
    assert sampler.report_statistics()
    first, second = sampling_api.statistics()
    assert (first["RequestCount"], first["SampledCount"], first["BorrowCount"]) == (2000, 1, 1)
    assert (second["RequestCount"], second["SampledCount"], second["BorrowCount"]) == (2000, 5, 0)


# -- built by configure() ----------------------------------------------------------------------


def _configured(api: SamplingApiServer) -> Any:
    """configure() with the daemon address in its ``environ`` only; one span started polling."""
    from otel_xray.provider import configure

    api.rules = [sampling_rule("Default", priority=10000, reservoir=0, fixed_rate=1.0)]
    provider = configure(
        "svc", environ={"AWS_XRAY_DAEMON_ADDRESS": api.address}, detectors=[], set_global=False
    )
    provider.get_tracer("t").start_span("first").end()  # the first decision starts polling
    return provider


def test_configure_environ_names_the_daemon_the_default_sampler_polls(
    sampling_api: SamplingApiServer,
) -> None:
    """One ``environ`` for everything configure() builds: the sampler polls the daemon that
    ``AWS_XRAY_DAEMON_ADDRESS`` names there, not the process environment's."""
    provider = _configured(sampling_api)
    try:
        assert sampling_api.wait_for("/GetSamplingRules", 1)
    finally:
        provider.shutdown()


def test_provider_shutdown_stops_the_samplers_poller(sampling_api: SamplingApiServer) -> None:
    provider = _configured(sampling_api)
    sampling_api.wait_for("/GetSamplingRules", 1)
    poller = provider.sampler.root._thread
    assert poller is not None and poller.is_alive()
    provider.shutdown()
    assert not poller.is_alive()
