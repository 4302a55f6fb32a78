"""OTLP/gRPC trace receiver: OTLP ``ResourceSpans`` -> SDK ``ReadableSpan`` -> segment documents.

Spans that arrive over OTLP are rebuilt as the same ``ReadableSpan`` objects the SDK hands its
exporters, then go through the library's own translator. So one span gives one document whether it
reached the collector as OTLP or as a UDP segment from the in-process exporter; there is a single
translation to keep right, not two.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from typing import Any, NamedTuple

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from otel_xray.logs import OutageLog
from otel_xray.translate import TranslateOptions, span_to_documents

from ..store.protocol import StoreUnreachable

logger = logging.getLogger("otel_xray_collector.ingest.otlp")

#: Takes the documents of one request. May return the documents it refused (objects with a
#: ``message``, e.g. the pipeline's validation rejections) so the sender hears about them.
Submit = Callable[[list[dict[str, Any]]], Sequence[Any] | None]

# OTLP SpanKind numbers (SPAN_KIND_UNSPECIFIED = 0 is read as INTERNAL, as the spec says).
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS_CODES = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}

_TRACE_FLAGS_MASK = trace_pb2.SPAN_FLAGS_TRACE_FLAGS_MASK
_HAS_IS_REMOTE = trace_pb2.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = trace_pb2.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK

#: Spans received over OTLP were produced by another process's SDK: say which one in ``aws.xray``
#: (from the resource's ``telemetry.sdk.*``) rather than naming this library.
OTLP_TRANSLATE_OPTIONS = TranslateOptions(sdk_from_resource=True)

# Four times gRPC's 4 MiB default: big batches from busy SDKs fit, a runaway client does not.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class InvalidSpan(ValueError):
    """An OTLP span that cannot become a ReadableSpan (bad id lengths and the like)."""


# ---------------------------------------------------------------------------------------------
# OTLP protobuf -> SDK objects (pure functions)
# ---------------------------------------------------------------------------------------------


def any_value(value: common_pb2.AnyValue) -> Any:
    """One OTLP ``AnyValue`` as the Python value the SDK would have held.

    Arrays become tuples (what the SDK's BoundedAttributes stores), key/value lists become dicts,
    bytes become text when they are UTF-8 (the SDK decodes bytes attributes the same way) and
    base64 otherwise, so the result is always JSON-encodable.
    """
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return tuple(any_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        raw = value.bytes_value
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    return None


def attributes(key_values: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    """Attributes as a plain dict; empty values are left out, as the SDK never records ``None``."""
    result: dict[str, Any] = {}
    for kv in key_values:
        converted = any_value(kv.value)
        if converted is not None:
            result[kv.key] = converted
    return result


def _flatten(prefix: str, value: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, Mapping):
            _flatten(name, item, into)
        else:
            into[name] = item


def resource(message: Any) -> Resource:
    """A ``Resource``; nested key/value lists are flattened to dotted keys.

    ``Resource`` only holds flat attributes (it would drop a dict with a warning per request), and
    dotted keys are how OpenTelemetry spells nesting everywhere else.
    """
    flat: dict[str, Any] = {}
    for key, value in attributes(message.attributes).items():
        if isinstance(value, Mapping):
            _flatten(key, value, flat)
        else:
            flat[key] = value
    return Resource(flat)


def scope(message: common_pb2.InstrumentationScope, schema_url: str) -> InstrumentationScope:
    return InstrumentationScope(
        message.name,
        message.version or None,
        schema_url or None,
        attributes(message.attributes) or None,
    )


def _id(raw: bytes, size: int, what: str) -> int:
    if len(raw) != size:
        raise InvalidSpan(f"{what} must be {size} bytes, got {len(raw)}")
    value = int.from_bytes(raw, "big")
    if value == 0:
        raise InvalidSpan(f"{what} is all zeroes")
    return value


def _trace_flags(flags: int) -> TraceFlags:
    # Exporters that do not fill the W3C bits (the Python one among them) only ever send spans
    # that were sampled, so "sampled" is the honest default.
    bits = flags & _TRACE_FLAGS_MASK
    return TraceFlags(bits if bits else TraceFlags.SAMPLED)


def _is_remote(flags: int) -> bool:
    return bool(flags & _HAS_IS_REMOTE) and bool(flags & _IS_REMOTE)


def _trace_state(header: str) -> TraceState:
    return TraceState.from_header([header]) if header else TraceState()


def readable_span(
    span: trace_pb2.Span, span_resource: Resource, span_scope: InstrumentationScope | None
) -> ReadableSpan:
    """One OTLP span as the ``ReadableSpan`` an in-process exporter would have received."""
    trace_id = _id(span.trace_id, 16, "trace_id")
    flags = _trace_flags(span.flags)
    context = SpanContext(
        trace_id,
        _id(span.span_id, 8, "span_id"),
        is_remote=False,
        trace_flags=flags,
        trace_state=_trace_state(span.trace_state),
    )
    parent = None
    if span.parent_span_id:
        parent = SpanContext(
            trace_id,
            _id(span.parent_span_id, 8, "parent_span_id"),
            is_remote=_is_remote(span.flags),
            trace_flags=flags,
        )
    events = tuple(
        Event(event.name, attributes(event.attributes), event.time_unix_nano)
        for event in span.events
    )
    links = tuple(
        Link(
            SpanContext(
                _id(link.trace_id, 16, "link trace_id"),
                _id(link.span_id, 8, "link span_id"),
                is_remote=_is_remote(link.flags),
                trace_flags=_trace_flags(link.flags),
                trace_state=_trace_state(link.trace_state),
            ),
            attributes(link.attributes),
        )
        for link in span.links
    )
    status_code = _STATUS_CODES.get(span.status.code, StatusCode.UNSET)
    # The SDK keeps a description only on ERROR; do the same so both paths agree.
    description = span.status.message if status_code is StatusCode.ERROR else None
    return ReadableSpan(
        name=span.name,
        context=context,
        parent=parent,
        resource=span_resource,
        attributes=attributes(span.attributes),
        events=events,
        links=links,
        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
        status=Status(status_code, description or None),
        start_time=span.start_time_unix_nano,
        end_time=span.end_time_unix_nano or None,
        instrumentation_scope=span_scope,
    )


def readable_spans(
    resource_spans: Sequence[trace_pb2.ResourceSpans],
) -> tuple[list[ReadableSpan], list[str]]:
    """All spans of a request; spans that cannot be rebuilt are reported, not raised."""
    spans: list[ReadableSpan] = []
    problems: list[str] = []
    for group in resource_spans:
        group_resource = resource(group.resource)
        for scope_spans in group.scope_spans:
            span_scope = scope(scope_spans.scope, scope_spans.schema_url)
            for span in scope_spans.spans:
                try:
                    spans.append(readable_span(span, group_resource, span_scope))
                except InvalidSpan as exc:
                    problems.append(f"span {span.name!r}: {exc}")
    return spans, problems


class Translated(NamedTuple):
    """One OTLP request as segment documents."""

    documents: list[dict[str, Any]]
    #: One message per span not translated (unreadable ids, translator errors).
    problems: list[str]
    #: Spans the request held.
    received: int
    #: Spans the translator raised on (the rest of ``problems`` could not be read).
    translate_errors: int


def translate_request(
    request: trace_service_pb2.ExportTraceServiceRequest, options: TranslateOptions
) -> Translated:
    """The one OTLP translation every OTLP road (gRPC, ADOT's ``T1S`` datagrams) goes through."""
    spans, problems = readable_spans(request.resource_spans)
    received = len(spans) + len(problems)
    documents: list[dict[str, Any]] = []
    translate_errors = 0
    for span in spans:
        try:
            documents.extend(span_to_documents(span, options))
        except Exception as exc:  # one bad span must not cost the rest of the batch
            translate_errors += 1
            problems.append(f"span {span.name!r}: cannot translate: {exc!r}")
    return Translated(documents, problems, received, translate_errors)


# ---------------------------------------------------------------------------------------------
# One export request, whatever the transport
# ---------------------------------------------------------------------------------------------


class SubmitRefused(Exception):
    """The pipeline took none of the request's documents (full or closing): retry later."""


class TraceExport:
    """Translate an ``ExportTraceServiceRequest`` and submit its documents; count what happened.

    Shared by the gRPC and HTTP receivers, so both answer the same partial successes: spans that
    cannot be read or translated, and documents the pipeline refuses, are reported (the sender
    must not retry them); when ``submit`` fails as a whole, :class:`SubmitRefused` is raised and
    each transport answers its "retry later" (gRPC ``UNAVAILABLE``, HTTP 503). While the store
    is away every request is refused: that outage is logged as one (``transport`` names it).
    """

    def __init__(
        self, submit: Submit, options: TranslateOptions | None = None, transport: str = "OTLP"
    ) -> None:
        self._submit = submit
        self._options = options if options is not None else OTLP_TRANSLATE_OPTIONS
        self._transport = transport
        self._outage = OutageLog(logger, f"{transport} requests")
        self._lock = threading.Lock()
        self._counters = {
            "requests": 0,
            "spans_received": 0,
            "documents_submitted": 0,
            "translate_errors": 0,
            "submit_errors": 0,
        }

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counters[name] = self._counters.get(name, 0) + value

    def export(
        self, request: trace_service_pb2.ExportTraceServiceRequest
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        documents, problems, received, translate_errors = translate_request(request, self._options)
        self.count(requests=1, spans_received=received, translate_errors=translate_errors)
        if problems:
            logger.warning(
                "OTLP request: %d of %d spans rejected; first: %s",
                len(problems),
                received,
                problems[0],
            )
        refused: Sequence[Any] = ()
        if documents:
            try:
                refused = self._submit(documents) or ()
            except Exception as exc:
                self.count(submit_errors=1)
                self._refused(len(documents), exc)
                raise SubmitRefused(f"collector cannot accept spans: {exc}") from exc
            self._outage.recovered()
            self.count(documents_submitted=len(documents) - len(refused))
        problems.extend(f"document refused: {getattr(item, 'message', item)}" for item in refused)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if problems:
            # Counted per span for bad spans and per document for refused documents: a span
            # whose documents were refused is not stored, whichever way it is counted.
            response.partial_success.rejected_spans = len(problems)
            response.partial_success.error_message = "; ".join(problems[:5])
        return response

    def _refused(self, count: int, exc: Exception) -> None:
        """A store outage is one line at its start, a count once a minute and one line at its
        end; any other refusal (a full queue, shutdown) is said each time."""
        message = "%s request: pipeline refused %d documents: %s"
        if isinstance(exc, StoreUnreachable):
            self._outage.failed(message, self._transport, count, exc)
        else:
            logger.warning(message, self._transport, count, exc)


# ---------------------------------------------------------------------------------------------
# The gRPC service
# ---------------------------------------------------------------------------------------------


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 (the generated service's method name)
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        return self._receiver._export(request, context)


class OtlpReceiver:
    """OTLP/gRPC ``TraceService/Export`` on ``host:port``; translated documents go to ``submit``.

    Answers follow the OTLP spec: spans that cannot be read or translated are reported in
    ``partial_success`` (the sender must not retry them); when ``submit`` fails (the pipeline is
    full or closing) the whole request gets ``UNAVAILABLE``, which exporters retry with backoff.
    gzip-compressed requests are decompressed by gRPC itself.
    """

    def __init__(
        self,
        host: str,
        port: int,
        submit: Submit,
        options: TranslateOptions | None = None,
        max_workers: int = 4,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._trace_export = TraceExport(submit, options, "OTLP/gRPC")
        self._max_workers = max_workers
        self._max_message_bytes = max_message_bytes
        self._server: grpc.Server | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with port 0); only after start()."""
        if self._bound_port is None:
            raise RuntimeError("OtlpReceiver.port is known only after start()")
        return self._bound_port

    @property
    def address(self) -> str:
        return f"{_host_for_url(self._host)}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("OtlpReceiver already started")
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="otlp-receiver"
            ),
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                # One listener per address: a second collector on the same port must fail loudly.
                ("grpc.so_reuseport", 0),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), server
        )
        target = f"{_host_for_url(self._host)}:{self._requested_port}"
        try:
            bound = server.add_insecure_port(target)
        except RuntimeError as exc:  # grpcio >= 1.53 raises; older versions return 0
            server.stop(None)
            raise OSError(f"OTLP receiver cannot listen on {target}: {exc}") from exc
        if not bound:
            server.stop(None)
            raise OSError(f"OTLP receiver cannot listen on {target}")
        server.start()
        self._server = server
        self._bound_port = bound
        logger.info("OTLP/gRPC receiver listening on %s", self.address)

    def stop(self, grace: float = 1.0) -> None:
        """Stop taking requests; requests in flight get ``grace`` seconds to finish."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def counters(self) -> dict[str, int]:
        return self._trace_export.counters()

    def _export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        try:
            return self._trace_export.export(request)
        except SubmitRefused as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # abort raises; this line is for type checkers


def _host_for_url(host: str) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host
