"""A stand-in for AWS X-Ray on 127.0.0.1 that checks every request's SigV4 signature.

It serves what the forwarder calls: OTLP/HTTP ``POST /v1/traces`` (gunzipped and decoded with
opentelemetry-proto), ``PutTraceSegments``, ``PutTelemetryRecords`` and
``GetTraceSegmentDestination``. Each request's signature is recomputed with botocore's
``SigV4Auth`` from what arrived on the wire (method, path, the signed headers, the body) and the
credentials the test gives; a mismatch, a wrong service or region answers 403 as AWS does and is
counted in ``bad_signatures``. OTLP answers come from a script (200, partial success, 429 with
``Retry-After``, 503, 400).
"""

from __future__ import annotations

import gzip
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from collector.tests.support.loopback_http import LoopbackHTTP


@dataclass(frozen=True)
class OtlpReply:
    status: int = 200
    rejected_spans: int = 0
    error_message: str = ""
    retry_after: str | None = None
    json: bool = False  # answer in OTLP/JSON instead of protobuf


@dataclass(frozen=True)
class OtlpReceived:
    headers: dict[str, str]
    body_bytes: int  # as sent (gzip)
    decoded_bytes: int  # the protobuf message
    request: trace_service_pb2.ExportTraceServiceRequest

    @property
    def spans(self) -> list[trace_pb2.Span]:
        return [
            span
            for group in self.request.resource_spans
            for scope in group.scope_spans
            for span in scope.spans
        ]


@dataclass
class Recorded:
    otlp: list[OtlpReceived] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    destination_calls: int = 0
    bad_signatures: int = 0


class SigV4XRay:
    def __init__(
        self,
        credentials: Credentials,
        region: str,
        otlp_script: list[OtlpReply] | None = None,
        destinations: list[str | int] | None = None,
    ) -> None:
        """``destinations``: GetTraceSegmentDestination answers in order (a string is the
        Destination, an int an HTTP error status); the last one repeats."""
        self._credentials = credentials
        self._region = region
        self._otlp_script = list(otlp_script or [])
        self._destinations = list(destinations or ["XRay"])
        self._cond = threading.Condition()
        self.recorded = Recorded()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, headers, payload = backend._handle(
                    self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._http = LoopbackHTTP(Handler)
        self.url = self._http.url

    # --- signature ------------------------------------------------------------------------------

    def signature_problem(self, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """Why the request's SigV4 signature is not the one these credentials make (or None)."""
        lower = {name.lower(): value for name, value in headers.items()}
        authorization = lower.get("authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return "not SigV4-signed"
        parts = dict(
            item.strip().split("=", 1)
            for item in authorization[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        access_key, date, region, service, terminator = parts["Credential"].split("/")
        if access_key != self._credentials.access_key:
            return f"unknown access key {access_key}"
        if (region, service, terminator) != (self._region, "xray", "aws4_request"):
            return f"signed for {service} in {region}"
        amz_date = lower.get("x-amz-date", "")
        if not amz_date.startswith(date):
            return "X-Amz-Date does not match the credential scope"
        signed = parts["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return "host and x-amz-date must be signed"
        request = AWSRequest(
            method="POST",
            url=f"http://{lower['host']}{path}",
            data=body,
            headers={name: lower[name] for name in signed if name in lower},
        )
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(self._credentials, "xray", self._region)
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, parts["Signature"]):
            return "signature mismatch"
        return None

    # --- requests ---------------------------------------------------------------------------------

    def _handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        problem = self.signature_problem(path, headers, body)
        if problem is not None:
            with self._cond:
                self.recorded.bad_signatures += 1
                self._cond.notify_all()
            return _json_error(403, "InvalidSignatureException", problem)
        if path == "/v1/traces":
            return self._otlp(headers, body)
        with self._cond:
            try:
                if path == "/TraceSegments":
                    self.recorded.segments.extend(json.loads(body)["TraceSegmentDocuments"])
                    return _json(200, {"UnprocessedTraceSegments": []})
                if path == "/TelemetryRecords":
                    self.recorded.telemetry.append(json.loads(body))
                    return _json(200, {})
                if path == "/GetTraceSegmentDestination":
                    self.recorded.destination_calls += 1
                    answer = (
                        self._destinations.pop(0)
                        if len(self._destinations) > 1
                        else self._destinations[0]
                    )
                    if isinstance(answer, int):
                        return _json_error(answer, "InternalFailure", "scripted failure")
                    return _json(200, {"Destination": answer, "Status": "ACTIVE"})
            finally:
                self._cond.notify_all()
        return _json_error(404, "UnknownOperationException", path)

    def _otlp(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        lower = {name.lower(): value for name, value in headers.items()}
        if lower.get("content-type") != "application/x-protobuf":
            return 415, {}, b""
        decoded = gzip.decompress(body) if lower.get("content-encoding") == "gzip" else body
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(decoded)
        with self._cond:
            reply = self._otlp_script.pop(0) if self._otlp_script else OtlpReply()
            if reply.status == 200:
                self.recorded.otlp.append(OtlpReceived(lower, len(body), len(decoded), message))
            self._cond.notify_all()
        if reply.status != 200:
            extra = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            return reply.status, {"Content-Type": "text/plain", **extra}, b"scripted"
        if reply.json:
            partial = {
                "rejectedSpans": str(reply.rejected_spans),
                "errorMessage": reply.error_message,
            }
            body = json.dumps({"partialSuccess": partial}).encode()
            return 200, {"Content-Type": "application/json"}, body
        answer = trace_service_pb2.ExportTraceServiceResponse()
        if reply.rejected_spans or reply.error_message:
            answer.partial_success.rejected_spans = reply.rejected_spans
            answer.partial_success.error_message = reply.error_message
        return 200, {"Content-Type": "application/x-protobuf"}, answer.SerializeToString()

    # --- waiting ----------------------------------------------------------------------------------

    def wait_for(self, condition: Any, timeout: float = 20.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: condition(self.recorded), timeout):
                raise AssertionError(f"condition not met; recorded: {self.recorded}")

    def spans(self) -> list[trace_pb2.Span]:
        with self._cond:
            return [span for received in self.recorded.otlp for span in received.spans]

    def close(self) -> None:
        self._http.close()


def _json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode()


def _json_error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/json", "x-amzn-ErrorType": kind},
        json.dumps({"__type": kind, "message": message}).encode(),
    )
