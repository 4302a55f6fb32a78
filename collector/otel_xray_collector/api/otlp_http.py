"""OTLP/HTTP trace receiver: ``POST /v1/traces`` in protobuf or JSON, gzip or not.

Decoding is pure (bytes -> ``ExportTraceServiceRequest``); the export itself (translation,
submission, partial success) is :class:`~otel_xray_collector.ingest.otlp.TraceExport`, the same
object the gRPC receiver uses, so a span gives the same documents whichever way it came.

Answers follow the OTLP/HTTP specification: 200 with an ``ExportTraceServiceResponse`` (its
``partial_success`` naming rejected spans), 400 with a ``google.rpc.Status`` for a body that
cannot be decoded, 413 when the body or its decompressed size is over the limit, 415 for other
media types or encodings, 503 with ``Retry-After`` when the pipeline cannot take the spans (the
exporters retry). Every body is in the request's own encoding (protobuf or JSON).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otel_xray.wire import loads

from ..ingest.otlp import DEFAULT_MAX_MESSAGE_BYTES, SubmitRefused, TraceExport
from .web import Reply

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Seconds an exporter should wait before retrying when the pipeline is full.
RETRY_AFTER_SECONDS = 1

#: OTLP/JSON writes these ``bytes`` fields as hex, where protobuf's JSON mapping expects base64.
_HEX_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


class BadRequest(ValueError):
    """The body is not an OTLP trace request (answered 400)."""


class TooLarge(ValueError):
    """The body, or what it decompresses to, is over the limit (answered 413)."""


def decompress(body: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """The body without its ``Content-Encoding``; gzip inflated to at most ``max_bytes``."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ValueError(f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body is over {max_bytes} bytes")
    if not inflater.eof:
        raise BadRequest("gzip body is truncated")
    return data


def _hex_to_base64(value: Any, where: str) -> Any:
    if not isinstance(value, str) or value == "":
        return value
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise BadRequest(f"{where} must be hex, got {value[:40]!r}") from exc
    return base64.b64encode(raw).decode("ascii")


def _ids_to_base64(node: Any, where: str) -> None:
    """Rewrite the hex ids of OTLP/JSON spans and links in place for protobuf's JSON parser."""
    for group in _items(node, "resourceSpans", "resource_spans"):
        for scope_spans in _items(group, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _rewrite_ids(span, where)
                for link in _items(span, "links"):
                    _rewrite_ids(link, where)


def _items(node: Any, *names: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    for name in names:
        value = node.get(name)
        if isinstance(value, list):
            return value
    return []


def _rewrite_ids(node: Any, where: str) -> None:
    if isinstance(node, dict):
        for name in _HEX_ID_FIELDS:
            if name in node:
                node[name] = _hex_to_base64(node[name], f"{where}.{name}")


def decode_request(body: bytes, media: str) -> trace_service_pb2.ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from protobuf bytes or OTLP/JSON (hex ids, camelCase or
    field names, enums as numbers or names, 64-bit integers as strings or numbers; unknown
    fields ignored, as the specification requires of receivers)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise BadRequest(f"body is not an OTLP protobuf trace request: {exc}") from exc
        return request
    try:
        document = loads(body) if body.strip() else {}
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    _ids_to_base64(document, "span")
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BadRequest(f"body is not an OTLP/JSON trace request: {exc}") from exc
    return request


def encode(message: Any, media: str) -> bytes:
    if media == PROTOBUF:
        return bytes(message.SerializeToString())
    return str(json_format.MessageToJson(message, indent=None)).encode()


class OtlpHttpRoute:
    """The ``/v1/traces`` route of an HTTP listener (a :class:`~.web.RawRoute`)."""

    media_types = frozenset({PROTOBUF, JSON})

    def __init__(self, export: TraceExport, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._export = export
        self._max_bytes = max_bytes

    def __call__(self, body: bytes, media: str, content_encoding: str) -> Reply:
        try:
            raw = decompress(body, content_encoding, self._max_bytes)
            request = decode_request(raw, media)
        except TooLarge as exc:
            return self._status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), media)
        except BadRequest as exc:
            self._export.count(bad_requests=1)
            return self._status(400, code_pb2.INVALID_ARGUMENT, str(exc), media)
        except ValueError as exc:  # an unsupported Content-Encoding
            return self._status(415, code_pb2.INVALID_ARGUMENT, str(exc), media)
        try:
            response = self._export.export(request)
        except SubmitRefused as exc:
            return self._status(
                503,
                code_pb2.UNAVAILABLE,
                str(exc),
                media,
                (("Retry-After", str(RETRY_AFTER_SECONDS)),),
            )
        return Reply(200, encode(response, media), media)

    @staticmethod
    def _status(
        http_status: int,
        code: int,
        message: str,
        media: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Reply:
        status = status_pb2.Status(code=code, message=message)
        return Reply(http_status, encode(status, media), media, headers)


__all__ = [
    "JSON",
    "PROTOBUF",
    "TRACES_PATH",
    "OtlpHttpRoute",
    "decode_request",
    "decompress",
    "encode",
]
