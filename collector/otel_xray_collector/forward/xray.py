"""Forwarding segment documents to AWS X-Ray, as the X-Ray daemon does, or over OTLP.

Three protocols (``protocol``): ``segments`` sends documents with ``PutTraceSegments``;
``otlp`` turns them back into spans (``otlp_convert``; per batch, ``otlp_batches``) and posts
them to X-Ray's OTLP endpoint (``otlp``), the one CloudWatch Transaction Search uses; ``auto`` asks
``GetTraceSegmentDestination`` at start and every few minutes and uses ``otlp`` while the
account's destination is ``CloudWatchLogs``, ``segments`` otherwise (and until it has an
answer). With ``telemetry_interval`` set (the collector: 60 s) ``PutTelemetryRecords`` reports
the forwarder's health, as the daemon does.

The collector keeps every document locally and, when forwarding is on, also offers it here. This
side must never slow ingest down or grow without bound when AWS is slow or unreachable: ``offer``
only appends to a bounded buffer (dropping the oldest documents when full, like the daemon, and
counting them), and sender threads batch, sign, send and retry on their own.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from random import random as _uniform
from typing import Any

import botocore.session
from otel_xray_collector.config import CLOUDWATCH_LOGS
from otel_xray_collector.forward.otlp import OtlpSender, otlp_traces_url
from otel_xray_collector.forward.otlp_batches import OtlpForwarding, OtlpLimits
from otel_xray_collector.forward.otlp_convert import (
    MAX_REQUEST_BYTES,
    MAX_SPAN_BYTES,
    MAX_SPANS_PER_REQUEST,
)
from otel_xray_collector.forward.telemetry import TelemetryReporter
from otel_xray_collector.forward.upload import (
    Unprocessed,
    UploadFailure,
    XRayUploader,
    resolve_region,
)

from otel_xray.logs import RateLimitedLog

logger = logging.getLogger("otel_xray_collector.forward")

#: PutTraceSegments takes at most 50 documents; the daemon sends batches of that size.
MAX_BATCH = 50
PROTOCOLS = ("segments", "otlp", "auto")
COUNTER_NAMES = (
    "received",  # documents offered
    "sent",  # documents X-Ray accepted
    "spillover",  # documents dropped because the buffer was full (oldest first)
    "dropped",  # documents lost to a failed upload (permanent error, retries used up, shutdown)
    "rejected",  # documents X-Ray refused in UnprocessedTraceSegments
    "backend_errors",  # requests that failed (every attempt counts)
    "retries",  # requests sent again after a failure or a partial answer
    "backend_throttled",
    "backend_5xx",
    "backend_4xx",
    "backend_timeouts",
    "backend_connection_errors",
    "backend_other_errors",
    "backend_connection_refused",  # also in backend_connection_errors
    "backend_unknown_host",  # also in backend_connection_errors
    # forwarding over OTLP
    "otlp_batches",  # requests X-Ray's OTLP endpoint accepted
    "otlp_spans_sent",  # spans in them, less the ones it refused
    "otlp_spans_failed",  # spans in requests that failed for good (their documents: dropped)
    "otlp_spans_rejected",  # spans refused in a partial success (also counted in rejected)
    "otlp_retries",  # requests sent again after 429 / 5xx / no answer
    "otlp_spans_trimmed",  # spans over 200 KB cut down to fit (stack traces, metadata first)
    "otlp_spans_too_large",  # spans that still did not fit: not sent (also in rejected)
    "otlp_documents_in_progress",  # unfinished segments: not sent, the complete one follows
    "otlp_documents_invalid",  # documents that cannot become spans (also in rejected)
    "otlp_unknown_service",  # subsegments whose segment never came: sent as unknown_service
    # auto: GetTraceSegmentDestination
    "destination_checks",
    "destination_errors",
    # PutTelemetryRecords
    "telemetry_records_sent",
    "telemetry_errors",
)
_FAILURE_COUNTERS = {
    "throttled": "backend_throttled",
    "http_5xx": "backend_5xx",
    "http_4xx": "backend_4xx",
    "timeout": "backend_timeouts",
    "connection": "backend_connection_errors",
    "connection_refused": "backend_connection_refused",
    "unknown_host": "backend_unknown_host",
}
_CONNECTION_REASONS = frozenset({"connection_refused", "unknown_host"})


class Forwarder:
    """Batches documents to ``PutTraceSegments`` or X-Ray's OTLP endpoint with backoff, bounded
    memory and counters.

    Options (keyword): ``protocol`` (``segments`` | ``otlp`` | ``auto``),
    ``destination_interval`` (s between GetTraceSegmentDestination calls for ``auto``),
    ``telemetry_interval`` (s between PutTelemetryRecords; None = off), ``telemetry_identity``
    (``EC2InstanceId``/``Hostname``/``ResourceARN``), ``local_counts`` (the collector's own
    ``rejected`` and ``spillover`` totals, which telemetry adds as the daemon counts them),
    ``otlp_batch_documents`` (documents taken
    per OTLP batch), ``otlp_max_spans`` / ``otlp_max_request_bytes`` / ``otlp_max_span_bytes``
    (X-Ray's limits by default), ``otlp_subsegment_hold`` (s an independent subsegment waits for
    its segment, which names its service) and ``otlp_max_waiting`` (documents waiting so at
    most), ``batch_size`` (≤ 50), ``flush_interval`` (s, 1.0 like the
    daemon),
    ``max_buffered_documents``, ``max_buffered_bytes``, ``concurrency`` (sender threads),
    ``max_retries`` (per request, for throttling / 5xx / connection errors),
    ``max_unprocessed_retries`` (resends of documents listed in ``UnprocessedTraceSegments``),
    ``backoff_base`` / ``backoff_max`` (s), ``request_timeout`` (s), ``session`` (a botocore
    session), and for tests ``sleep``, ``clock``, ``jitter`` (uniform in [0, 1)).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        batch_size: int = MAX_BATCH,
        flush_interval: float = 1.0,
        max_buffered_documents: int = 10000,
        max_buffered_bytes: int = 32 * 1024 * 1024,
        concurrency: int = 2,
        max_retries: int = 5,
        max_unprocessed_retries: int = 2,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        request_timeout: float = 5.0,
        protocol: str = "segments",
        destination_interval: float = 300.0,
        telemetry_interval: float | None = None,
        telemetry_identity: Mapping[str, str] | None = None,
        local_counts: Callable[[], Mapping[str, int]] | None = None,
        otlp_batch_documents: int = 1000,
        otlp_max_spans: int = MAX_SPANS_PER_REQUEST,
        otlp_max_request_bytes: int = MAX_REQUEST_BYTES,
        otlp_max_span_bytes: int = MAX_SPAN_BYTES,
        otlp_subsegment_hold: float = 10.0,
        otlp_max_waiting: int = 10_000,
        session: Any = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = _uniform,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if max_buffered_documents < 1 or max_buffered_bytes < 1 or concurrency < 1:
            raise ValueError("buffer sizes and concurrency must be positive")
        self.region = resolve_region(region, endpoint_url)
        session = session if session is not None else botocore.session.get_session()
        self._uploader = XRayUploader(
            endpoint_url,
            self.region,
            request_timeout=request_timeout,
            max_pool_connections=max(concurrency, 2),
            session=session,
        )
        self.endpoint_url = self._uploader.endpoint_url
        self.protocol = protocol
        self._active = "otlp" if protocol == "otlp" else "segments"
        self._destination: dict[str, str] | None = None
        self._destination_interval = destination_interval
        self._otlp_batch_documents = otlp_batch_documents
        self._otlp_subsegment_hold = otlp_subsegment_hold
        self._telemetry_interval = telemetry_interval
        self._telemetry = TelemetryReporter(self._uploader.put_telemetry, telemetry_identity or {})
        self._telemetry_lock = threading.Lock()
        self._local_counts = local_counts
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_documents = max_buffered_documents
        self._max_bytes = max_buffered_bytes
        self._concurrency = concurrency
        self._max_retries = max_retries
        self._max_unprocessed_retries = max_unprocessed_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._jitter = jitter
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._log = RateLimitedLog(logger, 60.0, clock)

        self._cond = threading.Condition()
        self._buffer: collections.deque[str] = collections.deque()
        self._buffered_bytes = 0
        self._in_flight = 0
        self._last_flush = clock()
        self._flush_requested = False
        self._stopping = threading.Event()
        self._deadline: float | None = None
        self._threads: list[threading.Thread] = []
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._otlp: OtlpForwarding | None = None
        self.otlp_url: str | None = None
        if protocol != "segments":
            self.otlp_url = otlp_traces_url(endpoint_url, self.region)
            sender = OtlpSender(
                self.otlp_url,
                self.region,
                request_timeout=max(request_timeout, 10.0),
                max_pool_connections=max(concurrency, 2),
                session=session,
            )
            self._otlp = OtlpForwarding(
                sender,
                OtlpLimits(otlp_max_spans, otlp_max_request_bytes, otlp_max_span_bytes),
                count=self._count,
                count_failure=self._count_failure,
                backoff=self._backoff,
                log=self._log,
                clock=clock,
                max_retries=max_retries,
                subsegment_hold=otlp_subsegment_hold,
                max_waiting=otlp_max_waiting,
            )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("Forwarder already started")
        for index in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"xray-forwarder-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._housekeeper = threading.Thread(
            target=self._housekeeping, name="xray-forwarder-housekeeping", daemon=True
        )
        self._housekeeper.start()
        if self.protocol == "segments":
            where = f"with PutTraceSegments to {self.endpoint_url}"
        elif self.protocol == "otlp":
            where = f"over OTLP to {self.otlp_url}"
        else:
            where = (
                f"to {self.endpoint_url}: PutTraceSegments, or OTLP to {self.otlp_url} when "
                "GetTraceSegmentDestination says CloudWatchLogs"
            )
        logger.info("forwarding to AWS X-Ray %s (region %s)", where, self.region)

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is buffered within ``timeout`` seconds; what is left is counted as dropped."""
        with self._cond:
            if self._stopping.is_set():
                return
            self._deadline = self._clock() + timeout
            self._stopping.set()
            self._cond.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        self._release_waiting(final=True)
        with self._cond:
            left = len(self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
            self._counters["dropped"] += left
        if left:
            logger.warning("stopped with %d documents not forwarded to AWS X-Ray", left)
        housekeeper = getattr(self, "_housekeeper", None)
        if housekeeper is not None:
            housekeeper.join(max(0.0, end - time.monotonic()))
        if self._telemetry_interval is not None:
            self.send_telemetry()  # the daemon's final push
        self._uploader.close()
        if self._otlp is not None:
            self._otlp.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything buffered now, without waiting for the interval (subsegments waiting
        for their segment included); True when done."""
        end = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            try:
                while self._buffer or self._in_flight:
                    remaining = end - time.monotonic()
                    if remaining <= 0 or not any(t.is_alive() for t in self._threads):
                        return False
                    self._cond.wait(remaining)
            finally:
                self._flush_requested = False
        self._release_waiting(final=True)
        return True

    # --- ingest side ------------------------------------------------------------------------

    def offer(self, document: str) -> None:
        """Queue one segment document (JSON text). Never blocks on the network; thread-safe."""
        size = len(document)
        with self._cond:
            self._counters["received"] += 1
            if self._stopping.is_set():
                self._counters["dropped"] += 1
                return
            if size > self._max_bytes:
                self._counters["spillover"] += 1
                spilled = 1
            else:
                spilled = 0
                buffer = self._buffer
                while buffer and (
                    len(buffer) >= self._max_documents
                    or self._buffered_bytes + size > self._max_bytes
                ):
                    self._buffered_bytes -= len(buffer.popleft())
                    spilled += 1
                buffer.append(document)
                self._buffered_bytes += size
                self._counters["spillover"] += spilled
                if len(buffer) == 1 or len(buffer) >= self._current_batch_size():
                    self._cond.notify()
        if spilled:
            self._log.log(
                logging.WARNING,
                "forwarding buffer full: dropped the oldest %d documents "
                "(AWS X-Ray is slower than the incoming segments)",
                spilled,
                key="spillover",
            )

    def counters(self) -> dict[str, Any]:
        """Flat counters (``COUNTER_NAMES``), what is buffered, the protocol in use and, for
        ``auto``, the last GetTraceSegmentDestination answer."""
        with self._cond:
            counters: dict[str, Any] = dict(self._counters)
            counters["buffered"] = len(self._buffer)
            counters["buffered_bytes"] = self._buffered_bytes
            counters["protocol"] = self._active
            counters["destination"] = dict(self._destination) if self._destination else None
        counters["otlp_documents_waiting"] = self._otlp.waiting if self._otlp is not None else 0
        return counters

    @property
    def active_protocol(self) -> str:
        """``segments`` or ``otlp``: how the next batch goes."""
        with self._cond:
            return self._active

    # --- auto: where does this account keep traces? -----------------------------------------

    def refresh_destination(self) -> str:
        """Ask ``GetTraceSegmentDestination`` and switch protocol if the answer says so; on a
        failure keep the last answer. Returns the protocol in use afterwards."""
        try:
            destination, status = self._uploader.get_destination()
        except UploadFailure as failure:
            with self._cond:
                self._counters["destination_checks"] += 1
                self._counters["destination_errors"] += 1
                active = self._active
                self._cond.notify_all()
            self._log.log(
                logging.WARNING,
                "GetTraceSegmentDestination failed (%s); still forwarding with %s",
                failure.detail,
                "OTLP" if active == "otlp" else "PutTraceSegments",
                key="destination",
            )
            return active
        wanted = "otlp" if destination == CLOUDWATCH_LOGS else "segments"
        with self._cond:
            previous = self._active
            self._active = wanted
            self._destination = {"Destination": destination, "Status": status}
            self._counters["destination_checks"] += 1
            self._cond.notify_all()
        if previous != wanted:
            logger.info(
                "GetTraceSegmentDestination: %s (%s); forwarding with %s from now on",
                destination or "(none)",
                status or "no status",
                f"OTLP to {self.otlp_url}" if wanted == "otlp" else "PutTraceSegments",
            )
        return wanted

    def wait_for_destination_checks(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` GetTraceSegmentDestination calls have completed (tests)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._counters["destination_checks"] >= count, timeout
            )

    # --- PutTelemetryRecords ----------------------------------------------------------------

    def send_telemetry(self) -> bool:
        """Close the current interval into a record and send what is queued; True if nothing
        is left waiting. Called every ``telemetry_interval`` and once more at stop."""
        with self._telemetry_lock:
            with self._cond:
                snapshot = {name: self._counters[name] for name in COUNTER_NAMES}
            if self._local_counts is not None:
                # What the collector refused or dropped before it reached the forwarder: the
                # daemon counts those datagrams as received, and as rejected or spilled over.
                local = self._local_counts()
                rejected, spillover = local.get("rejected", 0), local.get("spillover", 0)
                snapshot["received"] += rejected + spillover
                snapshot["rejected"] += rejected
                snapshot["spillover"] += spillover
            self._telemetry.roll(snapshot)
            queued = self._telemetry.queued
            failure = self._telemetry.send()
            sent = queued - self._telemetry.queued
        if sent:
            self._count(telemetry_records_sent=sent)
        if failure is not None:
            self._count(telemetry_errors=1)
            self._count_failure(failure, "PutTelemetryRecords")
            return False
        return True

    def _housekeeping(self) -> None:
        clock = self._clock
        next_destination = clock() if self.protocol == "auto" else float("inf")
        interval = self._telemetry_interval
        next_telemetry = clock() + interval if interval is not None else float("inf")
        # Subsegments waiting for their segment are given up on even when no batch comes.
        tick = min(1.0, self._otlp_subsegment_hold) if self._otlp is not None else float("inf")
        next_release = clock() + tick
        while True:
            wait = min(next_destination, next_telemetry, next_release) - clock()
            if wait == float("inf"):
                self._stopping.wait()
                return
            if self._stopping.wait(max(0.0, wait)):
                return
            now = clock()
            try:
                if now >= next_destination:
                    next_destination = now + self._destination_interval
                    self.refresh_destination()
                if interval is not None and now >= next_telemetry:
                    next_telemetry = now + interval
                    self.send_telemetry()
                if now >= next_release:
                    next_release = now + tick
                    self._release_waiting(final=False)
            except Exception:  # a bug here must not stop the checks for good
                logger.exception("forwarder housekeeping failed")

    # --- sender threads ---------------------------------------------------------------------

    def _current_batch_size(self) -> int:
        return self._batch_size if self._active == "segments" else self._otlp_batch_documents

    def _next_batch(self) -> tuple[str, list[str]] | None:
        """Wait until a batch is due (full, interval over, flush or stop); None when stopping.
        Returns the protocol to send it with and the documents."""
        with self._cond:
            while True:
                buffer = self._buffer
                batch_size = self._current_batch_size()
                if buffer:
                    due = (
                        len(buffer) >= batch_size
                        or self._flush_requested
                        or self._stopping.is_set()
                        or self._clock() - self._last_flush >= self._flush_interval
                    )
                    if due:
                        count = min(batch_size, len(buffer))
                        batch = [buffer.popleft() for _ in range(count)]
                        self._buffered_bytes -= sum(len(doc) for doc in batch)
                        self._in_flight += 1
                        self._last_flush = self._clock()
                        return self._active, batch
                    wait: float | None = self._flush_interval - (self._clock() - self._last_flush)
                elif self._stopping.is_set():
                    return None
                else:
                    wait = None
                self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            due = self._next_batch()
            if due is None:
                return
            protocol, batch = due
            try:
                if protocol == "otlp" and self._otlp is not None:
                    self._otlp.send(batch)
                else:
                    self._send(batch)
            except Exception:  # a bug here must not silently stop forwarding
                logger.exception("unexpected error while forwarding a batch; batch dropped")
                self._count(dropped=len(batch))
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _send(self, batch: list[str]) -> None:
        pending = batch
        failures = 0
        partial_rounds = 0
        attempt = 0
        while True:
            try:
                unprocessed = self._uploader.put(pending)
            except UploadFailure as failure:
                failures += 1
                self._count_failure(failure)
                if not failure.retryable or failures > self._max_retries:
                    self._give_up(pending, failure, failures)
                    return
                attempt += 1
                if not self._backoff(attempt):
                    self._give_up(pending, failure, failures, shutting_down=True)
                    return
                self._count(retries=1)
                continue
            retry = self._sort_unprocessed(pending, unprocessed)
            self._count(sent=max(0, len(pending) - len(unprocessed)))
            logger.debug(
                "sent %d segments to AWS X-Ray, %d unprocessed", len(pending), len(unprocessed)
            )
            if not retry:
                return
            partial_rounds += 1
            if partial_rounds > self._max_unprocessed_retries or not self._backoff(attempt + 1):
                self._count(rejected=len(retry))
                self._log.log(
                    logging.ERROR,
                    "AWS X-Ray still left %d documents unprocessed after %d resends; dropped",
                    len(retry),
                    partial_rounds - 1,
                    key="unprocessed-final",
                )
                return
            attempt += 1
            self._count(retries=1)
            pending = retry

    def _sort_unprocessed(self, pending: list[str], unprocessed: list[Unprocessed]) -> list[str]:
        """Documents worth resending; the others are counted as rejected and logged."""
        if not unprocessed:
            return []
        by_id = _documents_by_id(pending) if any(u.retryable for u in unprocessed) else {}
        retry: list[str] = []
        for entry in unprocessed:
            document = by_id.get(entry.segment_id or "")
            if entry.retryable and document is not None:
                retry.append(document)
                continue
            self._count(rejected=1)
            self._log.log(
                logging.ERROR,
                "AWS X-Ray rejected segment %s: %s %s",
                entry.segment_id or "(no id)",
                entry.error_code,
                entry.message,
                key=f"unprocessed:{entry.error_code}",
            )
        return retry

    def _backoff(self, attempt: int, retry_after: float | None = None) -> bool:
        """Exponential backoff with jitter (half fixed, half random), or the server's
        ``Retry-After`` when it asked for longer; False if stop cuts it off."""
        ceiling = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        deadline = self._deadline
        if deadline is not None and self._clock() + delay > deadline:
            return False
        self._sleep(delay)
        return True

    def _interruptible_sleep(self, delay: float) -> None:
        # stop() wakes a sleeping sender so the remaining time goes to sending, not waiting.
        self._stopping.wait(delay)

    def _give_up(
        self, pending: list[str], failure: UploadFailure, attempts: int, shutting_down: bool = False
    ) -> None:
        self._count(dropped=len(pending))
        self._log.log(
            logging.ERROR,
            "sending a batch of %d segments to AWS X-Ray failed (%s): %s",
            len(pending),
            failure.given_up_because(attempts, shutting_down),
            failure.detail,
            key=f"failed:{failure.reason}",
        )

    def _count_failure(self, failure: UploadFailure, what: str = "upload") -> None:
        name = _FAILURE_COUNTERS.get(failure.reason, "backend_other_errors")
        increments = {"backend_errors": 1, name: 1}
        if failure.reason in _CONNECTION_REASONS:
            increments["backend_connection_errors"] = 1
        self._count(**increments)
        self._log.log(
            logging.WARNING,
            "AWS X-Ray %s attempt failed (%s): %s",
            what,
            failure.reason,
            failure.detail,
            key=f"attempt:{what}:{failure.reason}",
        )

    def _release_waiting(self, final: bool) -> None:
        """Send the subsegments waiting for their segment that are due (all when ``final``).
        Counted as in flight so that ``flush`` waits for a release running on another thread."""
        if self._otlp is None or not self._otlp.waiting:
            return
        with self._cond:
            self._in_flight += 1
        try:
            self._otlp.release(final)
        except Exception:  # a bug here must not stop forwarding
            logger.exception("unexpected error while forwarding waiting subsegments")
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _count(self, **increments: int) -> None:
        with self._cond:
            for name, value in increments.items():
                self._counters[name] += value


def _documents_by_id(documents: list[str]) -> dict[str, str]:
    """Segment id -> document text, to find what ``UnprocessedTraceSegments`` refers to."""
    by_id: dict[str, str] = {}
    for document in documents:
        try:
            parsed = json.loads(document)
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
            by_id[parsed["id"]] = document
    return by_id
