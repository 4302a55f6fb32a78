"""Datagram framing and segment-document validation, shared by UDP, HTTP and OTLP ingest.

The header, the limits, the id formats and the field rules are the library's
(:mod:`otel_xray.wire`): the collector accepts exactly what the exporter is written to send.
This module turns them into outcomes: an :class:`Accepted` document for the store or a
:class:`Rejected` one with the reason X-Ray would give. Functions here run once per datagram
on the ingest path, so the common valid document takes the wire's compiled yes/no check and
only a refused one pays for the explanation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from otel_xray.wire import (
    BAD_FIELD,
    HEADER,
    MAX_DOCUMENT_BYTES,
    MISSING_FIELD,
    SPACED_HEADER,
    document_ok,
    dumps,
    explain_document,
    header_ok,
    loads,
)

from ..documents import Accepted

# Reject reasons double as counter names in /status; ErrorCode is what PutTraceSegments answers.
EMPTY = "empty"
NO_BODY = "missing_header_or_body"
BAD_HEADER = "invalid_header"
BAD_JSON = "invalid_json"
OVERSIZE = "oversize"
# MISSING_FIELD and BAD_FIELD come with the field rules (otel_xray.wire).

_ERROR_CODES = {
    BAD_JSON: "JSONFormatError",
    OVERSIZE: "SegmentTooLarge",
    MISSING_FIELD: "MissingParam",
    BAD_FIELD: "InvalidSegment",
}


class Rejected(NamedTuple):
    reason: str
    message: str
    segment_id: str | None = None

    @property
    def error_code(self) -> str:
        return _ERROR_CODES.get(self.reason, "InvalidSegment")


Outcome = Accepted | Rejected


def split_datagram(data: bytes) -> bytes | Rejected:
    """Return the body of a daemon-framed datagram, or why it is rejected.

    The header is parsed as JSON (SDKs differ in spacing); the two common spellings take a
    byte-compare fast path because this runs for every datagram.
    """
    if data.startswith(HEADER):
        body = data[len(HEADER) :]
    elif not data:
        return Rejected(EMPTY, "empty datagram (0 bytes)")
    elif data.startswith(SPACED_HEADER):
        body = data[len(SPACED_HEADER) :]
    else:
        newline = data.find(b"\n")
        if newline < 0:
            return Rejected(NO_BODY, "datagram has no header line")
        header_bytes = data[:newline]
        body = data[newline + 1 :]
        try:
            header = loads(header_bytes)
        except ValueError:
            header = None
        if not header_ok(header):
            text = header_bytes[:80].decode("utf-8", "replace")
            return Rejected(BAD_HEADER, f"invalid header {text!r}")
    if not body.strip():
        return Rejected(NO_BODY, "datagram has a header but no segment document")
    return body


def parse_body(body: bytes) -> list[Outcome]:
    """Validate one document body (a segment, a subsegment, or a JSON array of subsegments)."""
    if len(body) > MAX_DOCUMENT_BYTES:
        return [Rejected(OVERSIZE, f"document is {len(body)} bytes, over the 64 KiB limit")]
    try:
        parsed = loads(body)
    except ValueError as exc:
        return [Rejected(BAD_JSON, f"document is not JSON: {exc}")]
    if isinstance(parsed, dict):
        return [check_document(parsed, body)]
    if isinstance(parsed, list) and parsed:
        outcomes: list[Outcome] = []
        for item in parsed:
            if not isinstance(item, dict):
                outcomes.append(Rejected(BAD_FIELD, "array items must be subsegment objects"))
            elif item.get("type") != "subsegment":
                outcomes.append(
                    Rejected(
                        BAD_FIELD,
                        "an array may hold only independent subsegments",
                        _str_or_none(item.get("id")),
                    )
                )
            else:
                outcomes.append(check_document(item, None))
        return outcomes
    return [Rejected(BAD_FIELD, "document must be a JSON object or an array of subsegments")]


def quick_accept(body: bytes) -> tuple[str, str, bool] | None:
    """``(trace_id, id, in_progress)`` when ``body`` is one plainly valid document, else None
    (then ``parse_body`` decides and explains). The receiver's hot path: the same rules as
    ``parse_body`` without building an outcome list and a tuple per document."""
    if len(body) > MAX_DOCUMENT_BYTES:
        return None
    try:
        doc = loads(body)
    except ValueError:
        return None
    if type(doc) is dict and document_ok(doc):
        return doc["trace_id"], doc["id"], doc.get("end_time") is None
    return None


def check_document(doc: dict[str, Any], body: bytes | None) -> Outcome:
    """Check one decoded document; ``body`` is its original bytes when it came alone."""
    if not document_ok(doc):
        problem = explain_document(doc)
        if problem is not None:
            reason, message = problem
            return Rejected(reason, message, _str_or_none(doc.get("id")))
    if body is None:
        body = dumps(doc)
    return Accepted(doc["trace_id"], doc["id"], doc.get("end_time") is None, body)


def check_dict(doc: Any) -> Outcome:
    """Validate a document handed over as a dict (OTLP receiver): same rules as the wire."""
    if not isinstance(doc, dict):
        return Rejected(BAD_FIELD, "document must be a JSON object")
    body = dumps(doc)
    if len(body) > MAX_DOCUMENT_BYTES:
        return Rejected(
            OVERSIZE,
            f"document is {len(body)} bytes, over the 64 KiB limit",
            _str_or_none(doc.get("id")),
        )
    return check_document(doc, body)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
