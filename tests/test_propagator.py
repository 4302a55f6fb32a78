"""X-Amzn-Trace-Id propagation, exercised through a real SDK TracerProvider."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util._importlib_metadata import entry_points

from otel_xray.config import LAMBDA_TRACE_HEADER_ENV
from otel_xray.propagator import (
    TRACE_HEADER_KEY,
    XRayLambdaPropagator,
    XRayPropagator,
    format_trace_header,
    is_sampling_deferred,
    is_synthetic_parent,
    parse_trace_header,
)
from otel_xray.sampling.entrypoints import local_sampler_factory
from otel_xray.translate import span_to_documents

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793
PARENT = "53995c3f42cd8ad8"
PARENT_ID = 0x53995C3F42CD8AD8
LINEAGE = "Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2"

PROPAGATOR = XRayPropagator()


class Tracing:
    """A real SDK provider whose finished spans are kept in memory."""

    def __init__(self, sampler: Any = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler or ParentBased(ALWAYS_ON))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def server_span(self, context: Context, name: str = "server") -> ReadableSpan:
        with self.tracer.start_as_current_span(name, context=context, kind=SpanKind.SERVER):
            pass
        spans = self.exporter.get_finished_spans()
        return spans[-1] if spans else None  # type: ignore[return-value]

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    t = Tracing()
    yield t
    t.close()


def remote_context(context: Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()


def inject_from(context: Context | None = None) -> str:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=context)
    return carrier[TRACE_HEADER_KEY]


# --- extract / inject basics -------------------------------------------------------------------


def test_extract_full_header_gives_remote_sampled_parent() -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1"})
    sc = remote_context(ctx)
    assert (sc.trace_id, sc.span_id, sc.is_remote) == (TRACE_ID, PARENT_ID, True)
    assert sc.trace_flags.sampled
    assert not is_synthetic_parent(sc) and not is_sampling_deferred(sc)


def test_inject_writes_root_parent_sampled_of_current_span(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("work") as span:
        header = inject_from()
        sc = span.get_span_context()
    hex_id = f"{sc.trace_id:032x}"
    assert header == f"Root=1-{hex_id[:8]}-{hex_id[8:]};Parent={sc.span_id:016x};Sampled=1"


def test_inject_unsampled_span_writes_sampled_0() -> None:
    t = Tracing(sampler=ALWAYS_OFF)
    try:
        with t.tracer.start_as_current_span("dropped"):
            header = inject_from()
    finally:
        t.close()
    assert header.endswith(";Sampled=0")
    assert parse_trace_header(header) is not None


def test_inject_without_valid_span_writes_nothing() -> None:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=Context())
    assert carrier == {}


def test_round_trip_client_to_server(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("client", kind=SpanKind.CLIENT) as client:
        header = inject_from()
    server = tracing.server_span(PROPAGATOR.extract({TRACE_HEADER_KEY: header}))
    assert server.context.trace_id == client.get_span_context().trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.get_span_context().span_id
    assert not is_synthetic_parent(server.parent)


def test_extract_then_inject_passes_the_header_on_unchanged() -> None:
    header = f"Root={ROOT};Parent={PARENT};Sampled=0;{LINEAGE}"
    assert inject_from(PROPAGATOR.extract({TRACE_HEADER_KEY: header})) == header


def test_fields_is_the_header_name() -> None:
    assert PROPAGATOR.fields == {"X-Amzn-Trace-Id"}


def test_entry_points_load_our_propagators() -> None:
    eps = {ep.name: ep for ep in entry_points(group="opentelemetry_propagator")}
    assert eps["awsxray"].load() is XRayPropagator
    assert eps["awsxray-lambda"].load() is XRayLambdaPropagator


# --- header name lookup ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "X-Amzn-Trace-Id",
        "x-amzn-trace-id",
        "X-AMZN-TRACE-ID",
        "x-AmZn-tRaCe-Id",
        "HTTP_X_AMZN_TRACE_ID",
    ],
)
def test_header_name_is_case_insensitive_with_the_default_getter(name: str) -> None:
    sc = remote_context(PROPAGATOR.extract({name: f"Root={ROOT};Parent={PARENT};Sampled=1"}))
    assert (sc.trace_id, sc.span_id) == (TRACE_ID, PARENT_ID)


class PairsGetter(Getter[list[tuple[str, str]]]):
    """A strictly case-sensitive getter over raw header pairs, as some servers hand them over."""

    def get(self, carrier: list[tuple[str, str]], key: str) -> list[str] | None:
        values = [v for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier: list[tuple[str, str]]) -> list[str]:
        return [k for k, _ in carrier]


def test_header_found_through_keys_of_a_case_sensitive_getter() -> None:
    carrier = [("Host", "example.com"), ("X-Amzn-TRACE-id", f"Root={ROOT};Sampled=1")]
    sc = remote_context(PROPAGATOR.extract(carrier, getter=PairsGetter()))
    assert sc.trace_id == TRACE_ID


class NoKeysGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        raise NotImplementedError("this carrier cannot list its keys")


def test_getter_without_keys_support_is_tolerated() -> None:
    ctx = Context()
    assert PROPAGATOR.extract({"x-AMZN-trace-ID": "x"}, ctx, NoKeysGetter()) is ctx


def test_first_non_empty_value_of_a_repeated_header_is_used() -> None:
    carrier = [("X-Amzn-Trace-Id", ""), ("X-Amzn-Trace-Id", f"Root={ROOT};Parent={PARENT}")]
    assert remote_context(PROPAGATOR.extract(carrier, getter=PairsGetter())).trace_id == TRACE_ID


# --- Root-only headers (ALB) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"Root={ROOT}",
        f"Root={ROOT};Sampled=1",
        f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}",
    ],
)
def test_root_only_header_continues_the_trace_as_a_parentless_server_span(
    tracing: Tracing, header: str
) -> None:
    server = tracing.server_span(PROPAGATOR.extract({TRACE_HEADER_KEY: header}))
    assert server.context.trace_id == TRACE_ID
    assert server.parent is not None and is_synthetic_parent(server.parent)
    with tracing.tracer.start_as_current_span(
        "child", context=trace.set_span_in_context(trace.NonRecordingSpan(server.context))
    ):
        pass
    child = tracing.exporter.get_finished_spans()[-1]
    assert child.parent is not None and not is_synthetic_parent(child.parent)


def test_parent_of_all_zeros_is_treated_as_no_parent(tracing: Tracing) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent=0000000000000000;Sampled=1"})
    server = tracing.server_span(ctx)
    assert server.context.trace_id == TRACE_ID and is_synthetic_parent(server.parent)


def test_root_only_context_passed_on_stays_root_only() -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT}"})
    assert inject_from(ctx) == f"Root={ROOT};Sampled=?"


def test_span_under_root_only_parent_injects_its_own_id(tracing: Tracing) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Sampled=1"})
    with tracing.tracer.start_as_current_span("server", context=ctx, kind=SpanKind.SERVER) as span:
        header = inject_from()
    assert header == f"Root={ROOT};Parent={span.get_span_context().span_id:016x};Sampled=1"


# --- Sampled -----------------------------------------------------------------------------------


def test_sampled_1_is_followed_even_by_a_sampler_that_drops_new_traces() -> None:
    t = Tracing(sampler=ParentBased(ALWAYS_OFF))
    try:
        span = t.server_span(
            PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1"})
        )
    finally:
        t.close()
    assert span is not None and span.context.trace_flags.sampled


def test_sampled_0_is_followed_even_by_a_sampler_that_keeps_new_traces(tracing: Tracing) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=0"})
    assert not remote_context(ctx).trace_flags.sampled
    assert tracing.server_span(ctx) is None  # nothing recorded, nothing exported
    with tracing.tracer.start_as_current_span("s", context=ctx) as span:
        assert span.get_span_context().trace_id == TRACE_ID
        assert not span.is_recording()


@pytest.mark.parametrize(
    "header",
    [f"Root={ROOT};Parent={PARENT};Sampled=?", f"Root={ROOT};Parent={PARENT}", f"Root={ROOT}"],
)
def test_undecided_sampling_is_marked_deferred_and_recorded_by_default(
    tracing: Tracing, header: str
) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: header})
    sc = remote_context(ctx)
    assert is_sampling_deferred(sc)
    assert sc.trace_flags == TraceFlags(TraceFlags.SAMPLED)
    span = tracing.server_span(ctx)
    assert span is not None and span.context.trace_id == TRACE_ID
    assert not is_sampling_deferred(span.context)  # only the remote parent is undecided


def test_sampled_question_mark_survives_a_pass_through() -> None:
    header = f"Root={ROOT};Parent={PARENT};Sampled=?"
    assert inject_from(PROPAGATOR.extract({TRACE_HEADER_KEY: header})) == header


def test_local_span_under_deferred_parent_injects_its_decision(tracing: Tracing) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=?"})
    with tracing.tracer.start_as_current_span("server", context=ctx):
        assert inject_from().endswith(";Sampled=1")


# --- extra fields ------------------------------------------------------------------------------


def test_lineage_is_carried_to_outgoing_headers_of_child_spans(tracing: Tracing) -> None:
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1;{LINEAGE}"})
    with tracing.tracer.start_as_current_span("server", context=ctx, kind=SpanKind.SERVER):
        with tracing.tracer.start_as_current_span("client", kind=SpanKind.CLIENT) as client:
            header = inject_from()
    assert header == (
        f"Root={ROOT};Parent={client.get_span_context().span_id:016x};Sampled=1;{LINEAGE}"
    )


def test_several_fields_keep_their_order_and_self_is_dropped() -> None:
    self_field = "Self=1-5759e988-00000000000000000000000a"
    header = f"{self_field};Root={ROOT};Parent={PARENT};Sampled=1;{LINEAGE};Foo=bar"
    out = inject_from(PROPAGATOR.extract({TRACE_HEADER_KEY: header}))
    assert out == f"Root={ROOT};Parent={PARENT};Sampled=1;{LINEAGE};Foo=bar"


def test_field_values_with_tracestate_reserved_characters_round_trip() -> None:
    header = f"Root={ROOT};Parent={PARENT};Sampled=1;K=a,b=c%d;Empty="
    assert inject_from(PROPAGATOR.extract({TRACE_HEADER_KEY: header})) == header


def test_oversized_fields_are_not_carried_but_the_trace_is_continued() -> None:
    big = "Big=" + "x" * 300
    header = f"Root={ROOT};Parent={PARENT};Sampled=1;{big};{LINEAGE}"
    ctx = PROPAGATOR.extract({TRACE_HEADER_KEY: header})
    assert remote_context(ctx).trace_id == TRACE_ID
    assert inject_from(ctx) == f"Root={ROOT};Parent={PARENT};Sampled=1;{LINEAGE}"


def test_existing_tracestate_of_the_same_trace_is_kept() -> None:
    traceparent = f"00-{TRACE_ID:032x}-{PARENT}-01"
    carrier = {
        "traceparent": traceparent,
        "tracestate": "vendor=abc",
        TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1;{LINEAGE}",
    }
    ctx = TraceContextTextMapPropagator().extract(carrier)
    ctx = PROPAGATOR.extract(carrier, ctx)
    sc = remote_context(ctx)
    assert sc.trace_state.get("vendor") == "abc"
    assert inject_from(ctx).endswith(LINEAGE)


# --- malformed headers -------------------------------------------------------------------------

MALFORMED = [
    "",
    "   ",
    "garbage",
    "Root",
    f"Root={ROOT[:-1]}",  # 23 hex digits
    f"Root={ROOT}0",  # 25 hex digits
    "Root=2-5759e988-bd862e3fe1be46a994272793",  # unknown version
    "Root=1-5759e98g-bd862e3fe1be46a994272793",  # non-hex epoch
    "Root=1_5759e988_bd862e3fe1be46a994272793",  # wrong delimiters
    "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",  # X-Ray no-op ids
    f"Parent={PARENT};Sampled=1",  # no Root
    f"Root={ROOT};Parent=53995c3f42cd8ad",  # 15 hex digits
    f"Root={ROOT};Parent=53995c3f42cd8adz",
    f"Root={ROOT};Parent={PARENT};Sampled=2",
    f"Root={ROOT};Parent={PARENT};Sampled=true",
    f"Root={ROOT};Root=1-5759e988-bd862e3fe1be46a994272794",  # ambiguous
    f"Root={ROOT};Parent={PARENT};Sampled=1;NoEquals",
    f"Root={ROOT};=value",
    f"Root={ROOT};Parent={PARENT};Sampled=1;Lineage=" + "x" * 5000,  # absurdly long
    "Root=１-5759e988-bd862e3fe1be46a994272793",  # full-width digit
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_header_leaves_context_unchanged(
    header: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = Context()
    with caplog.at_level(logging.DEBUG, logger="otel_xray"):
        after = PROPAGATOR.extract({TRACE_HEADER_KEY: header}, before)
    assert after is before
    assert parse_trace_header(header) is None


def test_malformed_header_keeps_a_parent_extracted_earlier() -> None:
    earlier = PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1"})
    assert PROPAGATOR.extract({TRACE_HEADER_KEY: "Root=junk"}, earlier) is earlier


@pytest.mark.parametrize(
    "carrier", [None, 42, {"X-Amzn-Trace-Id": 7}, {"X-Amzn-Trace-Id": [None, b"x"]}]
)
def test_odd_carriers_never_raise(carrier: Any) -> None:
    ctx = Context()
    assert PROPAGATOR.extract(carrier, ctx) is ctx


def test_whitespace_around_parts_is_tolerated() -> None:
    parsed = parse_trace_header(f"  Root={ROOT} ; Parent = {PARENT} ;Sampled=1; ")
    assert parsed is not None
    assert (parsed.trace_id, parsed.parent_id, parsed.sampled) == (TRACE_ID, PARENT_ID, True)


def test_upper_case_hex_is_accepted_and_written_lower_case() -> None:
    parsed = parse_trace_header(f"Root={ROOT.upper()};Parent={PARENT.upper()};Sampled=0")
    assert parsed is not None
    assert format_trace_header(parsed.trace_id, parsed.parent_id, parsed.sampled) == (
        f"Root={ROOT};Parent={PARENT};Sampled=0"
    )


# --- Lambda ------------------------------------------------------------------------------------

LAMBDA_ROOT = "1-6666e988-00000000000000000000abcd"
LAMBDA_TRACE_ID = 0x6666E98800000000000000000000ABCD
LAMBDA_PARENT = "1111222233334444"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(LAMBDA_TRACE_HEADER_ENV, raising=False)
    return monkeypatch


def test_lambda_env_header_is_used_without_carrier_header(
    lambda_env: pytest.MonkeyPatch, tracing: Tracing
) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1;{LINEAGE}"
    )
    ctx = XRayLambdaPropagator().extract({})
    span = tracing.server_span(ctx)
    assert span.context.trace_id == LAMBDA_TRACE_ID
    assert span.parent is not None and span.parent.span_id == int(LAMBDA_PARENT, 16)
    assert inject_from(ctx).endswith(LINEAGE)


def test_sampled_lambda_header_wins_over_the_carrier(lambda_env: pytest.MonkeyPatch) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1"
    )
    ctx = XRayLambdaPropagator().extract(
        {TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1"}
    )
    assert remote_context(ctx).trace_id == LAMBDA_TRACE_ID


def test_carrier_wins_over_an_unsampled_lambda_header(lambda_env: pytest.MonkeyPatch) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=0"
    )
    ctx = XRayLambdaPropagator().extract(
        {TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT};Sampled=1"}
    )
    sc = remote_context(ctx)
    assert (sc.trace_id, sc.span_id, sc.trace_flags.sampled) == (TRACE_ID, PARENT_ID, True)


def test_unsampled_lambda_header_alone_continues_lambda_trace_unsampled(
    lambda_env: pytest.MonkeyPatch,
) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=0"
    )
    sc = remote_context(XRayLambdaPropagator().extract({}))
    assert (sc.trace_id, sc.trace_flags.sampled) == (LAMBDA_TRACE_ID, False)


def test_parent_from_an_earlier_propagator_is_kept(lambda_env: pytest.MonkeyPatch) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1"
    )
    earlier = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{TRACE_ID:032x}-{PARENT}-01"}
    )
    ctx = XRayLambdaPropagator().extract({}, earlier)
    assert ctx is earlier


def test_malformed_lambda_header_falls_back_to_carrier_or_nothing(
    lambda_env: pytest.MonkeyPatch,
) -> None:
    lambda_env.setenv(LAMBDA_TRACE_HEADER_ENV, "Root=nonsense")
    prop = XRayLambdaPropagator()
    assert (
        remote_context(prop.extract({TRACE_HEADER_KEY: f"Root={ROOT};Parent={PARENT}"})).trace_id
        == TRACE_ID
    )
    ctx = Context()
    assert prop.extract({}, ctx) is ctx


def test_lambda_header_is_reread_for_every_invocation(lambda_env: pytest.MonkeyPatch) -> None:
    prop = XRayLambdaPropagator()
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1"
    )
    assert remote_context(prop.extract({})).trace_id == LAMBDA_TRACE_ID
    lambda_env.setenv(LAMBDA_TRACE_HEADER_ENV, f"Root={ROOT};Parent={PARENT};Sampled=1")
    assert remote_context(prop.extract({})).trace_id == TRACE_ID


def test_lambda_propagator_injects_like_the_plain_one(lambda_env: pytest.MonkeyPatch) -> None:
    lambda_env.setenv(
        LAMBDA_TRACE_HEADER_ENV, f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1"
    )
    ctx = XRayLambdaPropagator().extract({})
    carrier: dict[str, str] = {}
    XRayLambdaPropagator().inject(carrier, ctx)
    assert carrier == {TRACE_HEADER_KEY: f"Root={LAMBDA_ROOT};Parent={LAMBDA_PARENT};Sampled=1"}
    assert XRayLambdaPropagator().fields == {TRACE_HEADER_KEY}


def test_root_only_server_span_is_translated_to_a_segment_without_parent_id(
    tracing: Tracing,
) -> None:
    server = tracing.server_span(PROPAGATOR.extract({TRACE_HEADER_KEY: f"Root={ROOT}"}))
    (segment,) = span_to_documents(server)
    assert segment["trace_id"] == ROOT
    assert "parent_id" not in segment and "type" not in segment


NEVER_RULES = '{"version": 2, "rules": [], "default": {"fixed_target": 0, "rate": 0.0}}'


@pytest.mark.parametrize(
    "header,recorded",
    [
        (f"Root={ROOT};Parent={PARENT};Sampled=1", True),  # the caller decided: followed
        (f"Root={ROOT};Parent={PARENT};Sampled=?", False),  # deferred: the rules say never
        (f"Root={ROOT}", False),  # ALB: deferred as well
    ],
)
def test_awsxray_local_sampler_decides_deferred_requests_by_its_rules(
    header: str, recorded: bool
) -> None:
    t = Tracing(sampler=local_sampler_factory(NEVER_RULES))
    try:
        with t.tracer.start_as_current_span(
            "server", context=PROPAGATOR.extract({TRACE_HEADER_KEY: header}), kind=SpanKind.SERVER
        ) as span:
            assert span.get_span_context().trace_id == TRACE_ID
            assert span.is_recording() is recorded
    finally:
        t.close()
