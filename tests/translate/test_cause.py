"""fault/error/throttle and cause (translation.md §9-§10, test-cases.md §3)."""

from __future__ import annotations

import os
import traceback
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.translate.spans import END_NS, exception_event, make_span, one, translate

JAVA = Resource({"service.name": "svc", "telemetry.sdk.language": "java"})
NO_LANGUAGE = Resource({"service.name": "svc"})

JAVA_TRACE = (
    "java.lang.IllegalStateException: bad state\n"
    "\tat com.example.Orders.place(Orders.java:626)\n"
    "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
    "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:62)\n"  # noqa: E501
    "Caused by: java.lang.IllegalArgumentException: bad argument\n"
    "\tat com.example.Validator.check(Validator.java:12)\n"
    "\tat com.example.Task.run(Task.java)\n"
    "\t... 3 more\n"
)


def flags(doc: dict[str, Any]) -> tuple[bool, bool, bool]:
    return doc["error"], doc["fault"], doc["throttle"]


@pytest.mark.parametrize("key", ["http.status_code", "http.response.status_code"])
@pytest.mark.parametrize(
    ("status", "code", "expected", "has_cause"),
    [
        (StatusCode.ERROR, 500, (False, True, False), True),
        (StatusCode.UNSET, 500, (False, True, False), False),
        (StatusCode.UNSET, 400, (True, False, False), False),
        (StatusCode.ERROR, 499, (True, False, False), True),
        (StatusCode.ERROR, 429, (True, False, True), True),
        (StatusCode.OK, 200, (False, False, False), False),
    ],
)
def test_flags_from_http_status(
    key: str, status: StatusCode, code: int, expected: tuple[bool, bool, bool], has_cause: bool
) -> None:
    description = "this is a test" if status is StatusCode.ERROR else None
    span = make_span(
        kind=SpanKind.SERVER, attributes={key: code}, status=Status(status, description)
    )
    doc = one(span)
    assert flags(doc) == expected
    assert ("cause" in doc) is has_cause
    if has_cause:
        assert doc["cause"]["exceptions"][0]["message"] == "this is a test"


def test_error_status_without_http_code_is_a_fault_with_status_text_cause() -> None:
    span = make_span(attributes={"http.status_text": "it broke"}, status=Status(StatusCode.ERROR))
    doc = one(span)
    assert flags(doc) == (False, True, False)
    assert doc["cause"]["exceptions"][0]["message"] == "it broke"
    assert "http.status_text" not in doc.get("metadata", {}).get("default", {})


@pytest.mark.parametrize("status", [StatusCode.UNSET, StatusCode.OK])
def test_no_error_no_cause_and_status_text_stays_metadata(status: StatusCode) -> None:
    doc = one(make_span(attributes={"http.status_text": "fine"}, status=Status(status)))
    assert flags(doc) == (False, False, False)
    assert "cause" not in doc
    assert doc["metadata"]["default"]["http.status_text"] == "fine"


def test_error_status_message_splits_python_type_prefix() -> None:
    # What OTel Python instrumentations write when they do not record an exception event.
    message = "ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded"
    doc = one(make_span(kind=SpanKind.CLIENT, status=Status(StatusCode.ERROR, message)))
    (exception,) = doc["cause"]["exceptions"]
    assert exception["type"] == "ConnectionError"
    assert exception["message"].startswith("HTTPConnectionPool(host='127.0.0.1'")


