"""``PutTelemetryRecords``: the forwarder's health, per interval, as the X-Ray daemon reports it.

The X-Ray console shows these per host (segments received, sent, spilled over, rejected, and the
backend connection errors by kind). Like the daemon: one record per interval, only once a
segment has arrived, at most 30 waiting (the oldest dropped), 10 per call, unsent records kept
for the next tick, and the same three identity fields on every call (empty when unknown).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping
from typing import Any

from otel_xray_collector.forward.upload import UploadFailure

QUEUE_LIMIT = 30
RECORDS_PER_CALL = 10

Put = Callable[[list[dict[str, Any]], dict[str, str]], None]


def telemetry_record(delta: Mapping[str, int], timestamp: float) -> dict[str, Any]:
    """One ``TelemetryRecord`` from the change in the forwarder's counters over an interval."""

    def get(name: str) -> int:
        return max(0, int(delta.get(name, 0)))

    refused = get("backend_connection_refused")
    unknown_host = get("backend_unknown_host")
    other_connection = max(0, get("backend_connection_errors") - refused - unknown_host)
    return {
        "Timestamp": timestamp,
        "SegmentsReceivedCount": get("received"),
        "SegmentsSentCount": get("sent"),
        "SegmentsSpilloverCount": get("spillover"),
        "SegmentsRejectedCount": get("rejected"),
        "BackendConnectionErrors": {
            "TimeoutCount": get("backend_timeouts"),
            "ConnectionRefusedCount": refused,
            "HTTPCode4XXCount": get("backend_4xx") + get("backend_throttled"),
            "HTTPCode5XXCount": get("backend_5xx"),
            "UnknownHostCount": unknown_host,
            "OtherCount": get("backend_other_errors") + other_connection,
        },
    }


class TelemetryReporter:
    """``roll`` closes an interval into a record; ``send`` delivers what is queued.

    Not thread-safe on its own: the forwarder calls it from one thread at a time.
    """

    def __init__(
        self,
        put: Put,
        identity: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._put = put
        self._identity = {
            "EC2InstanceId": identity.get("EC2InstanceId", ""),
            "Hostname": identity.get("Hostname", ""),
            "ResourceARN": identity.get("ResourceARN", ""),
        }
        self._clock = clock
        self._queue: collections.deque[dict[str, Any]] = collections.deque(maxlen=QUEUE_LIMIT)
        self._last: dict[str, int] = {}
        self.records_sent = 0

    def roll(self, counters: Mapping[str, int]) -> None:
        if not counters.get("received"):
            return  # the daemon reports nothing until the first segment arrives
        delta = {name: int(value) - self._last.get(name, 0) for name, value in counters.items()}
        self._last = {name: int(value) for name, value in counters.items()}
        self._queue.append(telemetry_record(delta, self._clock()))

    def send(self) -> UploadFailure | None:
        """Send every queued record, 10 per call; on a failure keep the rest for next time."""
        while self._queue:
            chunk = [self._queue[index] for index in range(min(RECORDS_PER_CALL, len(self._queue)))]
            try:
                self._put(chunk, dict(self._identity))
            except UploadFailure as failure:
                return failure
            for _ in chunk:
                self._queue.popleft()
            self.records_sent += len(chunk)
        return None

    @property
    def queued(self) -> int:
        return len(self._queue)
