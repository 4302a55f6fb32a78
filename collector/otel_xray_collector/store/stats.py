"""Request statistics as the X-Ray API reports them, with exact add/subtract.

Aggregates are maintained at ingest by adding a trace's contribution and subtracting the
contribution it had before (a trace changes as its documents arrive), so every field here must
be subtractable: counts, sums and histograms are; first-start/last-end are kept as the widest
range seen, which only ever grows (documented as approximate after a trace shrinks).
"""

from __future__ import annotations

from typing import Any

BUCKET_SECONDS = 60


def bucket_of(timestamp: float) -> int:
    return int(timestamp // BUCKET_SECONDS) * BUCKET_SECONDS


def classify(doc: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(fault, error, throttle) for one segment or subsegment; explicit flags beat the status."""
    status = _status(doc)
    if "fault" in doc:
        fault = doc["fault"] is True
    else:
        fault = status is not None and 500 <= status < 600
    if "error" in doc:
        error = doc["error"] is True
    else:
        error = status is not None and 400 <= status < 500
    if "throttle" in doc:
        throttle = doc["throttle"] is True
    else:
        throttle = status == 429
    return fault, error, throttle


def _status(doc: dict[str, Any]) -> int | None:
    http = doc.get("http")
    if not isinstance(http, dict):
        return None
    response = http.get("response")
    if not isinstance(response, dict):
        return None
    status = response.get("status")
    if type(status) is int:
        return status
    if isinstance(status, str) and status.isdigit():
        return int(status)
    return None


class Stats:
    """Counts, response-time sum and histograms of the requests one node or edge served."""

    __slots__ = ("ok", "err", "thr", "fault", "total", "rt", "smin", "emax", "hist", "dhist")

    def __init__(self) -> None:
        self.ok = 0
        self.err = 0  # errors that are not throttles
        self.thr = 0
        self.fault = 0
        self.total = 0
        self.rt = 0.0
        self.smin: float | None = None
        self.emax: float | None = None
        self.hist: dict[str, int] = {}
        self.dhist: dict[str, int] = {}

    def touch(self, start: float | None, end: float | None) -> None:
        if start is not None and (self.smin is None or start < self.smin):
            self.smin = start
        if end is not None and (self.emax is None or end > self.emax):
            self.emax = end

    def add_request(
        self, doc: dict[str, Any], start: float, end: float, duration: float | None = None
    ) -> None:
        fault, error, throttle = classify(doc)
        if fault:
            self.fault += 1
        elif throttle:
            self.thr += 1
        elif error:
            self.err += 1
        else:
            self.ok += 1
        elapsed = max(0.0, end - start)
        self.total += 1
        self.rt += elapsed
        key = str(round(elapsed * 1000))
        self.hist[key] = self.hist.get(key, 0) + 1
        if duration is not None:
            dkey = str(round(duration * 1000))
            self.dhist[dkey] = self.dhist.get(dkey, 0) + 1
        self.touch(start, end)

    def merge(self, other: Stats, sign: int = 1) -> None:
        self.ok += sign * other.ok
        self.err += sign * other.err
        self.thr += sign * other.thr
        self.fault += sign * other.fault
        self.total += sign * other.total
        self.rt += sign * other.rt
        if sign > 0:
            self.touch(other.smin, other.emax)
        _merge_hist(self.hist, other.hist, sign)
        _merge_hist(self.dhist, other.dhist, sign)

    def to_list(self) -> list[Any]:
        return [
            self.ok,
            self.err,
            self.thr,
            self.fault,
            self.total,
            self.rt,
            self.smin,
            self.emax,
            self.hist,
            self.dhist,
        ]

    @classmethod
    def from_list(cls, values: list[Any]) -> Stats:
        stats = cls()
        (
            stats.ok,
            stats.err,
            stats.thr,
            stats.fault,
            stats.total,
            stats.rt,
            stats.smin,
            stats.emax,
            stats.hist,
            stats.dhist,
        ) = values
        return stats

    def api_statistics(self) -> dict[str, Any]:
        """ServiceStatistics / EdgeStatistics shape."""
        return {
            "OkCount": self.ok,
            "ErrorStatistics": {
                "ThrottleCount": self.thr,
                "OtherCount": self.err,
                "TotalCount": self.thr + self.err,
            },
            "FaultStatistics": {"OtherCount": self.fault, "TotalCount": self.fault},
            "TotalCount": self.total,
            "TotalResponseTime": round(self.rt, 6),
        }

    def api_histogram(self, durations: bool = False) -> list[dict[str, Any]]:
        source = self.dhist if durations else self.hist
        return [
            {"Value": int(ms) / 1000.0, "Count": count}
            for ms, count in sorted(source.items(), key=lambda item: int(item[0]))
            if count > 0
        ]


def _merge_hist(into: dict[str, int], other: dict[str, int], sign: int) -> None:
    for key, count in other.items():
        value = into.get(key, 0) + sign * count
        if value:
            into[key] = value
        else:
            into.pop(key, None)
