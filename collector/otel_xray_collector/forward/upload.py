"""One ``PutTraceSegments`` call through botocore, and what its outcome means for the batch.

A botocore ``xray`` client, rather than hand-rolled SigV4 over urllib3, because it brings what a
forwarder to AWS must get right and that is easy to get subtly wrong: the standard credentials
chain with refresh (environment, profiles, SSO, container and instance roles), endpoint
resolution for every partition (``amazonaws.com.cn``, GovCloud, ISO), SigV4 signing, connection
pooling, and parsing of X-Ray's error shapes. Its own retries are switched off: the forwarder
retries itself, with backoff it controls and counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from otel_xray_collector import __version__

#: Error codes that mean "slow down": retried with backoff like HTTP 429.
THROTTLING_CODES = frozenset(
    {
        "ThrottledException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
#: 4xx codes that can succeed later (clock skew, a credential being rotated): retried.
TRANSIENT_CLIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "IDPCommunicationError",
    }
)
#: ``UnprocessedTraceSegments`` codes that describe the document itself: resending cannot help.
PERMANENT_SEGMENT_CODES = frozenset(
    {
        "JSONFormatError",
        "MissingParam",
        "InvalidSegment",
        "InvalidTraceId",
        "InvalidParameterValue",
        "SegmentTooLarge",
        "ValidationException",
    }
)


@dataclass(frozen=True)
class Unprocessed:
    """One ``UnprocessedTraceSegments`` entry."""

    segment_id: str | None
    error_code: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.segment_id is not None and self.error_code not in PERMANENT_SEGMENT_CODES


class UploadFailure(Exception):
    """A request X-Ray did not accept. ``reason`` groups failures for counters and logs.

    Reasons: ``throttled``, ``http_5xx``, ``http_4xx``, ``timeout``, ``connection_refused``,
    ``unknown_host``, ``connection``, ``credentials``, ``other``. ``retry_after`` is the
    server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(
        self,
        reason: str,
        retryable: bool,
        detail: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retryable = retryable
        self.detail = detail
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def given_up_because(self, attempts: int, shutting_down: bool) -> str:
        """Why a request carrying this failure was given up, for the log line."""
        if shutting_down:
            return "shutting down"
        return "permanent error" if not self.retryable else f"{attempts} attempts"


def resolve_region(region: str | None, endpoint_url: str | None) -> str:
    """The region to sign for: argument, ``AWS_REGION``, then botocore's (``AWS_DEFAULT_REGION``,
    the profile). A custom endpoint (a local X-Ray, moto) still signs, with us-east-1."""
    chosen = region or os.environ.get("AWS_REGION") or _botocore_region()
    if chosen:
        return chosen
    if endpoint_url:
        return "us-east-1"
    raise ValueError("forwarding to AWS X-Ray needs a region: pass --region or set AWS_REGION")


def _botocore_region() -> str | None:
    try:
        value = botocore.session.get_session().get_config_variable("region")
    except BotoCoreError:
        return None
    return str(value) if value else None


class XRayUploader:
    """Sends batches with a thread-safe botocore ``xray`` client (one per forwarder)."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str,
        request_timeout: float = 5.0,
        max_pool_connections: int = 8,
        session: botocore.session.Session | None = None,
    ) -> None:
        session = session if session is not None else botocore.session.get_session()
        self.region = region
        self._client = session.create_client(
            "xray",
            region_name=region,
            endpoint_url=endpoint_url or None,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=min(2.0, request_timeout),
                read_timeout=request_timeout,
                max_pool_connections=max_pool_connections,
                user_agent_extra=f"otel-xray-collector/{__version__}",
            ),
        )
        self.endpoint_url: str = self._client.meta.endpoint_url
        # The daemon stamps each upload with its send time; X-Ray uses it to correct clock skew.
        self._client.meta.events.register(
            "before-sign.xray.PutTraceSegments", _add_timestamp_header
        )

    def put(self, documents: list[str]) -> list[Unprocessed]:
        """Send one batch; returns what X-Ray left unprocessed, raises ``UploadFailure``."""
        response = self._call(self._client.put_trace_segments, TraceSegmentDocuments=documents)
        return [
            Unprocessed(
                entry.get("Id") or None, entry.get("ErrorCode", ""), entry.get("Message", "")
            )
            for entry in response.get("UnprocessedTraceSegments") or ()
        ]

    def get_destination(self) -> tuple[str, str]:
        """``GetTraceSegmentDestination``: (destination, status), e.g. ``("CloudWatchLogs",
        "ACTIVE")`` (``XRay`` | ``CloudWatchLogs``; ``ACTIVE`` | ``PENDING``). Raises
        ``UploadFailure``."""
        response = self._call(self._client.get_trace_segment_destination)
        return str(response.get("Destination") or ""), str(response.get("Status") or "")

    def put_telemetry(self, records: list[dict[str, Any]], identity: dict[str, str]) -> None:
        """One ``PutTelemetryRecords`` call (``identity``: EC2InstanceId, Hostname, ResourceARN,
        each sent even when empty, as the daemon does). Raises ``UploadFailure``."""
        self._call(self._client.put_telemetry_records, TelemetryRecords=records, **identity)

    def _call(self, operation: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = operation(**kwargs)
        except ClientError as exc:
            raise _client_failure(exc) from exc
        except BotoCoreError as exc:
            raise transport_failure(exc) from exc
        return response

    def close(self) -> None:
        self._client.close()


def _client_failure(exc: ClientError) -> UploadFailure:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    detail = f"HTTP {status} {code}: {error.get('Message', '')}".strip()
    if status == 429 or code in THROTTLING_CODES:
        return UploadFailure("throttled", True, detail, status, code)
    if status >= 500:
        return UploadFailure("http_5xx", True, detail, status, code)
    if 400 <= status < 500:
        return UploadFailure("http_4xx", code in TRANSIENT_CLIENT_CODES, detail, status, code)
    return UploadFailure("other", False, detail, status, code)


def transport_failure(exc: BotoCoreError) -> UploadFailure:
    """A request that got no HTTP answer (timeouts, refused or unresolvable hosts, credentials),
    classified for counters and telemetry; all are worth another try."""
    detail = str(exc)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return UploadFailure("timeout", True, detail)
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError)):
        # The message names the URL only; the socket error that says why is in kwargs.
        lowered = f"{detail} {exc.kwargs.get('error', '')}".lower()
        if "refused" in lowered:
            return UploadFailure("connection_refused", True, detail)
        if any(text in lowered for text in _UNKNOWN_HOST_TEXTS):
            return UploadFailure("unknown_host", True, detail)
        return UploadFailure("connection", True, detail)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return UploadFailure("credentials", True, detail)
    return UploadFailure("other", True, detail)


#: How resolver failures read in urllib3/socket errors on Linux, macOS and Windows.
_UNKNOWN_HOST_TEXTS = (
    "name or service not known",
    "nodename nor servname",
    "getaddrinfo failed",
    "temporary failure in name resolution",
    "no address associated",
)


def _add_timestamp_header(request: Any, **_: Any) -> None:
    request.headers["X-Amzn-Xray-Timestamp"] = f"{time.time():.9f}"
