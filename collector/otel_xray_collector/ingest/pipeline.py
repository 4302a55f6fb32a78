"""The ingest thread: bounded queues in, validated documents committed in batches out.

Three sources feed it: UDP (no acknowledgement, so bounded memory that drops the *oldest*
datagrams when its byte budget is spent, like the daemon), and PutTraceSegments / OTLP
documents (the caller waits until its documents are committed, so those are never dropped;
when too many are waiting the caller is told to back off). UDP arrives either as frames of
documents the receiver process already validated and packed (``put_frame``; the budget is
enforced in that process) or as raw datagrams from an in-process receiver (``put_datagrams``;
the budget is enforced here).

One thread owns the SQLite writer: it drains everything queued, validates, writes one
transaction, then acknowledges, forwards, and uses idle moments to index and enforce
retention. Batching is what makes SQLite fast here: the larger the backlog, the larger the
transaction, so throughput grows with load instead of collapsing.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from otel_xray.logs import OutageLog, RateLimitedLog

from ..documents import Accepted, PackedDocuments, pack, unpack
from ..priority import make_current_thread_background
from ..store.protocol import SegmentWriter, StoreUnreachable
from .frames import Frame
from .otlp_udp import COUNTERS as OTLP_UDP_COUNTERS
from .otlp_udp import Noted, parse_datagram_body
from .pacing import IngestPacing
from .validate import Outcome, Rejected, check_dict, parse_body, split_datagram

_logger = logging.getLogger("otel_xray_collector.ingest")

MAX_BATCH = 8192  # documents per transaction; also what put_frame lets wait here
INDEX_CHUNK = 500
INDEX_WHEN_QUEUE_BELOW = 256  # indexing yields to writing while datagrams wait
LOG_EVERY_SECONDS = 60.0


class Forwarding(Protocol):
    def offer(self, document: str) -> None: ...


class ReceiverCounters(Protocol):
    """What a receiver process reports about the datagrams it holds or dropped."""

    @property
    def spillover(self) -> int: ...

    @property
    def queued_datagrams(self) -> int: ...

    @property
    def queued_bytes(self) -> int: ...


class Busy(RuntimeError):
    """Too many acknowledged submissions are waiting; the caller should retry later."""


@dataclass
class _Submission:
    accepted: list[Accepted]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class IngestPipeline:
    def __init__(
        self,
        store: SegmentWriter | None,
        forwarder: Forwarding | None = None,
        buffer_bytes: int = 64 * 1024 * 1024,
        max_waiting_documents: int = 100_000,
        retention_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.forwarder = forwarder
        self._budget = buffer_bytes
        self._max_waiting = max_waiting_documents
        self._retention_interval = retention_interval
        self._next_retention = time.monotonic() + 1.0
        self._datagrams: collections.deque[bytes] = collections.deque()
        self._submissions: collections.deque[_Submission] = collections.deque()
        self._frames: collections.deque[Frame] = collections.deque()
        self._frame_room = threading.Condition()
        self._receiver: ReceiverCounters | None = None
        self._receiver_spilled = 0  # ingest thread: last spillover count seen (for the log)
        self._waiting_docs = 0
        self._lock = threading.Lock()  # guards _waiting_docs and rejected (many writers)
        self._wake = threading.Event()
        self._urgent = threading.Event()  # ends a group-commit wait: submissions, full, stop
        self._frame_documents = 0
        self._pacing = IngestPacing()
        self._idle = threading.Condition()
        self._stopping = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="otel-xray-ingest", daemon=True)
        self._log = RateLimitedLog(_logger, LOG_EVERY_SECONDS)
        self._outage = OutageLog(_logger, "store writes", LOG_EVERY_SECONDS)
        # Each counter has one writing thread, so no lock is needed (reads may lag slightly).
        self._bytes_in = 0  # receiver thread
        self._spilled_bytes = 0  # receiver thread
        self._spilled = 0  # receiver thread
        self._bytes_out = 0  # ingest thread
        self.datagrams_processed = 0  # ingest thread
        self.accepted = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        #: What UDP datagrams yielded besides documents and rejections (ADOT's OTLP spans).
        self.noted: collections.Counter[str] = collections.Counter()
        self.store_errors = 0
        #: retention passes skipped because the store was unreachable (ingest thread)
        self.retention_unreachable = 0
        # a retention pass runs once a minute: its outage is the first line and the recovery
        # line, no counts in between
        self._retention_outage = OutageLog(_logger, "retention", math.inf, logging.WARNING)
        self.batches = 0

    # -- producers ---------------------------------------------------------------------------

    def put_datagrams(self, datagrams: list[bytes]) -> None:
        """Called by the UDP thread. Never blocks; evicts the oldest over the byte budget."""
        queue = self._datagrams
        was_empty = not queue
        queue.extend(datagrams)
        self._bytes_in += sum(len(d) for d in datagrams)
        while self._bytes_in - self._bytes_out - self._spilled_bytes > self._budget:
            try:
                dropped = queue.popleft()
            except IndexError:
                break
            self._spilled_bytes += len(dropped)
            self._spilled += 1
            self._reject_log("spillover", "ingest buffer full, dropping the oldest datagram")
        if was_empty:
            self._wake.set()

    def put_frame(self, frame: Frame) -> None:
        """Called by the receiver-process reader. Blocks while a transaction's worth of
        documents waits, so the backlog (and its drop-oldest budget) stays in the receiver."""
        with self._frame_room:
            while self._frame_documents >= MAX_BATCH and not self._stopped:
                self._frame_room.wait(1.0)
            self._frames.append(frame)
            self._frame_documents += frame.documents.total
            if self._frame_documents >= MAX_BATCH:
                self._urgent.set()
        self._wake.set()

    def attach_receiver(self, receiver: ReceiverCounters) -> None:
        """Report (and log) what a receiver process holds and drops as this pipeline's own."""
        self._receiver = receiver

    def put_documents(self, bodies: Sequence[bytes | str]) -> list[tuple[int, Rejected]]:
        """PutTraceSegments: returns (index, rejection) pairs once the rest is committed."""
        accepted: list[Accepted] = []
        rejected: list[tuple[int, Rejected]] = []
        for index, body in enumerate(bodies):
            raw = body.encode("utf-8") if isinstance(body, str) else body
            for outcome in parse_body(raw):
                if isinstance(outcome, Accepted):
                    accepted.append(outcome)
                else:
                    rejected.append((index, outcome))
                    self._count_reject(outcome)
        self._commit(accepted)
        return rejected

    def put_dicts(self, documents: Sequence[Any]) -> list[Rejected]:
        """OTLP receiver: validate segment dicts, return rejections after committing the rest."""
        outcomes: list[Outcome] = [check_dict(d) for d in documents]
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        rejected = [o for o in outcomes if isinstance(o, Rejected)]
        for outcome in rejected:
            self._count_reject(outcome)
        self._commit(accepted)
        return rejected

    def _commit(self, accepted: list[Accepted], timeout: float = 30.0) -> None:
        if not accepted:
            return
        if self._stopping:
            raise Busy("collector is shutting down")
        with self._lock:
            if self._waiting_docs + len(accepted) > self._max_waiting:
                raise Busy("too many documents waiting to be written")
            self._waiting_docs += len(accepted)
        submission = _Submission(accepted)
        self._submissions.append(submission)
        self._wake.set()
        self._urgent.set()
        if not submission.done.wait(timeout):
            raise Busy("timed out waiting for the store")
        if submission.error is not None:
            raise submission.error

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write everything queued, then stop the thread.

        Indexing is left to the next start (its to-do list is in the database), so shutdown
        takes only as long as writing the queue: at most ``buffer_bytes`` of datagrams.
        """
        self._stopping = True
        self._wake.set()
        self._urgent.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._frame_room:
            self._stopped = True
            self._frame_room.notify_all()

    def wait_processed(self, datagrams: int, timeout: float = 10.0) -> bool:
        """Block until ``datagrams`` UDP datagrams were handled and everything is indexed."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while not (self.datagrams_processed >= datagrams and self._caught_up()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _caught_up(self) -> bool:
        return (
            not self._datagrams
            and not self._submissions
            and not self._frames
            and (self.store is None or not self.store.has_pending())
        )

    # -- the ingest thread ------------------------------------------------------------------

    def _run(self) -> None:
        backgrounded = False
        while True:
            if self._receiver is not None and not backgrounded:
                backgrounded = make_current_thread_background()
            self._gather()
            worked = self._drain_once()
            if self._stopping:
                if not self._datagrams and not self._submissions and not self._frames:
                    break
                continue
            pause = 0.5
            if self.store is not None and self._backlog() < INDEX_WHEN_QUEUE_BELOW:
                delay = self._pacing.index_delay()
                if delay <= 0:
                    started = self._pacing.now()
                    if self._index_some():
                        self._pacing.indexed(started)
                        worked = True
                elif self.store.has_pending():
                    pause = delay
            self._maybe_enforce_retention()
            with self._idle:
                self._idle.notify_all()
            if not worked:
                self._wake.wait(pause)
                self._wake.clear()

    def _gather(self) -> None:
        """Group commit (see pacing.py), cut short by anything urgent: a waiting caller, a
        full batch, stop."""
        if not (self._frames or self._datagrams) or self._submissions or self._stopping:
            return
        delay = self._pacing.write_delay()
        if delay > 0 and len(self._datagrams) < MAX_BATCH:
            self._urgent.wait(delay)
        self._urgent.clear()

    def _backlog(self) -> int:
        """Datagrams waiting to be written (indexing yields to writing while there are many)."""
        waiting = len(self._datagrams) + sum(f.datagrams for f in list(self._frames))
        if self._receiver is not None:
            waiting += self._receiver.queued_datagrams
        return waiting

    def _drain_once(self) -> bool:
        frames = self._take_frames()
        taken = self._take_datagrams()
        submissions: list[_Submission] = []
        while self._submissions:
            submissions.append(self._submissions.popleft())
        self._note_receiver_spillover()
        if not taken and not submissions and not frames:
            self._pacing.wrote(0, udp=False)
            return False
        batches = [frame.documents for frame in frames]
        if taken:
            batches.append(self._parse_datagrams(taken))
        for submission in submissions:
            batches.append(pack(submission.accepted))
        count = sum(b.total for b in batches)
        self._pacing.wrote(count, udp=bool(taken or frames))
        error: BaseException | None = None
        if self.store is not None:
            try:
                self.store.write_packed(batches)
            except Exception as exc:  # disk full, locked file: keep running, tell the callers
                error = exc
                self.store_errors += 1
                self._store_error(f"writing {count} documents", exc, traceback=False)
            else:
                self._outage.recovered()
        if error is None:
            self.accepted += count
            self._forward(batches)
        self.batches += 1
        self.datagrams_processed += len(taken) + sum(f.datagrams for f in frames)
        for submission in submissions:
            with self._lock:
                self._waiting_docs -= len(submission.accepted)
            submission.error = error
            submission.done.set()
        return True

    def _take_frames(self) -> list[Frame]:
        frames: list[Frame] = []
        if not self._frames:
            return frames
        with self._frame_room:
            documents = 0
            while self._frames and documents < MAX_BATCH:
                frame = self._frames.popleft()
                frames.append(frame)
                documents += frame.documents.total
            self._frame_documents -= documents
            self._frame_room.notify_all()
        for frame in frames:
            for reason, (count, message) in frame.rejects.items():
                with self._lock:
                    self.rejected[reason] += count
                self._reject_log(reason, message, count)
            if frame.noted:
                with self._lock:
                    self.noted.update(frame.noted)
        return frames

    def _take_datagrams(self) -> list[bytes]:
        datagrams = self._datagrams
        taken: list[bytes] = []
        popleft = datagrams.popleft
        try:
            while len(taken) < MAX_BATCH:
                taken.append(popleft())
        except IndexError:
            pass
        return taken

    def _parse_datagrams(self, taken: list[bytes]) -> PackedDocuments:
        accepted: list[Accepted] = []
        for data in taken:
            self._bytes_out += len(data)
            body = split_datagram(data)
            if isinstance(body, Rejected):
                self._count_reject(body)
                continue
            for outcome in parse_datagram_body(body):
                if isinstance(outcome, Accepted):
                    accepted.append(outcome)
                elif isinstance(outcome, Noted):
                    with self._lock:
                        self.noted[outcome.counter] += outcome.number
                else:
                    self._count_reject(outcome)
        return pack(accepted)

    def _note_receiver_spillover(self) -> None:
        if self._receiver is None:
            return
        spilled = self._receiver.spillover
        if spilled > self._receiver_spilled:
            self._reject_log(
                "spillover",
                "ingest buffer full, dropping the oldest datagrams",
                spilled - self._receiver_spilled,
            )
            self._receiver_spilled = spilled

    def _reject_log(self, reason: str, message: str, count: int = 1) -> None:
        self._log.warning(
            "rejected segment document (%s): %s", reason, message, key=reason, count=count
        )

    def _forward(self, batches: list[PackedDocuments]) -> None:
        if self.forwarder is None:
            return
        for doc in (doc for batch in batches for doc in unpack(batch)):
            try:
                self.forwarder.offer(doc.body.decode("utf-8", "replace"))
            except Exception as exc:  # the forwarder must never stop local ingest
                _logger.error("forwarder rejected a document: %s", exc)

    def _index_some(self) -> bool:
        assert self.store is not None
        try:
            indexed = self.store.index_pending(INDEX_CHUNK)
        except Exception as exc:
            self.store_errors += 1
            self._store_error("indexing", exc, traceback=True)
            return False
        if indexed:  # a round that wrote (one with nothing to do may pass on a full disk)
            self._outage.recovered()
        return indexed > 0

    def _store_error(self, doing: str, exc: Exception, traceback: bool) -> None:
        """A store that cannot serve (an outage: every batch and every indexing round fails
        until it is back) is one line when it starts, a count once a minute and one line when
        a write succeeds again, not one per attempt; any other failure is logged each time
        (with its traceback when ``traceback``)."""
        if isinstance(exc, StoreUnreachable):
            self._outage.failed("%s failed: %s", doing, exc)
        elif traceback:
            _logger.exception("%s failed", doing)
        else:
            _logger.error("%s failed: %s", doing, exc)

    def _maybe_enforce_retention(self) -> None:
        """Every ``retention_interval``: the store's retention in force (read each pass, so a
        change through any collector of a shared store applies here), then the pass. An
        unreachable store is one line when the outage starts and one when it is over."""
        if self.store is None or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + self._retention_interval
        try:
            retention = self.store.retention()
            if retention.max_age_seconds or retention.max_bytes:
                self.store.enforce_retention(retention.max_age_seconds, retention.max_bytes)
        except StoreUnreachable as exc:
            self.store_errors += 1
            self.retention_unreachable += 1
            self._retention_outage.failed("retention skipped until the store is back: %s", exc)
            return
        except Exception:
            self.store_errors += 1
            _logger.exception("retention failed")
            return
        self._retention_outage.recovered()

    def _count_reject(self, rejected: Rejected) -> None:
        with self._lock:
            self.rejected[rejected.reason] += 1
        self._reject_log(rejected.reason, rejected.message)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            rejected = dict(self.rejected)
            noted = dict(self.noted)
        receiver = self._receiver
        frames = list(self._frames)
        return {
            "datagrams_processed": self.datagrams_processed,
            "accepted": self.accepted,
            "rejected": rejected,
            "rejected_total": sum(rejected.values()),
            "otlp_udp": {name: noted.get(name, 0) for name in OTLP_UDP_COUNTERS},
            "spillover": self._spilled + (receiver.spillover if receiver is not None else 0),
            "queued_datagrams": len(self._datagrams)
            + sum(f.datagrams for f in frames)
            + (receiver.queued_datagrams if receiver is not None else 0),
            "queued_bytes": self._bytes_in
            - self._bytes_out
            - self._spilled_bytes
            + sum(len(f.documents.blob) for f in frames)
            + (receiver.queued_bytes if receiver is not None else 0),
            "store_errors": self.store_errors,
            "retention_unreachable": self.retention_unreachable,
            "batches": self.batches,
            "stored_seq": self.store.stored_seq if self.store is not None else 0,
            "indexed_seq": self.store.indexed_seq if self.store is not None else 0,
        }
