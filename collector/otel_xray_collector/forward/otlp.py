"""One OTLP/HTTP export to X-Ray's OTLP endpoint: protobuf, gzip, SigV4 for service ``xray``.

X-Ray's OTLP endpoint (``https://xray.<region>.amazonaws.com/v1/traces``, which needs
CloudWatch Transaction Search) is plain OTLP/HTTP behind SigV4. botocore, already here for
PutTraceSegments, signs it (``SigV4Auth``) with its standard credential chain (refreshed
credentials are frozen per request) and sends it through its own urllib3 session, so proxies,
TLS and connection errors behave as for every other call this collector makes to AWS.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from otel_xray_collector import __version__
from otel_xray_collector.forward.upload import UploadFailure, transport_failure

OTLP_PATH = "/v1/traces"
SIGNING_SERVICE = "xray"
#: The longest ``Retry-After`` honoured (s): a wait beyond it is a server's mistake.
MAX_RETRY_AFTER = 300.0


def otlp_traces_url(endpoint: str | None, region: str) -> str:
    """Where spans go: ``<endpoint>/v1/traces`` for an explicit URL (a local stand-in), else
    X-Ray's regional OTLP endpoint (``amazonaws.com.cn`` in the China regions)."""
    if endpoint:
        return endpoint.rstrip("/") + OTLP_PATH
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://xray.{region}.{domain}{OTLP_PATH}"


@dataclass(frozen=True)
class ExportResult:
    """A 2xx answer: how many spans it refused (OTLP partial success) and why."""

    rejected_spans: int = 0
    error_message: str = ""


class OtlpSender:
    """Posts encoded ``ExportTraceServiceRequest`` messages; thread-safe."""

    def __init__(
        self,
        url: str,
        region: str,
        request_timeout: float = 10.0,
        max_pool_connections: int = 8,
        session: botocore.session.Session | None = None,
    ) -> None:
        self.url = url
        self.region = region
        self._session = session if session is not None else botocore.session.get_session()
        self._http = URLLib3Session(
            proxies=get_environ_proxies(url),
            timeout=request_timeout,
            max_pool_connections=max_pool_connections,
        )
        self._user_agent = f"otel-xray-collector/{__version__}"

    def export(self, message: trace_service_pb2.ExportTraceServiceRequest) -> ExportResult:
        """Send one request; raises ``UploadFailure`` (``retry_after`` set from the answer)."""
        body = gzip.compress(message.SerializeToString(), compresslevel=6)
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=body,
            headers={
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "gzip",
                "User-Agent": self._user_agent,
            },
        )
        credentials = self._credentials()
        SigV4Auth(credentials, SIGNING_SERVICE, self.region).add_auth(request)
        try:
            response = self._http.send(request.prepare())
        except BotoCoreError as exc:
            raise transport_failure(exc) from exc
        status = int(response.status_code)
        content = response.content or b""
        if 200 <= status < 300:
            return _partial_success(content, response.headers)
        detail = f"HTTP {status}: {_error_text(content, response.headers)}"
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        # OTLP/HTTP says to retry 429, 502, 503 and 504; any 5xx is transient trouble here.
        if status == 429:
            raise UploadFailure("throttled", True, detail, status, retry_after=retry_after)
        if status >= 500:
            raise UploadFailure("http_5xx", True, detail, status, retry_after=retry_after)
        if status >= 400:
            raise UploadFailure("http_4xx", False, detail, status)
        raise UploadFailure("other", False, detail, status)

    def _credentials(self) -> Any:
        try:
            credentials = self._session.get_credentials()
        except BotoCoreError as exc:
            raise transport_failure(exc) from exc
        if credentials is None:
            raise UploadFailure("credentials", True, "no AWS credentials found")
        return credentials.get_frozen_credentials()

    def close(self) -> None:
        self._http.close()


def _partial_success(content: bytes, headers: Any) -> ExportResult:
    """OTLP's ``partial_success``, in the answer's encoding; an empty or unreadable body is a
    full success (the spec lets servers answer with no body)."""
    content = _decoded(content, headers)
    if not content:
        return ExportResult()
    if "json" in str(headers.get("Content-Type", "")).lower():
        try:
            parsed = json.loads(content)
        except ValueError:
            return ExportResult()
        partial = parsed.get("partialSuccess") if isinstance(parsed, dict) else None
        if not isinstance(partial, dict):
            return ExportResult()
        try:
            rejected = int(partial.get("rejectedSpans") or 0)
        except (TypeError, ValueError):
            rejected = 0
        return ExportResult(rejected, str(partial.get("errorMessage") or ""))
    answer = trace_service_pb2.ExportTraceServiceResponse()
    try:
        answer.ParseFromString(content)
    except Exception:  # protobuf's DecodeError (its module has no type information here)
        return ExportResult()
    partial_message = answer.partial_success
    return ExportResult(int(partial_message.rejected_spans), partial_message.error_message)


def _decoded(content: bytes, headers: Any) -> bytes:
    if content and "gzip" in str(headers.get("Content-Encoding", "")).lower():
        try:
            return gzip.decompress(content)
        except (OSError, EOFError):
            return b""
    return content


def _error_text(content: bytes, headers: Any) -> str:
    """The reason in an error answer: an OTLP ``Status`` (protobuf), AWS's JSON, or text."""
    content = _decoded(content, headers)[:2048]
    kind = str(headers.get("Content-Type", "")).lower()
    if "protobuf" in kind:
        # A google.rpc.Status: its message is the readable text among the bytes.
        return "".join(c if c.isprintable() else " " for c in content.decode("utf-8", "replace"))
    text = content.decode("utf-8", "replace")
    if "json" in kind:
        try:
            parsed = json.loads(text)
        except ValueError:
            return text.strip()
        if isinstance(parsed, dict):
            return str(parsed.get("message") or parsed.get("Message") or parsed)
    return text.strip()


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))
