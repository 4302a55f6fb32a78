"""The trace-aware span processor: a request's segment leaves when the request ends.

The X-Ray SDK sends a segment the moment its request ends. OpenTelemetry's
``BatchSpanProcessor`` holds spans for up to 5 s and, since Python's default SIGTERM action
skips ``atexit``, loses them whenever a process is stopped right after serving (every rollout).
:class:`XRaySpanProcessor` gives OpenTelemetry the SDK's delivery semantics:

* the application thread only appends the ended span to a bounded queue (full: the span is
  dropped, counted and logged once) and, when the span is a *local root* (no parent, or a
  remote one) or a straggler whose root already ended, wakes the sender;
* the sender thread hands the root together with the children that ended before it to the
  exporter, which embeds them as it always does (``otel_xray.encode.pack``), so the whole
  segment is one datagram, milliseconds after the response;
* children ending after their root (work handed to threads or tasks) go out on their own, as
  independent subsegments, as soon as they end;
* a root that stays open (streaming responses, websockets, batch jobs) has its finished
  children streamed once more than ``streaming_threshold`` are held, like the X-Ray SDK's
  ``streaming_threshold`` (default 30), so memory stays bounded.

There is no timer. ``synchronous=True`` (the default on Lambda, where the process is frozen as
soon as the handler returns) does the sender's work on the thread that ended the span, so the
function's spans are sent before the invocation returns. After ``os.fork()`` the child gets an
empty queue and its own sender thread (gunicorn and multiprocessing workers).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_xray.counting import Counted
from otel_xray.logs import RateLimitedLog

_logger = logging.getLogger("otel_xray.processor")

#: Spans held in the queue at most (ended spans not yet handed to the exporter).
DEFAULT_MAX_QUEUE_SIZE = 2048
#: Finished children held for an open root before they are streamed (the X-Ray SDK's default).
DEFAULT_STREAMING_THRESHOLD = 30


@dataclass
class ProcessorCounters:
    """Running totals since the processor was created (a snapshot when read via ``counters``).

    ``spans_received`` counts ended sampled spans taken from the queue by the sender;
    ``dropped_queue_full`` those refused because the queue was full (never exported);
    ``spans_streamed`` the children of a still-open root sent ahead of it;
    ``exports``/``export_failures`` the exporter calls and those that reported a failure
    (what was lost there is in the exporter's own counters); ``dropped_after_shutdown`` the
    spans that ended after ``shutdown``.
    """

    spans_received: int = 0
    dropped_queue_full: int = 0
    spans_streamed: int = 0
    exports: int = 0
    export_failures: int = 0
    dropped_after_shutdown: int = 0


class XRaySpanProcessor(Counted[ProcessorCounters], SpanProcessor):
    """Send each local root's segment (children embedded) as soon as the root ends.

    ``exporter`` is normally :class:`otel_xray.exporter.XRayUdpSpanExporter`; any
    ``SpanExporter`` works (it receives whole traces where possible, one call per wake-up).
    ``max_queue_size`` bounds the ended spans waiting for the sender (and those held for open
    roots); ``streaming_threshold`` is how many finished children an open root may hold before
    they are sent on their own; ``synchronous`` exports on the ending thread instead of a
    background one (Lambda).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        streaming_threshold: int = DEFAULT_STREAMING_THRESHOLD,
        synchronous: bool = False,
    ) -> None:
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be at least 1, not {max_queue_size}")
        if streaming_threshold < 0:
            raise ValueError(f"streaming_threshold must be >= 0, not {streaming_threshold}")
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.streaming_threshold = streaming_threshold
        self.synchronous = synchronous
        # The sender wakes when this many spans wait, even without a root ending: children of
        # long-open roots must reach the streaming check before the queue fills.
        self._wake_size = max(1, min(max_queue_size // 2, streaming_threshold + 1))
        self._shutdown = False
        self._init_counters(ProcessorCounters())
        self._init_state()
        if not synchronous:
            self._start_sender()

    # -- state ---------------------------------------------------------------------------

    def _init_state(self) -> None:
        """Everything a process must own alone: made at creation and again after fork."""
        self._queue: deque[ReadableSpan] = deque()
        #: trace id -> local roots of that trace started and not yet ended (app threads).
        self._open: dict[int, int] = {}
        self._open_lock = threading.Lock()
        #: trace id -> finished spans held for a root that is still open (sender only).
        self._held: dict[int, list[ReadableSpan]] = {}
        self._held_count = 0
        self._wakeup = threading.Event()
        self._wake = self._wakeup.set
        self._awake = self._wakeup.is_set
        self._flush_cond = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._process_lock = threading.Lock()  # one drain at a time (sender, flush fallback)
        self._drop_log = RateLimitedLog(_logger, math.inf)  # once (per process)
        self._sender: threading.Thread | None = None

    def _start_sender(self) -> None:
        thread = threading.Thread(target=self._run, name="otel-xray-sender", daemon=True)
        self._sender = thread
        thread.start()

    def _after_fork_in_child(self) -> None:
        # The parent's queued spans are the parent's to send (it still will): the child starts
        # empty, with its own locks and its own sender thread.
        super()._after_fork_in_child()  # the counters' lock (registered by _init_counters)
        self._init_state()
        if not self.synchronous and not self._shutdown:
            self._start_sender()

    # -- the application threads' side ------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        context = span._context
        if context is None or not context[3] & 1:  # (trace_id, span_id, is_remote, flags...)
            return
        parent = span._parent
        if parent is None or parent[2]:
            trace_id = context[0]
            with self._open_lock:
                self._open[trace_id] = self._open.get(trace_id, 0) + 1

    def on_end(self, span: ReadableSpan) -> None:
        context = span._context
        if context is None or not context[3] & 1:  # unsampled: recorded, never exported
            return
        if self._shutdown:
            self._add(dropped_after_shutdown=1)
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self._queue_full()
            return
        queue.append(span)
        parent = span._parent
        trace_id = context[0]
        if parent is None or parent[2]:
            with self._open_lock:
                left = self._open.get(trace_id, 1) - 1
                if left > 0:
                    self._open[trace_id] = left
                else:
                    self._open.pop(trace_id, None)
            self._notify()
        elif trace_id not in self._open or len(queue) >= self._wake_size:
            self._notify()

    def _notify(self) -> None:
        if self.synchronous:
            self._process(flush=False)
        elif not self._awake():
            # ``Event.set`` takes the event's lock and notifies even when it is already set,
            # which it is for every request but the first of a burst (the sender gets the GIL
            # only every few ms): reading the flag first saves ~1.5 µs per request. Nothing is
            # missed: the span was appended before the read, and a set flag means the sender
            # has yet to clear it, so its next drain (which follows the clear) takes the span.
            self._wake()

    def _queue_full(self) -> None:
        self._add(dropped_queue_full=1)
        self._drop_log.warning(
            "The span queue is full (%d spans): spans are being dropped. Further drops are"
            " only counted (processor.counters.dropped_queue_full); raise"
            " OTEL_XRAY_MAX_QUEUE_SIZE if the X-Ray daemon cannot keep up with bursts.",
            self.max_queue_size,
        )

    # -- the sender's side -------------------------------------------------------------------

    def _run(self) -> None:
        wait = self._wakeup.wait
        clear = self._wakeup.clear
        while True:
            wait()
            clear()  # before draining: a span appended after this wakes the next round
            requested = self._flush_requested
            stopping = self._shutdown
            self._process(flush=requested > self._flush_done or stopping)
            if requested > self._flush_done:
                with self._flush_cond:
                    self._flush_done = requested
                    self._flush_cond.notify_all()
            if stopping:
                return

    def _process(self, flush: bool) -> None:
        """Take everything queued; export the finished traces (and, when ``flush``, all)."""
        with self._process_lock:
            ready = self._take(flush)
            if ready:
                self._export(ready)

    def _take(self, flush: bool) -> list[ReadableSpan]:
        queue = self._queue
        popleft = queue.popleft
        held = self._held
        is_open = self._open.__contains__
        threshold = self.streaming_threshold
        ready: list[ReadableSpan] = []
        received = streamed = 0
        while queue:
            span = popleft()
            received += 1
            trace_id = span._context[0]  # type: ignore[index]
            parent = span._parent
            if parent is None or parent[2]:  # a local root: its held children first, then it
                children = held.pop(trace_id, None)
                if children is not None:
                    self._held_count -= len(children)
                    ready.extend(children)
                ready.append(span)
            elif is_open(trace_id):
                group = held.get(trace_id)
                if group is None:
                    group = held[trace_id] = [span]
                else:
                    group.append(span)
                self._held_count += 1
                if len(group) > threshold:  # a long-open root: stream what it holds
                    del held[trace_id]
                    self._held_count -= len(group)
                    streamed += len(group)
                    ready.extend(group)
            else:  # its root ended already (or lives in another process): send it now
                ready.append(span)
        if flush or self._held_count >= self.max_queue_size:
            # Flushing, or too much held across all open roots: memory stays bounded.
            for group in held.values():
                ready.extend(group)
                if not flush:
                    streamed += len(group)
            held.clear()
            self._held_count = 0
        if received or streamed:
            self._add(spans_received=received, spans_streamed=streamed)
        return ready

    def _export(self, spans: list[ReadableSpan]) -> None:
        try:
            failed = self.exporter.export(spans) is not SpanExportResult.SUCCESS
        except Exception:  # never into the sender (or the app thread on Lambda)
            _logger.exception("Unexpected error exporting %d spans", len(spans))
            failed = True
        self._add(exports=1, export_failures=int(failed))

    # -- SpanProcessor contract ----------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every ended span (held children of open roots included) before returning;
        False when that did not finish within ``timeout_millis``."""
        sender = self._sender
        if self.synchronous or sender is None or not sender.is_alive():
            return self._process_with_timeout(timeout_millis)
        deadline = time.monotonic() + timeout_millis / 1000
        with self._flush_cond:
            self._flush_requested += 1
            target = self._flush_requested
            self._wake()
            return self._flush_cond.wait_for(
                lambda: self._flush_done >= target or not sender.is_alive(),
                max(0.0, deadline - time.monotonic()),
            ) and (self._flush_done >= target)

    def _process_with_timeout(self, timeout_millis: int) -> bool:
        if not self._process_lock.acquire(timeout=max(timeout_millis, 0) / 1000):
            return False
        try:
            ready = self._take(flush=True)
            if ready:
                self._export(ready)
        finally:
            self._process_lock.release()
        return True

    def shutdown(self) -> None:
        """Export what is queued and held, stop the sender, shut the exporter down. Spans
        ending afterwards are counted in ``dropped_after_shutdown``. Idempotent."""
        if self._shutdown:
            return
        self._shutdown = True
        sender = self._sender
        if sender is not None and sender.is_alive() and sender is not threading.current_thread():
            self._wake()
            sender.join(30)
        self._process_with_timeout(30_000)  # synchronous mode, or a sender that died
        self.exporter.shutdown()

    def __repr__(self) -> str:
        mode = "synchronous" if self.synchronous else "background"
        return f"XRaySpanProcessor({self.exporter!r}, {mode})"


__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_STREAMING_THRESHOLD",
    "ProcessorCounters",
    "XRaySpanProcessor",
]
