"""``fault`` / ``error`` / ``throttle`` and the ``cause`` block.

Flags follow the HTTP status first (4xx error, 429 also throttle, 5xx fault) and the span status
otherwise (ERROR = fault), as the Collector does; ``segment.py`` works them out inline, as it
runs for every span. The cause comes from ``exception`` events; without one, an ERROR status
message becomes the cause, so a failure recorded only as a status (what the Flask and requests
instrumentations do) still explains itself in the console.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from otel_xray.translate.stacktrace import parser_for

EXCEPTION_EVENT = "exception"
AWS_HTTP_FAILURE_EVENT = "HTTP request failure"

# "ConnectionError: HTTPConnectionPool(...)": how OTel Python writes an exception into a status.
_TYPED_MESSAGE = re.compile(r"^([A-Za-z_][\w.]*): (.*)$", re.DOTALL)


def new_id() -> str:
    return os.urandom(8).hex()


def _limit_frames(exception: dict[str, Any], frames: list[dict[str, object]], limit: int) -> None:
    if len(frames) > limit:
        exception["truncated"] = len(frames) - limit
        frames = frames[:limit]
    exception["stack"] = frames


def exceptions_from_event(
    attributes: Any, remote: bool, language: str, max_frames: int
) -> list[dict[str, Any]]:
    """One recorded exception, plus the earlier exceptions its traceback says caused it."""
    exc_type = attributes.get("exception.type")
    message = attributes.get("exception.message")
    first: dict[str, Any] = {
        "id": new_id(),
        "type": "" if exc_type is None else str(exc_type),
        "message": "" if message is None else str(message),
        "remote": remote,
    }
    result = [first]
    stacktrace = attributes.get("exception.stacktrace")
    if not isinstance(stacktrace, str) or not stacktrace:
        return result
    parser = parser_for(language, stacktrace)
    if parser is None:
        return result
    chain = parser(stacktrace)
    if not chain:
        return result
    _limit_frames(first, chain[0].frames, max_frames)
    previous = first
    for parsed in chain[1:]:
        earlier: dict[str, Any] = {
            "id": new_id(),
            "type": parsed.type,
            "message": parsed.message,
            "remote": remote,
        }
        if parsed.frames:
            _limit_frames(earlier, parsed.frames, max_frames)
        previous["cause"] = earlier["id"]
        result.append(earlier)
        previous = earlier
    return result


def _aws_http_failure(attributes: Any, timestamp: int) -> dict[str, Any] | None:
    code = attributes.get("http.response.status_code")
    message = attributes.get("aws.http.error_message")
    if code is None or message is None:
        return None
    micros = timestamp // 1000
    seconds = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
    return {
        "id": new_id(),
        "type": "aws.http.error.event",
        "remote": True,
        "message": f"{code}@{seconds}@{message}",
    }


def _status_exception(message: str, error_type: Any) -> dict[str, Any]:
    exc_type = ""
    if isinstance(error_type, str) and error_type and not error_type.isdigit():
        exc_type = error_type
        prefix = error_type + ": "
        if message.startswith(prefix):
            message = message[len(prefix) :]
    else:
        match = _TYPED_MESSAGE.match(message)
        if match:
            exc_type, message = match.group(1), match.group(2)
    return {"id": new_id(), "type": exc_type, "message": message}


def build_cause(
    attrs: Mapping[str, Any],
    events: Sequence[Any],
    status_code: StatusCode,
    status_description: str | None,
    kind: SpanKind,
    aws_sdk: bool,
    language: str,
    max_frames: int,
) -> tuple[dict[str, Any] | None, bool]:
    """The ``cause`` block (or None), and whether it used up ``http.status_text``: that key
    explains the failure only when neither an exception nor the status message does."""
    exceptions: list[dict[str, Any]] = []
    if events:
        remote = kind is SpanKind.CLIENT or kind is SpanKind.PRODUCER
        for event in events:
            name = event.name
            if name == EXCEPTION_EVENT:
                exceptions.extend(
                    exceptions_from_event(event.attributes or {}, remote, language, max_frames)
                )
            elif aws_sdk and name == AWS_HTTP_FAILURE_EVENT:
                failure = _aws_http_failure(event.attributes or {}, event.timestamp or 0)
                if failure is not None:
                    exceptions.append(failure)
    if exceptions:
        return {"exceptions": exceptions}, False
    if status_code is not StatusCode.ERROR:
        return None, False
    message = status_description or ""
    if message:
        return {"exceptions": [_status_exception(message, attrs.get("error.type"))]}, False
    status_text = attrs.get("http.status_text")
    message = "" if status_text is None else str(status_text)
    if not message:
        return None, "http.status_text" in attrs
    return {"exceptions": [_status_exception(message, attrs.get("error.type"))]}, True
