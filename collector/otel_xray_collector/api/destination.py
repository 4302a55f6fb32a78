"""GetTraceSegmentDestination and UpdateTraceSegmentDestination: where segments "go".

On AWS the answer says whether an account keeps segments in X-Ray or, with Transaction Search,
in CloudWatch Logs; forwarders in ``auto`` mode (this collector's own, pointed at another
collector) send OTLP while it is ``CloudWatchLogs``. The collector stores everything it receives
either way: the destination is what the last Update set (``XRay`` at start), ``ACTIVE`` at once
(nothing to provision, where AWS says ``PENDING`` for a while), kept in memory by each collector
(docs/decisions.md).
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import CLOUDWATCH_LOGS, TRACE_SEGMENT_DESTINATIONS, XRAY_DESTINATION
from .errors import invalid_request
from .fields import Fields

ACTIVE = "ACTIVE"
#: botocore's KmsKeyId limits (CloudWatchLogsConfiguration.SpansLogGroupKmsKeyId).
MAX_KMS_KEY_ID = 256


class SegmentDestination:
    """The two operations over one destination value, safe across HTTP handler threads."""

    def __init__(self, destination: str = XRAY_DESTINATION) -> None:
        self._destination = destination
        self._lock = threading.Lock()

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        Fields(body)  # no members: any JSON object
        with self._lock:
            return self._answer()

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = Fields(body)
        destination = fields.string("Destination", choices=TRACE_SEGMENT_DESTINATIONS)
        logs_config = body.get("CloudWatchLogsConfiguration")
        with self._lock:
            chosen = destination or self._destination
            if logs_config is not None:
                Fields(logs_config, "CloudWatchLogsConfiguration").string(
                    "SpansLogGroupKmsKeyId", min_length=1, max_length=MAX_KMS_KEY_ID
                )
                if chosen != CLOUDWATCH_LOGS:
                    raise invalid_request(
                        "CloudWatchLogsConfiguration applies only to the CloudWatchLogs destination"
                    )
            self._destination = chosen
            return self._answer()

    def _answer(self) -> dict[str, Any]:
        return {"Destination": self._destination, "Status": ACTIVE}
