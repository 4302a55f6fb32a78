"""The X-Ray REST operations: request validation and response shapes (botocore's model).

Inputs are checked the way the service does and answered with InvalidRequestException, so
boto3 and the AWS CLI see the same ClientError codes they would against AWS. Every list
operation pages with an opaque NextToken bound to its request.
"""

from __future__ import annotations

import base64
import collections
import datetime
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ..ingest.pipeline import Busy, IngestPipeline
from ..ingest.validate import dumps
from ..store.codec import parse_edge_key, parse_node_key
from ..store.model import EDGE, INFERRED_NODE, NODE
from ..store.queries import TIME_COLUMNS, TraceQueries
from .errors import ApiError, invalid_request, throttled
from .filter import compile_filter, parse_entity_selector
from .groups import GroupService

SUMMARY_PAGE = 100
SUMMARY_SCAN_BUDGET = 2_000  # traces examined per page; fewer matches -> NextToken
TRACES_PAGE = 25
SERVICES_PAGE = 100
SERIES_PAGE = 100
MAX_TRACE_DOCUMENT_BYTES = 500 * 1024

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class XRayOperations:
    """Maps ``POST /<Path>`` bodies to X-Ray responses over the pipeline and the store."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        queries: TraceQueries | None,
        sampling: Any = None,
        groups: GroupService | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.queries = queries
        self.sampling = sampling
        self.groups = groups if groups is not None else GroupService()
        self.telemetry: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        # Page sizes (instance attributes so tests can exercise paging with few items).
        self.summary_page = SUMMARY_PAGE
        self.summary_scan_budget = SUMMARY_SCAN_BUDGET
        self.traces_page = TRACES_PAGE
        self.services_page = SERVICES_PAGE
        self.series_page = SERIES_PAGE
        self.routes: dict[str, Handler] = {
            "/TraceSegments": self.put_trace_segments,
            "/TelemetryRecords": self.put_telemetry_records,
            "/TraceSummaries": self.get_trace_summaries,
            "/Traces": self.batch_get_traces,
            "/ServiceGraph": self.get_service_graph,
            "/TraceGraph": self.get_trace_graph,
            "/TimeSeriesServiceStatistics": self.get_time_series_service_statistics,
            "/CreateGroup": self.groups.create_group,
            "/Groups": self.groups.get_groups,
            "/GetGroup": self.groups.get_group,
            "/UpdateGroup": self.groups.update_group,
            "/DeleteGroup": self.groups.delete_group,
        }
        if sampling is not None:
            self.routes["/GetSamplingRules"] = sampling.get_sampling_rules
            self.routes["/SamplingTargets"] = sampling.sampling_targets
            self.routes["/CreateSamplingRule"] = sampling.create_sampling_rule
            self.routes["/UpdateSamplingRule"] = sampling.update_sampling_rule
            self.routes["/DeleteSamplingRule"] = sampling.delete_sampling_rule
            self.routes["/SamplingStatisticSummaries"] = sampling.get_sampling_statistic_summaries

    # -- ingest ------------------------------------------------------------------------------

    def put_trace_segments(self, body: dict[str, Any]) -> dict[str, Any]:
        documents = body.get("TraceSegmentDocuments")
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            raise invalid_request("TraceSegmentDocuments must be a list of JSON strings")
        try:
            rejected = self.pipeline.put_documents(documents)
        except Busy as exc:
            raise throttled(str(exc)) from exc
        unprocessed = []
        for _, reject in rejected:
            item = {"ErrorCode": reject.error_code, "Message": reject.message}
            if reject.segment_id:
                item["Id"] = reject.segment_id
            unprocessed.append(item)
        return {"UnprocessedTraceSegments": unprocessed}

    def put_telemetry_records(self, body: dict[str, Any]) -> dict[str, Any]:
        records = body.get("TelemetryRecords")
        if not isinstance(records, list):
            raise invalid_request("TelemetryRecords must be a list")
        for record in records:
            self.telemetry.append(
                {
                    "record": record,
                    "EC2InstanceId": body.get("EC2InstanceId"),
                    "Hostname": body.get("Hostname"),
                    "ResourceARN": body.get("ResourceARN"),
                }
            )
        return {}

    # -- reads -------------------------------------------------------------------------------

    def _store(self) -> TraceQueries:
        if self.queries is None:
            raise invalid_request("the local store is disabled (--no-store)")
        return self.queries

    def get_trace_summaries(self, body: dict[str, Any]) -> dict[str, Any]:
        start, end = _window(body)
        range_type = body.get("TimeRangeType") or "TraceId"
        if range_type not in TIME_COLUMNS:
            raise invalid_request("TimeRangeType must be TraceId, Event or Service")
        expression = body.get("FilterExpression") or ""
        if not isinstance(expression, str):
            raise invalid_request("FilterExpression must be a string")
        predicate = compile_filter(expression, self.groups.resolve)
        scope = ["summaries", start, end, range_type, expression]
        cursor = _read_token(body, scope)
        summaries, examined, next_cursor = self._store().scan_summaries(
            start,
            end,
            range_type,
            tuple(cursor) if cursor else None,
            predicate,
            self.summary_page,
            self.summary_scan_budget,
        )
        result: dict[str, Any] = {
            "TraceSummaries": summaries,
            "ApproximateTime": cursor[0] if cursor else end,
            "TracesProcessedCount": examined,
        }
        if next_cursor is not None:
            result["NextToken"] = _make_token(scope, list(next_cursor))
        return result

    def batch_get_traces(self, body: dict[str, Any]) -> dict[str, Any]:
        trace_ids = _trace_ids(body)
        offset = _read_token(body, ["traces", trace_ids]) or 0
        page = trace_ids[offset : offset + self.traces_page]
        found = self._store().full_traces(page)
        traces = []
        for trace_id in page:
            trace = found.get(trace_id)
            if trace is None:
                continue
            segments, limited, size = [], False, 0
            for segment in trace["segments"]:
                document = dumps(segment).decode()
                size += len(document)
                if size > MAX_TRACE_DOCUMENT_BYTES:
                    limited = True
                    break
                segments.append({"Id": str(segment.get("id")), "Document": document})
            entry: dict[str, Any] = {"Id": trace_id, "LimitExceeded": limited, "Segments": segments}
            if trace["duration"] is not None:
                entry["Duration"] = trace["duration"]
            traces.append(entry)
        result: dict[str, Any] = {
            "Traces": traces,
            "UnprocessedTraceIds": [t for t in page if t not in found],
        }
        if offset + self.traces_page < len(trace_ids):
            result["NextToken"] = _make_token(["traces", trace_ids], offset + self.traces_page)
        return result

    def get_service_graph(self, body: dict[str, Any]) -> dict[str, Any]:
        start, end = _window(body)
        traces = self.groups.scope(body)
        scope = ["graph", start, end, body.get("GroupName"), body.get("GroupARN")]
        offset = _read_token(body, scope) or 0
        services = self._store().service_graph(start, end, traces)
        result: dict[str, Any] = {
            "StartTime": start,
            "EndTime": end,
            "Services": services[offset : offset + self.services_page],
            "ContainsOldGroupVersions": False,
        }
        if offset + self.services_page < len(services):
            result["NextToken"] = _make_token(scope, offset + self.services_page)
        return result

    def get_trace_graph(self, body: dict[str, Any]) -> dict[str, Any]:
        trace_ids = _trace_ids(body)
        scope = ["tracegraph", trace_ids]
        offset = _read_token(body, scope) or 0
        services = self._store().trace_graph(trace_ids)
        result: dict[str, Any] = {"Services": services[offset : offset + self.services_page]}
        if offset + self.services_page < len(services):
            result["NextToken"] = _make_token(scope, offset + self.services_page)
        return result

    def get_time_series_service_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        start, end = _window(body)
        period = body.get("Period", 60)
        if period is None:
            period = 60
        if type(period) is not int or period < 60 or period % 60:
            raise invalid_request("Period must be a multiple of 60 seconds")
        expression = body.get("EntitySelectorExpression")
        if expression is not None and not isinstance(expression, str):
            raise invalid_request("EntitySelectorExpression must be a string")
        selector = parse_entity_selector(expression)
        traces = self.groups.scope(body)

        def keep(kind: int, key: str) -> bool:
            if selector.kind == "service":
                assert selector.node is not None
                return kind in (NODE, INFERRED_NODE) and selector.node(list(parse_node_key(key)))
            if kind != EDGE:
                return False
            if selector.kind == "all-edges":
                return True
            assert selector.source is not None and selector.target is not None
            source, target = parse_edge_key(key)
            return selector.source(list(source)) and selector.target(list(target))

        series = self._store().time_series(start, end, period, keep, traces)
        field = (
            "ServiceSummaryStatistics" if selector.kind == "service" else "EdgeSummaryStatistics"
        )
        items = [
            {
                "Timestamp": float(bucket),
                field: stats.api_statistics(),
                "ResponseTimeHistogram": stats.api_histogram(),
            }
            for bucket, stats in series
        ]
        scope = [
            "series",
            start,
            end,
            period,
            expression,
            body.get("GroupName"),
            body.get("GroupARN"),
        ]
        offset = _read_token(body, scope) or 0
        result: dict[str, Any] = {
            "TimeSeriesServiceStatistics": items[offset : offset + self.series_page],
            "ContainsOldGroupVersions": False,
        }
        if offset + self.series_page < len(items):
            result["NextToken"] = _make_token(scope, offset + self.series_page)
        return result


# -- request helpers -----------------------------------------------------------------------


def parse_timestamp(value: Any, name: str) -> float:
    """Epoch seconds from a number, a numeric string or ISO-8601 (what clients may send)."""
    if isinstance(value, bool):
        raise invalid_request(f"{name} must be a timestamp")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise invalid_request(f"{name} is not a valid timestamp: {value!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.timestamp()
    raise invalid_request(f"{name} is required")


def _window(body: dict[str, Any]) -> tuple[float, float]:
    start = parse_timestamp(body.get("StartTime"), "StartTime")
    end = parse_timestamp(body.get("EndTime"), "EndTime")
    if end <= start:
        raise invalid_request("EndTime must be after StartTime")
    return start, end


def _trace_ids(body: dict[str, Any]) -> list[str]:
    trace_ids = body.get("TraceIds")
    if not isinstance(trace_ids, list) or not all(isinstance(t, str) for t in trace_ids):
        raise invalid_request("TraceIds must be a list of trace ids")
    for trace_id in trace_ids:
        if not 1 <= len(trace_id) <= 35:
            raise invalid_request(f"invalid trace id {trace_id!r}")
    return list(dict.fromkeys(trace_ids))


def _scope_hash(scope: list[Any]) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()[:16]


def _make_token(scope: list[Any], position: Any) -> str:
    raw = json.dumps({"h": _scope_hash(scope), "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(body: dict[str, Any], scope: list[Any]) -> Any:
    token = body.get("NextToken")
    if token is None or token == "":
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["h"] != _scope_hash(scope):
            raise ValueError("token belongs to another request")
        position = data["p"]
        if isinstance(position, int) and position < 0:
            raise ValueError("negative offset")
        return position
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid_request("NextToken is invalid or belongs to a different request") from exc


__all__ = ["XRayOperations", "ApiError", "parse_timestamp"]
