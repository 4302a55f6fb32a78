"""put_annotation / put_metadata / set_user on real SDK spans."""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

import otel_xray
from otel_xray import config
from otel_xray.attributes import ANNOTATIONS_ATTRIBUTE
from otel_xray.config import CONTEXT_MISSING_ENV
from otel_xray.recorder import (
    SegmentNotFoundException,
    put_annotation,
    put_metadata,
    set_context_missing_strategy,
    set_user,
)
from tests.support.schema import assert_valid


class Recording:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("recorder-test")

    def one_span(self) -> ReadableSpan:
        (span,) = self.exporter.get_finished_spans()
        return span


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    monkeypatch.delenv(CONTEXT_MISSING_ENV, raising=False)
    monkeypatch.delenv("AWS_XRAY_SDK_ENABLED", raising=False)
    r = Recording()
    yield r
    r.provider.shutdown()
    set_context_missing_strategy("LOG_ERROR")


def metadata_of(span: ReadableSpan, namespace: str = "default") -> Any:
    assert span.attributes is not None
    return json.loads(str(span.attributes[f"aws.xray.metadata.{namespace}"]))


# --- annotations -------------------------------------------------------------------------------


def test_public_api_exports_the_helpers() -> None:
    assert otel_xray.put_annotation is put_annotation
    assert otel_xray.put_metadata is put_metadata
    assert otel_xray.set_user is set_user