def test_error_type_attribute_names_the_status_cause() -> None:
    span = make_span(
        attributes={"error.type": "TimeoutError"}, status=Status(StatusCode.ERROR, "took too long")
    )
    (exception,) = one(span)["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("TimeoutError", "took too long")


def test_plain_status_message_has_empty_type() -> None:
    span = make_span(status=Status(StatusCode.ERROR, "java.lang.NullPointerException"))
    (exception,) = one(span)["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("", "java.lang.NullPointerException")


def test_exception_events_make_a_cause_even_without_error_status() -> None:
    span = make_span(
        resource=JAVA,
        events=[exception_event("java.lang.IllegalStateException", "bad state", JAVA_TRACE)],
    )
    doc = one(span)
    assert flags(doc) == (False, False, False)
    first, second = doc["cause"]["exceptions"]
    assert (first["type"], first["message"]) == ("java.lang.IllegalStateException", "bad state")
    assert first["cause"] == second["id"]


def test_java_stack_with_cause_and_second_event() -> None:
    events = [
        exception_event("java.lang.IllegalStateException", "bad state", JAVA_TRACE),
        exception_event("EmptyError", ""),
    ]
    span = make_span(
        kind=SpanKind.SERVER,
        resource=JAVA,
        events=events,
        status=Status(StatusCode.ERROR, "this is a test"),
    )
    doc = one(span)
    assert flags(doc) == (False, True, False)
    first, caused_by, empty = doc["cause"]["exceptions"]
    assert first["stack"] == [
        {"path": "Orders.java", "line": 626, "label": "com.example.Orders.place"},
        {
            "path": "Native Method",
            "line": 0,
            "label": "jdk.internal.reflect.NativeMethodAccessorImpl.invoke0",
        },
        {
            "path": "NativeMethodAccessorImpl.java",
            "line": 62,
            "label": "jdk.internal.reflect.NativeMethodAccessorImpl.invoke",
        },
    ]
    assert first["cause"] == caused_by["id"]
    assert (caused_by["type"], caused_by["message"]) == (
        "java.lang.IllegalArgumentException",
        "bad argument",
    )
    assert caused_by["stack"][1] == {
        "path": "Task.java",
        "line": 0,
        "label": "com.example.Task.run",
    }
    assert (empty["type"], empty["message"]) == ("EmptyError", "")
    assert len({first["id"], caused_by["id"], empty["id"]}) == 3


def test_stack_is_not_parsed_for_unknown_language() -> None:
    span = make_span(resource=NO_LANGUAGE, events=[exception_event("T", "m", JAVA_TRACE)])
    (exception,) = one(span)["cause"]["exceptions"]
    assert "stack" not in exception


@pytest.mark.parametrize(
    ("kind", "remote"),
    [(SpanKind.CLIENT, True), (SpanKind.PRODUCER, True), (SpanKind.SERVER, False)],
)
def test_remote_flag_follows_span_kind(kind: SpanKind, remote: bool) -> None:
    (exception,) = one(make_span(kind=kind, events=[exception_event("com.foo.Exception", "msg")]))[
        "cause"
    ]["exceptions"]
    assert exception["remote"] is remote
    assert "stack" not in exception


def test_non_exception_events_are_ignored() -> None:
    assert "cause" not in one(make_span(events=[Event("NotException", {"a": 1})]))


def test_aws_sdk_http_failure_event() -> None:
    event = Event(
        "HTTP request failure",
        {
            "http.response.status_code": "503",
            "aws.http.error_message": "service is temporarily unavailable",
        },
        timestamp=1696954761000001000,
    )
    span = make_span(
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "aws-api"},
        events=[event],
        status=Status(StatusCode.ERROR),
    )
    doc = one(span)
    assert flags(doc) == (False, True, False)
    (exception,) = doc["cause"]["exceptions"]
    assert (exception["type"], exception["remote"]) == ("aws.http.error.event", True)
    assert exception["message"].split("@") == [
        "503",
        "1696954761.000001",
        "service is temporarily unavailable",
    ]


# --- Python tracebacks --------------------------------------------------------------------------


def _level_three() -> None:
    raise KeyError("missing")


def _level_two() -> None:
    _level_three()


def _level_one() -> None:
    try:
        _level_two()
    except KeyError as error:
        raise ValueError("bad value") from error


def _recorded_span(raiser: Any) -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "py"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(__name__)
    with tracer.start_as_current_span("work", kind=SpanKind.SERVER) as span:
        try:
            raiser()
        except Exception as error:  # noqa: BLE001 - recorded, as an instrumentation would
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    provider.shutdown()
    (finished,) = exporter.get_finished_spans()
    return finished


def test_real_python_traceback_from_record_exception() -> None:
    span = _recorded_span(_level_one)
    doc = one(span)
    assert flags(doc) == (False, True, False)
    outer, inner = doc["cause"]["exceptions"]
    assert (outer["type"], outer["message"]) == ("ValueError", "bad value")
    assert outer["cause"] == inner["id"]
    assert (inner["type"], inner["message"]) == ("KeyError", "'missing'")
    here = os.path.abspath(__file__)
    # Innermost frame first: where it was raised.
    assert outer["stack"][0] == {
        "path": here,
        "line": _level_one.__code__.co_firstlineno + 4,
        "label": "_level_one",
    }
    assert [frame["label"] for frame in inner["stack"]] == [
        "_level_three",
        "_level_two",
        "_level_one",
    ]
    assert inner["stack"][0]["line"] == _level_three.__code__.co_firstlineno + 1


def test_during_handling_chain_is_followed() -> None:
    def handler() -> None:
        try:
            {}["k"]
        except KeyError:
            raise RuntimeError("while handling")  # noqa: B904 - the implicit chain is the point

    (outer, inner) = one(_recorded_span(handler))["cause"]["exceptions"]
    assert (outer["type"], inner["type"]) == ("RuntimeError", "KeyError")


def test_python_traceback_parsed_without_language_attribute() -> None:
    try:
        _level_two()
    except KeyError as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    span = make_span(resource=NO_LANGUAGE, events=[exception_event("KeyError", "'missing'", text)])
    (exception,) = one(span)["cause"]["exceptions"]
    assert [frame["label"] for frame in exception["stack"]][:2] == ["_level_three", "_level_two"]


PYTHON_CHAIN = """Traceback (most recent call last):
  File "foo.py", line 5, in greet
    raise ValueError("bad value")
  File "bar.py", line 10, in greet_many
    greet(name)
ValueError: bad value
with more on
new lines

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "main.py", line 14, in <module>
    greet_many(names)
  File "greetings.py", line 12, in greet_many
    print(greeting)
TypeError: can only concatenate
"""


def test_python_chain_with_multiline_message() -> None:
    span = make_span(events=[exception_event("TypeError", "can only concatenate", PYTHON_CHAIN)])
    outer, inner = one(span)["cause"]["exceptions"]
    assert outer["stack"] == [
        {"path": "greetings.py", "line": 12, "label": "greet_many"},
        {"path": "main.py", "line": 14, "label": "<module>"},
    ]
    assert (inner["type"], inner["message"]) == ("ValueError", "bad value\nwith more on\nnew lines")
    assert inner["stack"] == [
        {"path": "bar.py", "line": 10, "label": "greet_many"},
        {"path": "foo.py", "line": 5, "label": "greet"},
    ]


def test_python_malformed_frames_are_read_leniently() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "main.py", lin 14, in <module>\n'
        '  File "main.py", line 14, fin greet\n'
        '  File "a, b.py", line 3, in comma_path\n'
        "ValueError: x\n"
    )
    (exception,) = one(make_span(events=[exception_event("ValueError", "x", text)]))["cause"][
        "exceptions"
    ]
    assert exception["stack"] == [
        {"path": "a, b.py", "line": 3, "label": "comma_path"},
        {"path": "main.py", "line": 14, "label": ""},
        {"path": "main.py", "line": 0, "label": "<module>"},
    ]


def test_deep_stacks_are_capped_and_counted() -> None:
    frames = "".join(f'  File "f.py", line {n}, in f{n}\n    x()\n' for n in range(120))
    text = f"Traceback (most recent call last):\n{frames}RecursionError: deep\n"
    span = make_span(events=[exception_event("RecursionError", "deep", text)])
    (exception,) = translate(span, max_stack_frames=10)[0]["cause"]["exceptions"]
    assert len(exception["stack"]) == 10
    assert exception["truncated"] == 110
    assert exception["stack"][0]["label"] == "f119"


def test_exception_ids_are_fresh_hex() -> None:
    span = make_span(events=[exception_event("E", "m")], end=END_NS)
    first = one(span)["cause"]["exceptions"][0]["id"]
    second = one(span)["cause"]["exceptions"][0]["id"]
    assert first != second and len(first) == 16 and int(first, 16) >= 0
