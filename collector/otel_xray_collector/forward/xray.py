"""Forwarding segment documents to AWS X-Ray (``PutTraceSegments``), as the X-Ray daemon does.

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
from collections.abc import Callable
from random import random as _uniform
from typing import Any

from otel_xray_collector.forward.upload import (
    Unprocessed,
    UploadFailure,
    XRayUploader,
    resolve_region,
)

logger = logging.getLogger("otel_xray_collector.forward")

#: PutTraceSegments takes at most 50 documents; the daemon sends batches of that size.
MAX_BATCH = 50
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
)
_FAILURE_COUNTERS = {
    "throttled": "backend_throttled",
    "http_5xx": "backend_5xx",
    "http_4xx": "backend_4xx",
    "timeout": "backend_timeouts",
    "connection": "backend_connection_errors",
}


class _OncePerPeriodLog:
    """Logs each reason at most once per period, saying how many were held back meanwhile.

    A broken network would otherwise print one line per batch, per second, per worker.
    """

    def __init__(self, clock: Callable[[], float], period: float = 60.0) -> None:
        self._clock = clock
        self._period = period
        self._last: dict[str, float] = {}
        self._held: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def log(self, level: int, reason: str, message: str, *args: Any) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self._period:
                self._held[reason] += 1
                return
            self._last[reason] = now
            held = self._held.pop(reason, 0)
        if held:
            message += " (%d similar messages held back)"
            args = (*args, held)
        logger.log(level, message, *args)


class Forwarder:
    """Batches documents to ``PutTraceSegments`` with backoff, bounded memory and counters.

    Options (keyword): ``batch_size`` (≤ 50), ``flush_interval`` (s, 1.0 like the daemon),
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
        session: Any = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = _uniform,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if max_buffered_documents < 1 or max_buffered_bytes < 1 or concurrency < 1:
            raise ValueError("buffer sizes and concurrency must be positive")
        self.region = resolve_region(region, endpoint_url)
        self._uploader = XRayUploader(
            endpoint_url,
            self.region,
            request_timeout=request_timeout,
            max_pool_connections=max(concurrency, 2),
            session=session,
        )
        self.endpoint_url = self._uploader.endpoint_url
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
        self._log = _OncePerPeriodLog(clock)

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

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("Forwarder already started")
        for index in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"xray-forwarder-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info(
            "forwarding segments to AWS X-Ray at %s (region %s)", self.endpoint_url, self.region
        )

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
        with self._cond:
            left = len(self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
            self._counters["dropped"] += left
        if left:
            logger.warning("stopped with %d documents not forwarded to AWS X-Ray", left)
        self._uploader.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything buffered now, without waiting for the interval; True when done."""
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
                return True
            finally:
                self._flush_requested = False

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
                if len(buffer) == 1 or len(buffer) >= self._batch_size:
                    self._cond.notify()
        if spilled:
            self._log.log(
                logging.WARNING,
                "spillover",
                "forwarding buffer full: dropped the oldest %d documents "
                "(AWS X-Ray is slower than the incoming segments)",
                spilled,
            )

    def counters(self) -> dict[str, int]:
        with self._cond:
            counters = dict(self._counters)
            counters["buffered"] = len(self._buffer)
            counters["buffered_bytes"] = self._buffered_bytes
        return counters

    # --- sender threads ---------------------------------------------------------------------

    def _next_batch(self) -> list[str] | None:
        """Wait until a batch is due (full, interval over, flush or stop); None when stopping."""
        with self._cond:
            while True:
                buffer = self._buffer
                if buffer:
                    due = (
                        len(buffer) >= self._batch_size
                        or self._flush_requested
                        or self._stopping.is_set()
                        or self._clock() - self._last_flush >= self._flush_interval
                    )
                    if due:
                        count = min(self._batch_size, len(buffer))
                        batch = [buffer.popleft() for _ in range(count)]
                        self._buffered_bytes -= sum(len(doc) for doc in batch)
                        self._in_flight += 1
                        self._last_flush = self._clock()
                        return batch
                    wait: float | None = self._flush_interval - (self._clock() - self._last_flush)
                elif self._stopping.is_set():
                    return None
                else:
                    wait = None
                self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
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
                    "unprocessed-final",
                    "AWS X-Ray still left %d documents unprocessed after %d resends; dropped",
                    len(retry),
                    partial_rounds - 1,
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
                f"unprocessed:{entry.error_code}",
                "AWS X-Ray rejected segment %s: %s %s",
                entry.segment_id or "(no id)",
                entry.error_code,
                entry.message,
            )
        return retry

    def _backoff(self, attempt: int) -> bool:
        """Exponential backoff with jitter (half fixed, half random); False if stop cuts it off."""
        ceiling = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
        delay = ceiling / 2 + self._jitter() * ceiling / 2
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
        why = (
            "shutting down"
            if shutting_down
            else ("permanent error" if not failure.retryable else f"{attempts} attempts")
        )
        self._log.log(
            logging.ERROR,
            f"failed:{failure.reason}",
            "sending a batch of %d segments to AWS X-Ray failed (%s): %s",
            len(pending),
            why,
            failure.detail,
        )

    def _count_failure(self, failure: UploadFailure) -> None:
        name = _FAILURE_COUNTERS.get(failure.reason, "backend_other_errors")
        self._count(backend_errors=1, **{name: 1})
        self._log.log(
            logging.WARNING,
            f"attempt:{failure.reason}",
            "AWS X-Ray upload attempt failed (%s): %s",
            failure.reason,
            failure.detail,
        )

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
