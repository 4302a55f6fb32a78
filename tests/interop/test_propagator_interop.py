"""Our X-Amzn-Trace-Id header against the peers that read and write it in the wild."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_xray_sdk.core.models.trace_header import TraceHeader
from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from otel_xray.propagator import TRACE_HEADER_KEY, XRayPropagator

OURS = XRayPropagator()
THEIRS = AwsXRayPropagator()


@pytest.fixture(params=[ALWAYS_ON, ALWAYS_OFF], ids=["sampled", "unsampled"])
def span_context(request: pytest.FixtureRequest) -> Iterator[trace.SpanContext]:
    """A context from a real SDK span (X-Ray-style ids come from the provider's generator)."""
    provider = TracerProvider(sampler=request.param)
    span = provider.get_tracer("interop").start_span("client")
    span.end()
    yield span.get_span_context()
    provider.shutdown()


def xray_root(trace_id: int) -> str:
    hex_id = f"{trace_id:032x}"
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


def our_header(span_context: trace.SpanContext, extra: str = "") -> str:
    """The header we write for ``span_context`` (with ``extra`` fields carried from upstream)."""
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
    if extra:
        incoming = f"Root={xray_root(span_context.trace_id)};Parent={span_context.span_id:016x}"
        incoming += f";Sampled={int(span_context.trace_flags.sampled)};{extra}"
        ctx = OURS.extract({TRACE_HEADER_KEY: incoming})
    carrier: dict[str, str] = {}
    OURS.inject(carrier, ctx)
    return carrier[TRACE_HEADER_KEY]


def test_opentelemetry_propagator_reads_our_header(span_context: trace.SpanContext) -> None:
    header = our_header(span_context, extra="Lineage=a87bd80c:1|68fd508a:5")
    theirs = trace.get_current_span(THEIRS.extract({TRACE_HEADER_KEY: header})).get_span_context()
    assert theirs.trace_id == span_context.trace_id
    assert theirs.span_id == span_context.span_id
    assert theirs.trace_flags.sampled == span_context.trace_flags.sampled


def test_xray_sdk_reads_our_header(span_context: trace.SpanContext) -> None:
    header = our_header(span_context, extra="Lineage=a87bd80c:1|68fd508a:5")
    parsed = TraceHeader.from_header_str(header)
    assert parsed.root == xray_root(span_context.trace_id)
    assert parsed.parent == f"{span_context.span_id:016x}"
    assert parsed.sampled == int(span_context.trace_flags.sampled)
    assert parsed.data == {"Lineage": "a87bd80c:1|68fd508a:5"}


def test_we_read_the_opentelemetry_propagators_header(span_context: trace.SpanContext) -> None:
    carrier: dict[str, str] = {}
    THEIRS.inject(carrier, trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    ours = trace.get_current_span(OURS.extract(carrier)).get_span_context()
    assert (ours.trace_id, ours.span_id) == (span_context.trace_id, span_context.span_id)
    assert ours.trace_flags.sampled == span_context.trace_flags.sampled


@pytest.mark.parametrize("sampled", [1, 0])
def test_we_read_the_xray_sdks_header_and_carry_its_fields(sampled: int) -> None:
    sdk_header = TraceHeader(
        root="1-5759e988-bd862e3fe1be46a994272793",
        parent="53995c3f42cd8ad8",
        sampled=sampled,
        data={"Lineage": "a87bd80c:1|68fd508a:5"},
    ).to_header_str()
    ctx = OURS.extract({TRACE_HEADER_KEY: sdk_header})
    ours = trace.get_current_span(ctx).get_span_context()
    assert ours.trace_id == 0x5759E988BD862E3FE1BE46A994272793
    assert ours.span_id == 0x53995C3F42CD8AD8
    assert ours.trace_flags.sampled == bool(sampled)
    carrier: dict[str, str] = {}
    OURS.inject(carrier, ctx)
    assert carrier[TRACE_HEADER_KEY] == sdk_header  # the SDK's own header, byte for byte


def test_we_read_the_xray_sdks_sampling_request_header() -> None:
    root = "1-5759e988-bd862e3fe1be46a994272793"
    sdk_header = TraceHeader(root=root, sampled="?").to_header_str()
    assert sdk_header == f"Root={root};Sampled=?"
    ctx = OURS.extract({TRACE_HEADER_KEY: sdk_header})
    trace_id = trace.get_current_span(ctx).get_span_context().trace_id
    assert trace_id == 0x5759E988BD862E3FE1BE46A994272793
    carrier: dict[str, str] = {}
    OURS.inject(carrier, ctx)
    assert TraceHeader.from_header_str(carrier[TRACE_HEADER_KEY]).to_header_str() == sdk_header
