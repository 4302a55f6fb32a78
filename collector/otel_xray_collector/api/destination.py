"""GetTraceSegmentDestination and UpdateTraceSegmentDestination: where segments "go".

On AWS the answer says whether an account keeps segments in X-Ray or, with Transaction Search,
in CloudWatch Logs; forwarders in ``auto`` mode (this collector's own, pointed at another
collector) send OTLP while it is ``CloudWatchLogs``. The collector stores everything it receives
either way: the destination is what the last Update set (``XRay`` until then), ``ACTIVE`` at once
(nothing to provision, where AWS says ``PENDING`` for a while), kept in the store's settings so
it survives restarts and every collector of a shared store answers the same (in memory with
``--no-store``; docs/decisions.md).
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import CLOUDWATCH_LOGS, TRACE_SEGMENT_DESTINATIONS, XRAY_DESTINATION
from ..store.protocol import Resources
from .errors import invalid_request
from .fields import Fields

ACTIVE = "ACTIVE"
#: botocore's KmsKeyId limits (CloudWatchLogsConfiguration.SpansLogGroupKmsKeyId).
MAX_KMS_KEY_ID = 256


class SegmentDestination:
    """The two operations over one destination value: the store's setting, or this object's
    own when there is no store."""

    def __init__(self, store: Resources | None = None) -> None:
        self._store = store
        self._destination = XRAY_DESTINATION
        self._lock = threading.Lock()

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        Fields(body)  # no members: any JSON object
        with self._lock:
            return self._answer(self._current())

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = Fields(body)
        destination = fields.string("Destination", choices=TRACE_SEGMENT_DESTINATIONS)
        logs_config = fields.object("CloudWatchLogsConfiguration")
        with self._lock:
            chosen = destination or self._current()
            if logs_config is not None:
                logs_config.string("SpansLogGroupKmsKeyId", min_length=1, max_length=MAX_KMS_KEY_ID)
                if chosen != CLOUDWATCH_LOGS:
                    raise invalid_request(
                        "CloudWatchLogsConfiguration applies only to the CloudWatchLogs destination"
                    )
            if destination is not None:
                if self._store is not None:
                    self._store.record_segment_destination(destination)
                self._destination = destination
            return self._answer(chosen)

    def _current(self) -> str:
        return self._store.segment_destination() if self._store is not None else self._destination

    @staticmethod
    def _answer(destination: str) -> dict[str, Any]:
        return {"Destination": destination, "Status": ACTIVE}
