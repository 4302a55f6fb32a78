"""Datagram framing and segment-document validation, shared by UDP, HTTP and OTLP ingest.

The rules mirror what the X-Ray service checks in PutTraceSegments (daemon-and-api.md §4.1):
only the fields the store relies on (ids, times, name, type) are checked strictly; every other
block is kept exactly as sent, because SDKs in the wild put odd things there (a numeric
``cause``, a SQL url without a scheme, an unknown ``namespace``) and users still expect to see
those traces. Functions here are pure and allocation-light: they run once per datagram on the
ingest thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

try:  # orjson is 3-5x faster on the ingest path; stdlib json is the fallback.
    import orjson

    loads: Callable[[bytes | str], Any] = orjson.loads
    JSONDecodeError: type[Exception] = orjson.JSONDecodeError

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson is a declared dependency
    loads = json.loads
    JSONDecodeError = ValueError

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


MAX_DOCUMENT_BYTES = 64 * 1024
MAX_NAME_CHARS = 200

_HEX = "0123456789abcdefABCDEF"
_TRACE_ID = re.compile(r"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}").fullmatch


def is_segment_id(value: Any) -> bool:
    """16 hex digits. ``str.strip`` with a character set beats a regex on this hot path."""
    return type(value) is str and len(value) == 16 and not value.strip(_HEX)


def is_trace_id(value: Any) -> bool:
    """``1-<8 hex>-<24 hex>``."""
    return type(value) is str and _TRACE_ID(value) is not None


COMPACT_HEADER = b'{"format":"json","version":1}\n'
_SPACED_HEADER = b'{"format": "json", "version": 1}\n'

# Reject reasons double as counter names in /status; ErrorCode is what PutTraceSegments answers.
EMPTY = "empty"
NO_BODY = "missing_header_or_body"
BAD_HEADER = "invalid_header"
BAD_JSON = "invalid_json"
OVERSIZE = "oversize"
MISSING_FIELD = "missing_field"
BAD_FIELD = "invalid_field"

_ERROR_CODES = {
    BAD_JSON: "JSONFormatError",
    OVERSIZE: "SegmentTooLarge",
    MISSING_FIELD: "MissingParam",
    BAD_FIELD: "InvalidSegment",
}


class Accepted(NamedTuple):
    """One valid document, ready for the store: its key fields plus the raw JSON bytes."""

    trace_id: str
    segment_id: str
    in_progress: bool
    body: bytes


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
    if data.startswith(COMPACT_HEADER):
        body = data[len(COMPACT_HEADER) :]
    elif not data:
        return Rejected(EMPTY, "empty datagram (0 bytes)")
    elif data.startswith(_SPACED_HEADER):
        body = data[len(_SPACED_HEADER) :]
    else:
        newline = data.find(b"\n")
        if newline < 0:
            return Rejected(NO_BODY, "datagram has no header line")
        header_bytes = data[:newline]
        body = data[newline + 1 :]
        try:
            header = loads(header_bytes)
        except (JSONDecodeError, ValueError):
            header = None
        if not _header_ok(header):
            text = header_bytes[:80].decode("utf-8", "replace")
            return Rejected(BAD_HEADER, f"invalid header {text!r}")
    if not body.strip():
        return Rejected(NO_BODY, "datagram has a header but no segment document")
    return body


def _header_ok(header: Any) -> bool:
    if not isinstance(header, dict):
        return False
    fmt = header.get("format")
    version = header.get("version")
    return isinstance(fmt, str) and fmt.lower() == "json" and type(version) is int and version == 1


def parse_body(body: bytes) -> list[Outcome]:
    """Validate one document body (a segment, a subsegment, or a JSON array of subsegments)."""
    if len(body) > MAX_DOCUMENT_BYTES:
        return [Rejected(OVERSIZE, f"document is {len(body)} bytes, over the 64 KiB limit")]
    try:
        parsed = loads(body)
    except (JSONDecodeError, ValueError) as exc:
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
    except (JSONDecodeError, ValueError):
        return None
    if type(doc) is dict and _plainly_valid(doc):
        return doc["trace_id"], doc["id"], doc.get("end_time") is None
    return None


def check_document(doc: dict[str, Any], body: bytes | None) -> Outcome:
    """Check one decoded document; ``body`` is its original bytes when it came alone."""
    if not _plainly_valid(doc):
        problem = _problem(doc)
        if problem is not None:
            reason, message = problem
            return Rejected(reason, message, _str_or_none(doc.get("id")))
    if body is None:
        body = dumps(doc)
    return Accepted(doc["trace_id"], doc["id"], doc.get("end_time") is None, body)


def _plainly_valid(doc: dict[str, Any]) -> bool:
    """One-expression check of the common valid shape (the hot path); ``_problem`` explains."""
    get = doc.get
    segment_id = get("id")
    trace_id = get("trace_id")
    name = get("name")
    start = get("start_time")
    end = get("end_time")
    parent_id = get("parent_id")
    subsegments = get("subsegments")
    return (
        type(segment_id) is str
        and len(segment_id) == 16
        and not segment_id.strip(_HEX)
        and type(trace_id) is str
        and _TRACE_ID(trace_id) is not None
        and type(name) is str
        and 0 < len(name) <= MAX_NAME_CHARS
        and (type(start) is float or type(start) is int)
        and start == start
        and (
            (type(end) is float or type(end) is int)
            and end == end
            or (end is None and get("in_progress") is True)
        )
        and (
            parent_id is None
            or (type(parent_id) is str and len(parent_id) == 16 and not parent_id.strip(_HEX))
        )
        and (parent_id is not None or get("type") != "subsegment")
        and (subsegments is None or _subsegments_plainly_valid(subsegments))
    )


def _subsegments_plainly_valid(subsegments: Any) -> bool:
    """The fast yes/no form of ``_subsegments_problem`` (same rules)."""
    if type(subsegments) is not list:
        return False
    for sub in subsegments:
        if type(sub) is not dict:
            return False
        get = sub.get
        segment_id = get("id")
        name = get("name")
        start = get("start_time")
        end = get("end_time")
        if not (
            type(segment_id) is str
            and len(segment_id) == 16
            and not segment_id.strip(_HEX)
            and type(name) is str
            and 0 < len(name) <= MAX_NAME_CHARS
            and (type(start) is float or type(start) is int)
            and start == start
            and (end is None or (type(end) is float or type(end) is int) and end == end)
        ):
            return False
        children = get("subsegments")
        if children is not None and not _subsegments_plainly_valid(children):
            return False
    return True


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


def _problem(doc: dict[str, Any]) -> tuple[str, str] | None:
    segment_id = doc.get("id")
    if segment_id is None:
        return MISSING_FIELD, 'missing "id"'
    if not is_segment_id(segment_id):
        return BAD_FIELD, f'"id" must be 16 hex digits, got {segment_id!r:.40}'
    trace_id = doc.get("trace_id")
    if trace_id is None:
        return MISSING_FIELD, 'missing "trace_id"'
    if not is_trace_id(trace_id):
        return BAD_FIELD, f'"trace_id" must look like 1-<8 hex>-<24 hex>, got {trace_id!r:.60}'
    name_problem = _name_problem(doc.get("name"))
    if name_problem is not None:
        return name_problem
    time_problem = _time_problem(doc)
    if time_problem is not None:
        return time_problem
    parent_id = doc.get("parent_id")
    if doc.get("type") == "subsegment":
        if parent_id is None:
            return MISSING_FIELD, 'an independent subsegment needs "parent_id"'
    if parent_id is not None and not is_segment_id(parent_id):
        return BAD_FIELD, f'"parent_id" must be 16 hex digits, got {parent_id!r:.40}'
    subsegments = doc.get("subsegments")
    if subsegments is not None:
        return _subsegments_problem(subsegments, "subsegments")
    return None


def _name_problem(name: Any) -> tuple[str, str] | None:
    if name is None:
        return MISSING_FIELD, 'missing "name"'
    if not isinstance(name, str) or not name:
        return BAD_FIELD, '"name" must be a non-empty string'
    if len(name) > MAX_NAME_CHARS:
        return BAD_FIELD, f'"name" is longer than {MAX_NAME_CHARS} characters'
    return None


def _is_number(value: Any) -> bool:
    return (type(value) is float or type(value) is int) and value == value


def _time_problem(doc: dict[str, Any]) -> tuple[str, str] | None:
    start = doc.get("start_time")
    if start is None:
        return MISSING_FIELD, 'missing "start_time"'
    if not _is_number(start):
        return BAD_FIELD, '"start_time" must be a number (epoch seconds)'
    end = doc.get("end_time")
    if end is None:
        if doc.get("in_progress") is not True:
            return MISSING_FIELD, 'needs "end_time" or "in_progress": true'
    elif not _is_number(end):
        return BAD_FIELD, '"end_time" must be a number (epoch seconds)'
    return None


def _subsegments_problem(subsegments: Any, path: str) -> tuple[str, str] | None:
    if not isinstance(subsegments, list):
        return BAD_FIELD, f'"{path}" must be a list'
    for index, sub in enumerate(subsegments):
        if (
            type(sub) is dict
            and is_segment_id(sub.get("id"))
            and type(sub.get("name")) is str
            and 0 < len(sub["name"]) <= MAX_NAME_CHARS
            and _is_number(sub.get("start_time"))
            and (sub.get("end_time") is None or _is_number(sub["end_time"]))
        ):
            children = sub.get("subsegments")
            if children is not None:
                problem = _subsegments_problem(children, f"{path}[{index}].subsegments")
                if problem is not None:
                    return problem
            continue
        return _explain_subsegment(sub, f"{path}[{index}]")
    return None


def _explain_subsegment(sub: Any, where: str) -> tuple[str, str]:
    """The message for an embedded subsegment that failed the fast check above."""
    if not isinstance(sub, dict):
        return BAD_FIELD, f"{where} must be an object"
    if not is_segment_id(sub.get("id")):
        return BAD_FIELD, f"{where}.id must be 16 hex digits"
    problem = _name_problem(sub.get("name"))
    if problem is not None:
        return problem[0], f"{where}: {problem[1]}"
    start = sub.get("start_time")
    if not _is_number(start):
        reason = MISSING_FIELD if start is None else BAD_FIELD
        return reason, f"{where}.start_time must be a number"
    return BAD_FIELD, f"{where}.end_time must be a number"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
