"""The X-Ray REST operations: request validation and response shapes (botocore's model).

Inputs are checked the way the service does and answered with InvalidRequestException, so
boto3 and the AWS CLI see the same ClientError codes they would against AWS. Every list
operation pages with an opaque NextToken bound to its request.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

from otel_xray.wire import dumps

from ..ingest.pipeline import Busy, IngestPipeline
from ..store.codec import parse_edge_key, parse_node_key
from ..store.model import EDGE, INFERRED_NODE, NODE
from ..store.protocol import RANGE_TYPES, TraceReader
from .destination import SegmentDestination
from .errors import ApiError, invalid_request, throttled
from .fields import Fields, parse_timestamp
from .filter import compile_filter, parse_entity_selector
from .groups import GroupService

SUMMARY_PAGE = 100
SUMMARY_SCAN_BUDGET = 2_000  # traces examined per page; fewer matches -> NextToken
TRACES_PAGE = 25
SERVICES_PAGE = 100
SERIES_PAGE = 100
MAX_TRACE_DOCUMENT_BYTES = 500 * 1024
MAX_TRACE_IDS = 1_000  # per BatchGetTraces / GetTraceGraph request
MAX_TOKEN_CHARS = 4_096
#: Filter and selector expressions; the filter parser has its own, tighter documented limit.
MAX_EXPRESSION_CHARS = 1024 * 1024
MAX_PERIOD_SECONDS = 366 * 24 * 3600

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class XRayOperations:
    """Maps ``POST /<Path>`` bodies to X-Ray responses over the pipeline and the store."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        queries: TraceReader | None,
        sampling: Any = None,
        groups: GroupService | None = None,
        destination: SegmentDestination | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.queries = queries
        self.sampling = sampling
        self.groups = groups if groups is not None else GroupService()
        self.destination = destination if destination is not None else SegmentDestination()
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
            "/GetTraceSegmentDestination": self.destination.get,
            "/UpdateTraceSegmentDestination": self.destination.update,
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
        documents = Fields(body).string_list(
            "TraceSegmentDocuments", required=True, max_length=None
        )
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
        fields = Fields(body)
        records = fields.objects("TelemetryRecords", required=True)
        sender = {
            name: fields.string(name, max_length=2048)
            for name in ("EC2InstanceId", "Hostname", "ResourceARN")
        }
        for index, record in enumerate(records):
            fields.item("TelemetryRecords", index, record)  # an object, or a 400
            self.telemetry.append({"record": record, **sender})
        return {}

    # -- reads -------------------------------------------------------------------------------

    def _store(self) -> TraceReader:
        if self.queries is None:
            raise invalid_request("the local store is disabled (--no-store)")
        return self.queries

    def get_trace_summaries(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = Fields(body)
        start, end = _window(fields)
        range_type = fields.string("TimeRangeType", default="TraceId", choices=RANGE_TYPES)
        expression = fields.string("FilterExpression", max_length=MAX_EXPRESSION_CHARS) or ""
        predicate = compile_filter(expression, self.groups.resolve)
        scope = ["summaries", start, end, range_type, expression]
        cursor = _read_token(fields, scope)
        if cursor is not None and not _is_cursor(cursor):
            raise invalid_request("NextToken is invalid or belongs to a different request")
        summaries, examined, next_cursor = self._store().scan_summaries(
            start,
            end,
            str(range_type),
            (float(cursor[0]), str(cursor[1])) if cursor else None,
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
        fields = Fields(body)
        trace_ids = _trace_ids(fields)
        offset = _read_offset(fields, ["traces", trace_ids])
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
        fields = Fields(body)
        start, end = _window(fields)
        traces = self.groups.scope(body)
        scope = ["graph", start, end, body.get("GroupName"), body.get("GroupARN")]
        offset = _read_offset(fields, scope)
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
        fields = Fields(body)
        trace_ids = _trace_ids(fields)
        scope = ["tracegraph", trace_ids]
        offset = _read_offset(fields, scope)
        services = self._store().trace_graph(trace_ids)
        result: dict[str, Any] = {"Services": services[offset : offset + self.services_page]}
        if offset + self.services_page < len(services):
            result["NextToken"] = _make_token(scope, offset + self.services_page)
        return result

    def get_time_series_service_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = Fields(body)
        start, end = _window(fields)
        period = fields.integer("Period", default=60, minimum=60, maximum=MAX_PERIOD_SECONDS)
        assert period is not None
        if period % 60:
            raise invalid_request("Period must be a multiple of 60 seconds")
        expression = fields.string("EntitySelectorExpression", max_length=MAX_EXPRESSION_CHARS)
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
        offset = _read_offset(fields, scope)
        result: dict[str, Any] = {
            "TimeSeriesServiceStatistics": items[offset : offset + self.series_page],
            "ContainsOldGroupVersions": False,
        }
        if offset + self.series_page < len(items):
            result["NextToken"] = _make_token(scope, offset + self.series_page)
        return result


# -- request helpers -----------------------------------------------------------------------


def _window(fields: Fields) -> tuple[float, float]:
    start = fields.timestamp("StartTime")
    end = fields.timestamp("EndTime")
    if end <= start:
        raise invalid_request("EndTime must be after StartTime")
    return start, end


def _trace_ids(fields: Fields) -> list[str]:
    trace_ids = fields.string_list(
        "TraceIds", required=True, max_items=MAX_TRACE_IDS, min_length=1, max_length=35
    )
    return list(dict.fromkeys(trace_ids))


#: Tokens are signed with a key of this process: a page position cannot be forged (a token
#: from before a restart is refused as X-Ray refuses an expired one).
_TOKEN_KEY = secrets.token_bytes(32)


def _signature(scope: list[Any], position: Any) -> str:
    message = json.dumps([scope, position], sort_keys=True).encode()
    return hmac.new(_TOKEN_KEY, message, hashlib.sha256).hexdigest()[:32]


def _make_token(scope: list[Any], position: Any) -> str:
    raw = json.dumps({"s": _signature(scope, position), "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(fields: Fields, scope: list[Any]) -> Any:
    """The position a NextToken carries; None without a token; 400 for any token this process
    did not issue for this very request."""
    token = fields.string("NextToken", max_length=MAX_TOKEN_CHARS)
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = data["p"]
        if not hmac.compare_digest(str(data["s"]), _signature(scope, position)):
            raise ValueError("token belongs to another request")
        return position
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid_request("NextToken is invalid or belongs to a different request") from exc


def _read_offset(fields: Fields, scope: list[Any]) -> int:
    position = _read_token(fields, scope)
    if position is None:
        return 0
    if type(position) is not int or position < 0:
        raise invalid_request("NextToken is invalid or belongs to a different request")
    return position


def _is_cursor(position: Any) -> bool:
    return (
        isinstance(position, list)
        and len(position) == 2
        and isinstance(position[0], (int, float))
        and isinstance(position[1], str)
    )


__all__ = ["XRayOperations", "ApiError", "parse_timestamp"]
