"""ADOT's OTLP-over-UDP datagrams: ``T1S``/``T1U`` + base64 of an ``ExportTraceServiceRequest``.

AWS's Lambda layers (aws-opentelemetry-distro's ``OTLPUdpSpanExporter`` for Python, and the JS and
Go equivalents) send spans to ``AWS_XRAY_DAEMON_ADDRESS`` as the daemon's header line followed by
``T1S`` (sampled spans) or ``T1U`` (unsampled spans, which the Lambda agent only turns into
metrics) and the base64 text of an OTLP ``ExportTraceServiceRequest`` protobuf; ``M1`` carries
OTLP metrics the same way.

Sampled spans go through the OTLP receiver's own translation (:func:`otlp.translate_request`)
and then the same validation as every document, so a span is stored the same whichever road it
took. Unsampled spans are decoded (so a malformed one is counted as such) and counted, not
stored: a trace store holds sampled traces, and counting them into the service statistics would
misstate rates that every other road reports from sampled traces only. Metrics are refused with
their own reason. Every datagram therefore ends as stored documents, a counted rejection, or a
counted unsampled batch.

The OTLP modules (protobuf, the SDK, the translator) are imported on the first such datagram, so
a receiver that never sees one never pays for them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, NamedTuple

from .validate import Outcome, Rejected, check_dict, parse_body

SAMPLED_PREFIX = b"T1S"
UNSAMPLED_PREFIX = b"T1U"
METRICS_PREFIX = b"M1"

# Rejection reasons (``/status`` ``rejected`` counters).
BAD_BASE64 = "otlp_invalid_base64"
BAD_PROTOBUF = "otlp_invalid_protobuf"
BAD_SPAN = "otlp_invalid_span"
METRICS = "otlp_metrics_unsupported"

# Counters of what was received this way (``/status`` ``udp.otlp``); not rejections.
SAMPLED_DATAGRAMS = "sampled_datagrams"
SAMPLED_SPANS = "sampled_spans"
UNSAMPLED_DATAGRAMS = "unsampled_datagrams"
UNSAMPLED_SPANS = "unsampled_spans"
COUNTERS = (SAMPLED_DATAGRAMS, SAMPLED_SPANS, UNSAMPLED_DATAGRAMS, UNSAMPLED_SPANS)


class Noted(NamedTuple):
    """A fact about a datagram that is neither a stored document nor a rejection."""

    counter: str
    number: int


DatagramOutcome = Outcome | Noted


def parse_datagram_body(body: bytes) -> Sequence[DatagramOutcome]:
    """What one datagram body (after the header line) yields: segment documents or OTLP."""
    if body[:3] in (SAMPLED_PREFIX, UNSAMPLED_PREFIX) or body[:2] == METRICS_PREFIX:
        return parse_otlp(body)
    return parse_body(body)


def parse_otlp(body: bytes) -> list[DatagramOutcome]:
    """Decode a ``T1S``/``T1U``/``M1`` body; never raises."""
    if body[:2] == METRICS_PREFIX:
        return [Rejected(METRICS, "OTLP metrics (M1) are not stored by this collector")]
    sampled = body[:3] == SAMPLED_PREFIX
    try:
        raw = base64.b64decode(body[3:].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        return [Rejected(BAD_BASE64, f"{body[:3].decode()} payload is not base64: {exc}")]
    request = _decode_request(raw)
    if isinstance(request, Rejected):
        return [request]
    if not sampled:
        spans = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        return [Noted(UNSAMPLED_DATAGRAMS, 1), Noted(UNSAMPLED_SPANS, spans)]
    from . import otlp  # noqa: PLC0415 - heavy, and only for these datagrams

    try:
        translated = otlp.translate_request(request, otlp.OTLP_TRANSLATE_OPTIONS)
    except Exception as exc:  # a request no SDK would make; this runs in the receiver loop
        return [Noted(SAMPLED_DATAGRAMS, 1), Rejected(BAD_SPAN, f"cannot translate: {exc!r}")]
    outcomes: list[DatagramOutcome] = [
        Noted(SAMPLED_DATAGRAMS, 1),
        Noted(SAMPLED_SPANS, translated.received),
    ]
    outcomes.extend(Rejected(BAD_SPAN, problem) for problem in translated.problems)
    outcomes.extend(check_dict(document) for document in translated.documents)
    return outcomes


def _decode_request(raw: bytes) -> Any:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: PLC0415

    try:
        return trace_service_pb2.ExportTraceServiceRequest.FromString(raw)
    except Exception as exc:  # protobuf's DecodeError, its recursion limit, whatever else
        return Rejected(BAD_PROTOBUF, f"not an OTLP ExportTraceServiceRequest: {exc}")


__all__ = [
    "COUNTERS",
    "DatagramOutcome",
    "Noted",
    "parse_datagram_body",
    "parse_otlp",
]
