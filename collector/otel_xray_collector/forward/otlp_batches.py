"""The forwarder's ``otlp`` protocol: batches of segment documents -> OTLP requests, sent.

Per batch: parse and convert each document (``otlp_convert``), give each independent
subsegment its segment's service (holding it a while when the segment has not come yet), fit
spans under X-Ray's 200 KB, pack requests within 10,000 spans / 5 MB, and send each with retries
(``OtlpSender``). The ``Forwarder`` owns the threads, the buffer, backoff and counters; this
class is the per-batch work it hands over, given those as callables.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_xray_collector.forward.otlp import OtlpSender
from otel_xray_collector.forward.otlp_convert import (
    MAX_REQUEST_BYTES,
    MAX_SPAN_BYTES,
    MAX_SPANS_PER_REQUEST,
    Converted,
    InvalidDocument,
    Request,
    ServiceDirectory,
    build_requests,
    convert_document,
    give_up_service,
    is_in_progress,
    resolve_services,
    trim_span,
)
from otel_xray_collector.forward.upload import UploadFailure

from otel_xray.logs import RateLimitedLog


@dataclass(frozen=True)
class OtlpLimits:
    """X-Ray's OTLP endpoint limits (smaller in tests)."""

    max_spans: int = MAX_SPANS_PER_REQUEST
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_span_bytes: int = MAX_SPAN_BYTES


class OtlpForwarding:
    """Thread-safe: the forwarder's sender threads and its housekeeping thread call it."""

    def __init__(
        self,
        sender: OtlpSender,
        limits: OtlpLimits,
        *,
        count: Callable[..., None],
        count_failure: Callable[[UploadFailure, str], None],
        backoff: Callable[[int, float | None], bool],
        log: RateLimitedLog,
        clock: Callable[[], float],
        max_retries: int,
        subsegment_hold: float,
        max_waiting: int,
    ) -> None:
        self._sender = sender
        self._limits = limits
        self._count = count
        self._count_failure = count_failure
        self._backoff = backoff
        self._log = log
        self._clock = clock
        self._max_retries = max_retries
        self._hold = subsegment_hold
        self._max_waiting = max_waiting
        self._services = ServiceDirectory()
        self._lock = threading.Lock()  # guards _services and _waiting
        # (deadline, subsegment) waiting for its segment
        self._waiting: list[tuple[float, Converted]] = []

    @property
    def waiting(self) -> int:
        """Independent subsegments held until their segment comes."""
        with self._lock:
            return len(self._waiting)

    def send(self, batch: list[str]) -> None:
        """Documents -> spans -> requests within X-Ray's limits, each sent with retries."""
        self._send_converted(self._resolve(self._convert(batch), final=False))

    def release(self, final: bool) -> None:
        """Send the waiting subsegments that are due (all of them when ``final``)."""
        self._send_converted(self._resolve([], final))

    def close(self) -> None:
        self._sender.close()

    def _convert(self, batch: list[str]) -> list[Converted]:
        converted: list[Converted] = []
        invalid = in_progress = 0
        for text in batch:
            try:
                document = json.loads(text)
                if not isinstance(document, dict):
                    raise InvalidDocument("not a JSON object")
                if is_in_progress(document):
                    in_progress += 1
                    continue
                converted.append(convert_document(document))
            except ValueError as exc:  # not JSON, or InvalidDocument
                invalid += 1
                self._log.log(
                    logging.WARNING, "cannot send a document over OTLP: %s", exc, key="otlp-invalid"
                )
        if invalid or in_progress:
            self._count(
                rejected=invalid,
                otlp_documents_invalid=invalid,
                otlp_documents_in_progress=in_progress,
            )
        return converted

    def _resolve(self, converted: list[Converted], final: bool) -> list[Converted]:
        """What can be sent now: every document, except independent subsegments whose segment
        (their service) has not come yet; those wait, at most ``subsegment_hold`` seconds and
        ``max_waiting`` documents, then go as ``unknown_service``. ``final`` (flush, stop)
        waits for nothing."""
        with self._lock:
            waiting = self._waiting
            candidates = [item for _, item in waiting] + converted
            unresolved = {id(item) for item in resolve_services(candidates, self._services)}
            if not unresolved:
                self._waiting = []
                return candidates
            now = self._clock()
            deadlines = {id(item): deadline for deadline, item in waiting}
            keep: list[tuple[float, Converted]] = []
            given_up = 0
            for item in candidates:
                if id(item) not in unresolved:
                    continue
                deadline = deadlines.get(id(item), now + self._hold)
                if final or deadline <= now:
                    give_up_service(item)
                    given_up += 1
                else:
                    keep.append((deadline, item))
            overflow = len(keep) - self._max_waiting
            if overflow > 0:
                for _, item in keep[:overflow]:
                    give_up_service(item)
                given_up += overflow
                keep = keep[overflow:]
            self._waiting = keep
            kept = {id(item) for _, item in keep}
        if given_up:
            self._count(otlp_unknown_service=given_up)
        return [item for item in candidates if id(item) not in kept]

    def _send_converted(self, converted: list[Converted]) -> None:
        """A document counts as sent when every request holding its spans was accepted."""
        if not converted:
            return
        items: list[tuple[int, dict[str, Any], Any]] = []
        trimmed = too_large = 0
        limit = self._limits.max_span_bytes
        for index, item in enumerate(converted):
            for span in item.spans:
                if span.ByteSize() > limit:
                    if not trim_span(span, limit):
                        too_large += 1
                        continue
                    trimmed += 1
                items.append((index, item.resource, span))
        if too_large:
            self._log.log(
                logging.WARNING,
                "%d spans over %d bytes even without stack traces and metadata: not sent",
                too_large,
                limit,
                key="otlp-too-large",
            )
        carried = {index for index, _, _ in items}
        failed: set[int] = set()
        limits = self._limits
        for request in build_requests(items, limits.max_spans, limits.max_request_bytes):
            if not self._export(request):
                failed |= request.documents
        self._count(
            sent=len(carried - failed),
            dropped=len(failed),
            rejected=too_large,
            otlp_spans_trimmed=trimmed,
            otlp_spans_too_large=too_large,
        )

    def _export(self, request: Request) -> bool:
        failures = attempt = 0
        while True:
            try:
                result = self._sender.export(request.message)
            except UploadFailure as failure:
                failures += 1
                self._count_failure(failure, "OTLP export")
                shutting_down = False
                if failure.retryable and failures <= self._max_retries:
                    attempt += 1
                    if self._backoff(attempt, failure.retry_after):
                        self._count(retries=1, otlp_retries=1)
                        continue
                    shutting_down = True
                self._count(otlp_spans_failed=request.spans)
                self._log.log(
                    logging.ERROR,
                    "sending %d spans to AWS X-Ray over OTLP failed (%s): %s",
                    request.spans,
                    failure.given_up_because(failures, shutting_down),
                    failure.detail,
                    key=f"otlp-failed:{failure.reason}",
                )
                return False
            rejected = min(result.rejected_spans, request.spans)
            self._count(
                otlp_batches=1,
                otlp_spans_sent=request.spans - rejected,
                otlp_spans_rejected=rejected,
                rejected=rejected,
            )
            if rejected or result.error_message:
                self._log.log(
                    logging.WARNING,
                    "AWS X-Ray refused %d of %d spans: %s",
                    rejected,
                    request.spans,
                    result.error_message or "(no message)",
                    key="otlp-partial",
                )
            return True
