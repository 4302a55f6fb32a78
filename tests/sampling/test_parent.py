"""Parent-based sampling with X-Amzn-Trace-Id parents, through the real ``XRayPropagator``."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_xray.propagator import XRayPropagator
from otel_xray.sampling import XRayLocalSampler, XRayParentBased
from tests.support.rules import HEALTHCHECK_V1

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
HEALTHCHECK = {"http.method": "GET", "http.target": "/healthcheck"}
API = {"http.method": "GET", "http.target": "/api"}


@pytest.fixture
def traced() -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=XRayParentBased(XRayLocalSampler(HEALTHCHECK_V1)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def serve(header: str, attributes: dict[str, str]) -> bool:
        """Handle one request carrying ``header``; whether its server span was recorded."""
        exporter.clear()
        parent = XRayPropagator().extract({"X-Amzn-Trace-Id": header})
        with tracer.start_as_current_span("GET", parent, attributes=attributes):
            pass
        return len(exporter.get_finished_spans()) == 1

    yield serve
    provider.shutdown()


@pytest.mark.parametrize(
    "header",
    [
        f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=?",
        f"Root={ROOT};Parent=53995c3f42cd8ad8",
        f"Root={ROOT}",
    ],
    ids=["sampled-question-mark", "no-sampled", "alb-root-only"],
)
def test_deferred_parent_gets_the_rules_decision(traced: Any, header: str) -> None:
    assert not traced(header, HEALTHCHECK)
    assert traced(header, API)


def test_decided_parents_are_followed(traced: Any) -> None:
    assert traced(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1", HEALTHCHECK)
    assert not traced(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0", API)


def test_description_names_the_root_sampler() -> None:
    sampler = XRayParentBased(XRayLocalSampler())
    assert sampler.get_description().startswith(
        "XRayParentBased{root:XRayLocalSampler{<built-in default rules>}"
    )
