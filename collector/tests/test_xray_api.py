"""The X-Ray REST subset through boto3's real `xray` client (and raw HTTP where boto3 can't go)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError
from otel_xray_collector.app import Collector
from otel_xray_collector.console import STATIC_ROOT

from .conftest import make_config
from .support.postgres import BOTH_STORES
from .support.segments import http_block, new_id, new_trace_id, segment

pytestmark = BOTH_STORES

NOW = time.time()


def put(client: Any, *docs: dict[str, Any]) -> dict[str, Any]:
    return client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])


def wait_indexed(collector: Collector) -> None:
    assert collector.wait_for_datagrams(0, timeout=10)


def post(collector: Collector, path: str, body: bytes) -> tuple[int, Message, Any]:
    request = urllib.request.Request(
        collector.endpoint_url + path,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_put_trace_segments_reports_rejects_and_stores_the_rest(
    collector: Collector, xray_client: Any
) -> None:
    good = segment("svc", start=NOW - 5)
    bad = segment("svc", start=NOW - 5)
    del bad["start_time"]
    answer = xray_client.put_trace_segments(
        TraceSegmentDocuments=[json.dumps(good), json.dumps(bad), "{not json"]
    )
    assert answer["UnprocessedTraceSegments"] == [
        {"Id": bad["id"], "ErrorCode": "MissingParam", "Message": 'missing "start_time"'},
        {
            "ErrorCode": "JSONFormatError",
            "Message": answer["UnprocessedTraceSegments"][1]["Message"],
        },
    ]
    # acknowledged means committed: readable at once, no waiting
    traces = xray_client.batch_get_traces(TraceIds=[good["trace_id"], bad["trace_id"]])
    assert [t["Id"] for t in traces["Traces"]] == [good["trace_id"]]
    assert traces["UnprocessedTraceIds"] == [bad["trace_id"]]
    [stored] = traces["Traces"][0]["Segments"]
    assert stored["Id"] == good["id"] and json.loads(stored["Document"]) == good


def test_trace_summaries_filter_and_time_range_types(
    collector: Collector, xray_client: Any
) -> None:
    slow = segment(
        "shop",
        start=NOW - 30,
        duration=2.5,
        http=http_block("http://shop/cart", status=500),
        fault=True,
        annotations={"tier": "gold"},
    )
    fast = segment(
        "shop", start=NOW - 20, duration=0.05, http=http_block("http://shop/home", status=200)
    )
    other = segment(
        "admin",
        start=NOW - 10,
        duration=0.2,
        user="bob",
        http=http_block("http://admin/", status=404),
        error=True,
    )
    put(xray_client, slow, fast, other)
    wait_indexed(collector)

    def ids(**kwargs: Any) -> list[str]:
        result = xray_client.get_trace_summaries(StartTime=NOW - 60, EndTime=NOW + 60, **kwargs)
        return [t["Id"] for t in result["TraceSummaries"]]

    assert ids() == [other["trace_id"], fast["trace_id"], slow["trace_id"]]  # newest first
    assert ids(FilterExpression='service("shop") AND responsetime > 1') == [slow["trace_id"]]
    assert ids(FilterExpression='http.url CONTAINS "cart" OR user = "bob"') == [
        other["trace_id"],
        slow["trace_id"],
    ]
    assert ids(FilterExpression='annotation.tier = "gold"') == [slow["trace_id"]]
    assert ids(FilterExpression="error") == [other["trace_id"]]
    assert ids(FilterExpression="!fault and !error") == [fast["trace_id"]]
    for range_type in ("TraceId", "Event", "Service"):
        assert len(ids(TimeRangeType=range_type)) == 3
    window = xray_client.get_trace_summaries(
        StartTime=NOW - 25, EndTime=NOW - 15, TimeRangeType="Event"
    )
    assert [t["Id"] for t in window["TraceSummaries"]] == [fast["trace_id"]]
    summary = window["TraceSummaries"][0]
    assert summary["Http"]["HttpURL"] == "http://shop/home"
    assert summary["ResponseTime"] == pytest.approx(0.05)
    assert summary["Duration"] == pytest.approx(0.05)
    assert summary["StartTime"].timestamp() == pytest.approx(fast["start_time"], abs=1e-3)
    assert window["TracesProcessedCount"] == 1


def test_summaries_page_with_next_token(collector: Collector, xray_client: Any) -> None:
    docs = [segment(f"svc{i % 3}", start=NOW - 100 + i) for i in range(23)]
    put(xray_client, *docs)
    wait_indexed(collector)
    assert collector.operations is not None
    collector.operations.summary_page = 5
    pages = list(
        xray_client.get_paginator("get_trace_summaries").paginate(
            StartTime=NOW - 200, EndTime=NOW + 10
        )
    )
    assert len(pages) == 5
    got = [t["Id"] for page in pages for t in page["TraceSummaries"]]
    assert got == [d["trace_id"] for d in reversed(docs)]
    filtered = xray_client.get_paginator("get_trace_summaries").paginate(
        StartTime=NOW - 200, EndTime=NOW + 10, FilterExpression='service("svc1")'
    )
    assert len([t for page in filtered for t in page["TraceSummaries"]]) == 8


def test_batch_get_traces_pages_and_folds_subsegments(
    collector: Collector, xray_client: Any
) -> None:
    docs = [segment("svc", start=NOW - 50 + i) for i in range(7)]
    parent = docs[0]
    streamed = {
        "name": "query",
        "id": new_id(),
        "trace_id": parent["trace_id"],
        "parent_id": parent["id"],
        "type": "subsegment",
        "start_time": NOW - 50,
        "end_time": NOW - 49.9,
    }
    put(xray_client, *docs, streamed)
    assert collector.operations is not None
    collector.operations.traces_page = 3
    ids = [d["trace_id"] for d in docs] + [new_trace_id()]
    pages = list(xray_client.get_paginator("batch_get_traces").paginate(TraceIds=ids))
    assert len(pages) == 3
    traces = {t["Id"]: t for page in pages for t in page["Traces"]}
    assert set(traces) == {d["trace_id"] for d in docs}
    assert pages[-1]["UnprocessedTraceIds"] == [ids[-1]]
    [first] = traces[parent["trace_id"]]["Segments"]
    document = json.loads(first["Document"])
    assert [s["id"] for s in document["subsegments"]] == [streamed["id"]]
    assert traces[parent["trace_id"]]["LimitExceeded"] is False


def test_service_graph_trace_graph_and_time_series(collector: Collector, xray_client: Any) -> None:
    trace_id = new_trace_id()
    start = NOW - 120
    call = {
        "name": "api.example.com",
        "id": new_id(),
        "namespace": "remote",
        "start_time": start + 0.1,
        "end_time": start + 0.4,
        "http": http_block("https://api.example.com/v1", status=503),
        "fault": True,
    }
    root = segment(
        "web",
        trace_id=trace_id,
        start=start,
        duration=0.5,
        subsegments=[call],
        http=http_block("http://web/", status=500),
        fault=True,
    )
    ok = segment("web", start=start + 1, duration=0.2, http=http_block("http://web/", status=200))
    put(xray_client, root, ok)
    wait_indexed(collector)
    graph = xray_client.get_service_graph(StartTime=NOW - 600, EndTime=NOW)
    assert graph["ContainsOldGroupVersions"] is False
    services = {(s["Name"], s.get("Type")): s for s in graph["Services"]}
    assert set(services) == {("web", "client"), ("web", None), ("api.example.com", "remote")}
    web = services[("web", None)]
    assert web["Root"] is True and web["State"] == "active"
    assert web["SummaryStatistics"]["TotalCount"] == 2
    assert web["SummaryStatistics"]["OkCount"] == 1
    assert web["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    assert web["SummaryStatistics"]["TotalResponseTime"] == pytest.approx(0.7)
    assert {h["Value"]: h["Count"] for h in web["ResponseTimeHistogram"]} == {0.5: 1, 0.2: 1}
    [edge] = web["Edges"]
    assert edge["ReferenceId"] == services[("api.example.com", "remote")]["ReferenceId"]
    assert edge["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    assert edge["SummaryStatistics"]["TotalResponseTime"] == pytest.approx(0.3)
    assert edge["Aliases"] == []
    [client_edge] = services[("web", "client")]["Edges"]
    assert client_edge["ReferenceId"] == web["ReferenceId"]
    assert client_edge["SummaryStatistics"]["TotalCount"] == 2

    trace_graph = xray_client.get_trace_graph(TraceIds=[trace_id])
    names = {(s["Name"], s.get("Type")): s for s in trace_graph["Services"]}
    assert set(names) == set(services)
    assert names[("web", None)]["SummaryStatistics"]["TotalCount"] == 1

    series = xray_client.get_time_series_service_statistics(
        StartTime=NOW - 600, EndTime=NOW, EntitySelectorExpression='service("web")', Period=300
    )
    points = series["TimeSeriesServiceStatistics"]
    assert sum(p["ServiceSummaryStatistics"]["TotalCount"] for p in points) == 2
    assert all(int(p["Timestamp"].timestamp()) % 300 == 0 for p in points)
    edges = xray_client.get_time_series_service_statistics(
        StartTime=NOW - 600, EndTime=NOW, EntitySelectorExpression='edge("web", "api.example.com")'
    )
    assert (
        sum(
            p["EdgeSummaryStatistics"]["FaultStatistics"]["TotalCount"]
            for p in edges["TimeSeriesServiceStatistics"]
        )
        == 1
    )


def test_service_graph_pages_keep_reference_ids_consistent(
    collector: Collector, xray_client: Any
) -> None:
    put(xray_client, *[segment(f"svc{i}", start=NOW - 30) for i in range(4)])
    wait_indexed(collector)
    assert collector.operations is not None
    collector.operations.services_page = 3
    pages = list(
        xray_client.get_paginator("get_service_graph").paginate(StartTime=NOW - 600, EndTime=NOW)
    )
    assert len(pages) == 3
    services = [s for page in pages for s in page["Services"]]
    assert [s["ReferenceId"] for s in services] == list(range(8))
    by_ref = {s["ReferenceId"]: s for s in services}
    for service in services:
        for edge in service["Edges"]:
            assert by_ref[edge["ReferenceId"]]["Name"] == service["Name"]


@pytest.mark.parametrize(
    "call, kwargs",
    [
        ("get_trace_summaries", {"StartTime": NOW, "EndTime": NOW - 10}),
        (
            "get_trace_summaries",
            {"StartTime": NOW - 10, "EndTime": NOW, "FilterExpression": "service("},
        ),
        ("get_trace_summaries", {"StartTime": NOW - 10, "EndTime": NOW, "NextToken": "garbage"}),
        ("get_service_graph", {"StartTime": NOW, "EndTime": NOW}),
        (
            "get_time_series_service_statistics",
            {"StartTime": NOW - 10, "EndTime": NOW, "Period": 61},
        ),
        (
            "get_time_series_service_statistics",
            {"StartTime": NOW - 10, "EndTime": NOW, "EntitySelectorExpression": "fault"},
        ),
    ],
)
def test_bad_input_is_an_invalid_request_exception(
    xray_client: Any, call: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(xray_client, call)(**kwargs)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_errors_are_shaped_like_xray_on_the_wire(collector: Collector) -> None:
    status, headers, body = post(collector, "/TraceSegments", b'{"TraceSegmentDocuments": 5}')
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert body["__type"] == "InvalidRequestException" and "list" in body["message"]
    status, headers, body = post(collector, "/TraceSummaries", b"[1, 2]")
    assert status == 400 and "JSON object" in body["message"]
    status, headers, body = post(collector, "/NoSuchOperation", b"{}")
    assert status == 404 and headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_too_many_waiting_documents_is_a_throttled_exception(tmp_path: Path) -> None:
    with Collector(make_config(tmp_path / "x.db", otlp=None, max_waiting_documents=1)) as busy:
        client = boto3.client(
            "xray",
            endpoint_url=busy.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
        with pytest.raises(ClientError) as caught:
            put(client, segment("a"), segment("b"))
        assert caught.value.response["Error"]["Code"] == "ThrottledException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert put(client, segment("c"))["UnprocessedTraceSegments"] == []


def test_status_health_and_telemetry(collector: Collector, xray_client: Any) -> None:
    put(xray_client, segment("svc"))
    xray_client.put_telemetry_records(
        TelemetryRecords=[{"Timestamp": NOW, "SegmentsReceivedCount": 3}], Hostname="h"
    )
    with urllib.request.urlopen(collector.endpoint_url + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    with urllib.request.urlopen(collector.endpoint_url + "/status", timeout=5) as response:
        status = json.loads(response.read())
    assert status["stored"] == 1
    assert status["ingest"]["accepted"] == 1
    assert status["rejected"] == {}
    assert status["spillover"] == 0
    assert status["otlp"]["requests"] == 0
    assert status["sampling"] is not None
    assert status["telemetry_records"][0]["record"]["SegmentsReceivedCount"] == 3
    assert status["telemetry_records"][0]["Hostname"] == "h"


def test_console_files_are_served_safely(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>console</title>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    (static / "style.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not for the web")
    config = make_config(tmp_path / "x.db", otlp=None, static_root=str(static))
    with Collector(config) as collector:

        def get(path: str) -> tuple[int, Message, bytes]:
            url = collector.endpoint_url + path
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.headers, error.read()

        status, headers, body = get("/")
        assert (status, body) == (200, b"<!doctype html><title>console</title>")
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache"
        status, headers, body = get("/assets/app.js")
        assert (status, body) == (200, b"console.log(1)")
        assert headers["Content-Type"].startswith("text/javascript")
        assert headers["Cache-Control"] == "public, max-age=300"
        assert get("/style.css")[1]["Content-Type"] == "text/css; charset=utf-8"
        for path in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/assets/..%2f..%2fsecret.txt",
            "/missing.js",
            "/assets/",
        ):
            status, headers, _ = get(path)
            assert status == 404, path
            assert headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_packaged_console_root_is_served_at_slash(collector: Collector) -> None:
    """The default static root is the console package's files."""
    with urllib.request.urlopen(collector.endpoint_url + "/", timeout=5) as response:
        assert response.read() == (STATIC_ROOT / "index.html").read_bytes()
