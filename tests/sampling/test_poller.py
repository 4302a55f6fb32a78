"""The background poller: lazy start, shutdown, and life across ``os.fork()``."""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Decision

from otel_xray.sampling import XRayRemoteSampler
from tests.sampling.api_server import SamplingApiServer, sampling_rule
from tests.sampling.conftest import FakeClock

POLLER = "otel-xray-sampling-poller"


def _pollers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == POLLER]


def _decide(sampler: XRayRemoteSampler, attributes: Any = None) -> Decision:
    return sampler.should_sample(None, 1, "span", attributes=attributes).decision


def test_poller_starts_on_first_decision_and_stops_on_shutdown(
    sampling_api: SamplingApiServer,
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, fixed_rate=1.0)]
    sampler = XRayRemoteSampler(
        resource=Resource.create({"service.name": "svc"}),
        daemon_address=sampling_api.address,
    )
    try:
        assert _pollers() == []  # constructing a sampler starts nothing
        assert sampling_api.requests == []
        _decide(sampler)  # the fallback or, if the poller was quick, the fetched rules decide
        assert len(_pollers()) == 1
        assert sampler.wait_for_rules(timeout=10)
        assert _decide(sampler) is Decision.RECORD_AND_SAMPLE
        assert sampling_api.bodies("/GetSamplingRules") == [{}]
    finally:
        sampler.shutdown()
    assert _pollers() == []
    _decide(sampler)  # decisions keep working after shutdown; no poller comes back
    assert _pollers() == []


def test_forked_child_polls_again_under_its_own_client_id(
    sampling_api: SamplingApiServer, clock: FakeClock
) -> None:
    sampling_api.rules = [sampling_rule("Default", priority=10000, reservoir=1, fixed_rate=0.0)]
    sampler = XRayRemoteSampler(
        resource=Resource.create({"service.name": "svc"}),
        daemon_address=sampling_api.address,
        clock=clock,
    )
    try:
        _decide(sampler)
        assert sampler.wait_for_rules(timeout=10)
        sampling_api.wait_for("/GetSamplingRules", 1)
        # The parent borrows this (fake) second's one trace under the rule: whether its first
        # decision above already had (the rules were fetched before it ran) depended on the
        # poller's speed, and the child then inherited the used borrow: that was the race.
        # Now the parent has borrowed for sure; the child, another client, borrows its own.
        _decide(sampler)
        assert _decide(sampler) is Decision.DROP  # the parent's borrow for this second is used
        parent_id = sampler.client_id
        to_parent_r, to_parent_w = os.pipe()
        to_child_r, to_child_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: talk through pipes, never return into pytest
            status = 1
            try:
                _decide(sampler)  # restarts a poller in the child, which fetches rules
                poller_running = len(_pollers()) == 1
                clock.advance(10)  # the rule's statistics are due
                sampler.report_statistics()
                os.write(to_parent_w, f"{sampler.client_id} {poller_running}".encode())
                os.read(to_child_r, 1)  # until the parent saw the child's rules request
                sampler.shutdown()
                status = 0 if not _pollers() else 2
            finally:
                os._exit(status)
        os.close(to_parent_w)
        child_id, child_poller = os.read(to_parent_r, 100).decode().split()
        sampling_api.wait_for("/GetSamplingRules", 2)  # the child's own poller fetched rules
        os.write(to_child_w, b"x")
        _, status = os.waitpid(pid, 0)
        for fd in (to_parent_r, to_child_r, to_child_w):
            os.close(fd)
        assert os.WEXITSTATUS(status) == 0
        assert child_poller == "True"
        assert child_id != parent_id and len(child_id) == 24
        reports = sampling_api.statistics()
        assert [doc["ClientID"] for doc in reports] == [child_id]
        assert (reports[0]["RequestCount"], reports[0]["BorrowCount"]) == (1, 1)
    finally:
        sampler.shutdown()
