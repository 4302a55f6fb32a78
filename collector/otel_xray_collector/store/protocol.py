"""What the rest of the collector asks of a store, independent of how it keeps the data.

Ingest writes through :class:`SegmentWriter`, the API and the console read through
:class:`TraceReader`, and the API keeps its sampling rules and groups in :class:`Resources`;
:class:`Store` is all three plus its lifecycle. ``SqliteStore``
(``store/sqlite.py``) implements it for one node; a shared PostgreSQL store implements the
same Protocol for a cluster. Documents arrive packed (``otel_xray_collector.documents``), and
answers are plain Python values in the X-Ray API's shapes, so nothing above this line knows
which database is underneath.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..documents import PackedDocuments
from .facts import TraceFacts
from .resources import Retention, StoredGroup, StoredRule
from .stats import Stats

#: A compiled filter expression over the facts of one trace.
FactsPredicate = Callable[[TraceFacts], bool]

#: GetTraceSummaries' TimeRangeType values: which time of a trace the window applies to.
RANGE_TYPES = ("TraceId", "Event", "Service")

#: Newest first: (matching summaries, traces examined, cursor for the next page or None).
SummaryPage = tuple[list[dict[str, Any]], int, tuple[float, str] | None]


class StoreUnreachable(RuntimeError):
    """The database could not answer (connection refused or lost, server shutting down): the
    request may succeed later. The API answers 503 ``ServiceUnavailable``, not a 500."""


class SegmentWriter(Protocol):
    """Durable writes first (the acknowledgement point), indexing and retention after."""

    @property
    def stored_seq(self) -> int:
        """Sequence number of the last document written."""
        ...

    @property
    def indexed_seq(self) -> int:
        """Sequence number up to which summaries and aggregates include the documents."""
        ...

    def write_packed(self, batches: Sequence[PackedDocuments]) -> int:
        """Upsert the batches in order, in one transaction; returns the documents written.

        A later document with the same (trace id, segment id) replaces an earlier one, except
        that an in-progress copy never replaces a complete document.
        """
        ...

    def has_pending(self) -> bool:
        """Whether documents were written that are not indexed yet."""
        ...

    def index_pending(self, limit: int = 2000) -> int:
        """Index up to ``limit`` newly stored documents; returns how many were covered."""
        ...

    def enforce_retention(self, max_age_seconds: float | None, max_bytes: int | None) -> int:
        """Delete traces over the age or size limit (bounded work); returns traces deleted."""
        ...

    def retention(self) -> Retention:
        """The retention in force: the store's setting, shared by every collector using it."""
        ...


class TraceReader(Protocol):
    """Everything the X-Ray API operations and the console read."""

    def scan_summaries(
        self,
        start: float,
        end: float,
        range_type: str,
        cursor: tuple[float, str] | None,
        predicate: FactsPredicate,
        page_size: int,
        scan_budget: int,
    ) -> SummaryPage:
        """GetTraceSummaries: traces in the window whose facts satisfy ``predicate``."""
        ...

    def load_documents(self, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """BatchGetTraces: every stored document of each trace, in arrival order."""
        ...

    def full_traces(self, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Assembled traces: segments with folded subsegments, inferred segments, duration."""
        ...

    def trace_graph(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        """GetTraceGraph: the services of these traces."""
        ...

    def service_graph(
        self, start: float, end: float, traces: FactsPredicate | None = None
    ) -> list[dict[str, Any]]:
        """GetServiceGraph over the window; ``traces`` restricts it to the traces it accepts
        (a group's filter expression)."""
        ...

    def time_series(
        self,
        start: float,
        end: float,
        period: int,
        keep: Callable[[int, str], bool],
        traces: FactsPredicate | None = None,
    ) -> list[tuple[int, Stats]]:
        """Per-period sums of the aggregate rows ``keep(kind, key)`` selects, oldest first."""
        ...


class Resources(Protocol):
    """What the API manages besides traces, persisted: sampling rules, groups and the trace
    segment destination."""

    def resource_version(self, kind: str) -> int:
        """The change counter of ``kind`` ("sampling_rules" or "groups"), moved by every
        change through any collector sharing the database."""
        ...

    def sampling_rules(self) -> list[StoredRule]: ...

    def save_sampling_rules(self, rules: list[StoredRule], deleted: list[str]) -> int:
        """Upsert ``rules`` and remove the rules named in ``deleted``, in one transaction;
        returns the new change counter."""
        ...

    def groups(self) -> list[StoredGroup]: ...

    def save_group(self, group: StoredGroup) -> int: ...

    def delete_group(self, name: str) -> int: ...

    def segment_destination(self) -> str:
        """GetTraceSegmentDestination's value, shared by the collectors of the store."""
        ...

    def record_segment_destination(self, destination: str) -> None: ...


class Store(SegmentWriter, TraceReader, Resources, Protocol):
    """A whole store: traces written and read, API resources, a ``/status`` entry, close."""

    def status(self) -> dict[str, Any]:
        """What ``/status`` shows about the store (location, size, index progress)."""
        ...

    def record_retention(self, hours: float | None, max_db_mb: float | None) -> Retention:
        """Store the retention values a collector was given (None: not given, keep the
        store's); returns the retention now in force."""
        ...

    def close(self) -> None: ...