def test_annotations_become_attributes_listed_in_aws_xray_annotations(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req"):
        put_annotation("customer_id", "c-42")
        put_annotation("retries", 3)
        put_annotation("ratio", 0.5)
        put_annotation("vip", True)
        put_annotation("retries", 4)  # overwrite: listed once
    attrs = rec.one_span().attributes
    assert attrs is not None
    assert attrs[ANNOTATIONS_ATTRIBUTE] == ("customer_id", "retries", "ratio", "vip")
    assert (attrs["customer_id"], attrs["retries"], attrs["ratio"], attrs["vip"]) == (
        "c-42",
        4,
        0.5,
        True,
    )


def test_annotation_list_keeps_keys_set_by_other_code(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req", attributes={ANNOTATIONS_ATTRIBUTE: ["tenant"]}):
        put_annotation("order", "o-1")
    assert rec.one_span().attributes[ANNOTATIONS_ATTRIBUTE] == ("tenant", "order")  # type: ignore[index]


@pytest.mark.parametrize(
    "key", ["has space", "dotted.key", "dash-key", "ünïcode", "", "semi;colon"]
)
def test_annotation_with_invalid_key_is_dropped_with_a_warning(
    rec: Recording, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        with rec.tracer.start_as_current_span("req"):
            put_annotation(key, "v")
    attrs = rec.one_span().attributes or {}
    assert key not in attrs and ANNOTATIONS_ATTRIBUTE not in attrs
    assert any("ignoring annotation" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", [None, [1, 2], {"a": 1}, b"bytes", object()])
def test_annotation_with_unsupported_value_is_dropped_with_a_warning(
    rec: Recording, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        with rec.tracer.start_as_current_span("req"):
            put_annotation("key", value)
    attrs = rec.one_span().attributes or {}
    assert "key" not in attrs and ANNOTATIONS_ATTRIBUTE not in attrs
    assert any("not str, int, float or bool" in r.getMessage() for r in caplog.records)


def test_non_string_annotation_key_is_dropped(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req"):
        put_annotation(7, "v")  # type: ignore[arg-type]
    assert ANNOTATIONS_ATTRIBUTE not in (rec.one_span().attributes or {})


def test_concurrent_annotations_on_one_span_are_all_listed(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req") as span:
        start = threading.Barrier(8)

        def annotate(n: int) -> None:
            start.wait()
            for i in range(25):
                put_annotation(f"k{n}_{i}", i, span=span)

        threads = [threading.Thread(target=annotate, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    listed = rec.one_span().attributes[ANNOTATIONS_ATTRIBUTE]  # type: ignore[index]
    assert sorted(listed) == sorted(f"k{n}_{i}" for n in range(8) for i in range(25))


# --- metadata ----------------------------------------------------------------------------------


def test_metadata_goes_to_a_json_object_per_namespace_and_merges(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req"):
        put_metadata("order", {"id": 1, "items": ["a", "b"]})
        put_metadata("note", "hello")
        put_metadata("rows", 12, namespace="db")
        put_metadata("note", "replaced")
    span = rec.one_span()
    assert metadata_of(span) == {"order": {"id": 1, "items": ["a", "b"]}, "note": "replaced"}
    assert metadata_of(span, "db") == {"rows": 12}


def test_metadata_merges_with_a_namespace_object_set_by_other_code(rec: Recording) -> None:
    existing = {"aws.xray.metadata.app": '{"build":"42"}'}
    with rec.tracer.start_as_current_span("req", attributes=existing):
        put_metadata("region", "eu", namespace="app")
    assert metadata_of(rec.one_span(), "app") == {"build": "42", "region": "eu"}


def test_metadata_replaces_an_existing_value_that_is_not_a_json_object(
    rec: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        with rec.tracer.start_as_current_span("req", attributes={"aws.xray.metadata.app": "[1]"}):
            put_metadata("k", "v", namespace="app")
    assert metadata_of(rec.one_span(), "app") == {"k": "v"}
    assert any("not a JSON object" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("namespace", ["AWS.reserved", "AWS."])
def test_metadata_in_reserved_namespace_is_dropped(
    rec: Recording, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_xray"):
        with rec.tracer.start_as_current_span("req"):
            put_metadata("k", "v", namespace=namespace)
    assert not rec.one_span().attributes
    assert any("reserved" in r.getMessage() for r in caplog.records)


def test_reserved_prefix_is_case_sensitive_like_the_sdk(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req"):
        put_metadata("k", "v", namespace="aws.mine")
    assert metadata_of(rec.one_span(), "aws.mine") == {"k": "v"}


@pytest.mark.parametrize("namespace", [None, 3, ""])
def test_metadata_namespace_must_be_a_non_empty_string(rec: Recording, namespace: Any) -> None:
    with rec.tracer.start_as_current_span("req"):
        put_metadata("k", "v", namespace=namespace)
    assert not rec.one_span().attributes


class Order:
    kind = "class attribute, not an instance one"

    def __init__(self) -> None:
        self.id = 7
        self.lines = {("a", 1)}
        self._secret = "hidden"
        self.callback = print


class Slotted:
    __slots__ = ("x",)

    def __repr__(self) -> str:
        return "Slotted()"


def test_metadata_values_are_converted_like_the_xray_sdk(rec: Recording) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 0, 0)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with rec.tracer.start_as_current_span("req"):
        put_metadata("object", Order())
        put_metadata("type", int)
        put_metadata("when", when)
        put_metadata("tuple", (1, "x"))
        put_metadata("gen", (i * i for i in range(3)))
        put_metadata("nan", float("nan"))
        put_metadata("bytes", b"\x00ab")
        put_metadata("slotted", Slotted())
        put_metadata("cyclic", cyclic)
        put_metadata(5, "int key")  # type: ignore[arg-type]
        put_metadata("keys", {1: "one", None: "none"})
    meta = metadata_of(rec.one_span())
    assert meta["object"] == {"id": 7, "lines": [["a", 1]]}
    assert meta["type"] == "<class 'int'>"
    assert meta["when"] == str(when)
    assert meta["tuple"] == [1, "x"]
    assert meta["gen"] == [0, 1, 4]
    assert meta["nan"] == "nan"
    assert meta["bytes"] == "b'\\x00ab'"
    assert meta["slotted"] == "Slotted()"
    assert meta["5"] == "int key"
    assert meta["keys"] == {"1": "one", "None": "none"}
    depth, node = 0, meta["cyclic"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert isinstance(node, str) and depth > 10  # cut off, not a RecursionError


# --- user --------------------------------------------------------------------------------------


def test_set_user_writes_enduser_id(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req", kind=SpanKind.SERVER):
        set_user("alice@example.com")
    assert rec.one_span().attributes == {"enduser.id": "alice@example.com"}


def test_set_user_converts_non_strings_and_ignores_none(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("req"):
        set_user(1234)  # type: ignore[arg-type]
    with rec.tracer.start_as_current_span("req2"):
        set_user(None)  # type: ignore[arg-type]
    first, second = rec.exporter.get_finished_spans()
    assert first.attributes == {"enduser.id": "1234"}
    assert not second.attributes


def test_explicit_span_argument_targets_that_span(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("server", kind=SpanKind.SERVER) as server:
        with rec.tracer.start_as_current_span("child"):
            set_user("bob", span=server)
    child, parent = rec.exporter.get_finished_spans()
    assert parent.attributes == {"enduser.id": "bob"} and not child.attributes


# --- no span / unsampled / disabled ------------------------------------------------------------

CALLS = [
    ("put_annotation", lambda: put_annotation("k", "v")),
    ("put_metadata", lambda: put_metadata("k", "v")),
    ("set_user", lambda: set_user("u")),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_without_span_log_error_is_the_default(
    rec: Recording, name: str, call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="otel_xray"):
        call()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].name.startswith("otel_xray")
    assert f"{name}()" in errors[0].getMessage()


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_without_span_runtime_error_raises(
    rec: Recording, monkeypatch: pytest.MonkeyPatch, name: str, call: Any
) -> None:
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "RUNTIME_ERROR")
    with pytest.raises(SegmentNotFoundException, match=name):
        call()


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_without_span_ignore_error_is_silent(
    rec: Recording,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    call: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "IGNORE_ERROR")
    with caplog.at_level(logging.DEBUG, logger="otel_xray"):
        call()
    assert not caplog.records


def test_env_strategy_is_case_insensitive_and_beats_code(
    rec: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_context_missing_strategy("IGNORE_ERROR")
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "runtime_error")
    with pytest.raises(SegmentNotFoundException):
        put_annotation("k", "v")


def test_code_strategy_applies_when_env_unset(rec: Recording) -> None:
    set_context_missing_strategy("runtime_error")
    with pytest.raises(SegmentNotFoundException):
        put_metadata("k", "v")
    with pytest.raises(ValueError, match="unknown context-missing strategy"):
        set_context_missing_strategy("EXPLODE")


def test_unknown_env_strategy_warns_once_and_uses_log_error(
    rec: Recording, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "NOT_A_STRATEGY")
    config._bad_value_log.forget(f"{CONTEXT_MISSING_ENV}=NOT_A_STRATEGY")
    with caplog.at_level(logging.DEBUG, logger="otel_xray"):
        put_annotation("k", "v")
        put_annotation("k", "v")
    levels = [r.levelno for r in caplog.records]
    assert levels.count(logging.WARNING) == 1 and levels.count(logging.ERROR) == 2


def test_unsampled_span_is_ignored_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "RUNTIME_ERROR")
    provider = TracerProvider(sampler=ALWAYS_OFF)
    try:
        with caplog.at_level(logging.DEBUG, logger="otel_xray"):
            with provider.get_tracer("t").start_as_current_span("dropped") as span:
                assert not span.is_recording()
                put_annotation("k", "v")
                put_metadata("k", "v")
                set_user("u")
    finally:
        provider.shutdown()
    assert not caplog.records


def test_disabled_sdk_makes_the_helpers_no_ops(
    rec: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    monkeypatch.setenv(CONTEXT_MISSING_ENV, "RUNTIME_ERROR")
    put_annotation("k", "v")  # no span, yet no exception: nothing is traced at all
    with rec.tracer.start_as_current_span("req"):
        put_annotation("k", "v")
        set_user("u")
    assert not rec.one_span().attributes


def test_ended_span_still_current_is_ignored(rec: Recording) -> None:
    span = rec.tracer.start_span("req")
    span.end()
    with trace.use_span(span, end_on_exit=False):
        put_annotation("k", "v")
    assert not rec.one_span().attributes


# --- through the translator --------------------------------------------------------------------


def test_translated_segment_carries_annotations_metadata_and_user(rec: Recording) -> None:
    with rec.tracer.start_as_current_span("checkout", kind=SpanKind.SERVER):
        put_annotation("customer_id", "c-42")
        put_annotation("retries", 2)
        put_annotation("vip", False)
        put_metadata("order", {"id": 7, "lines": ["a", "b"]})
        put_metadata("rows", 12, namespace="db")
        set_user("alice@example.com")
    (doc,) = otel_xray.span_to_documents(rec.one_span())
    assert_valid(doc)
    assert doc["annotations"] == {"customer_id": "c-42", "retries": 2, "vip": False}
    assert doc["metadata"]["default"]["order"] == {"id": 7, "lines": ["a", "b"]}
    assert doc["metadata"]["db"] == {"rows": 12}
    assert doc["user"] == "alice@example.com"
    for namespace in doc["metadata"].values():  # the plumbing attributes are consumed
        assert not any(key.startswith("aws.xray.") for key in namespace)
    assert "enduser.id" not in doc["metadata"]["default"]
