"""The store: merging documents per trace, replacement rules, aggregates kept exact, retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otel_xray_collector.documents import Accepted, pack
from otel_xray_collector.ingest.validate import parse_body
from otel_xray_collector.store.postgres import PostgresStore
from otel_xray_collector.store.protocol import Store
from otel_xray_collector.store.sqlite import SqliteStore

from .support.postgres import STORES
from .support.segments import http_block, new_id, new_trace_id, segment


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: Clock) -> Iterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Store]:
    """Each store behind the same Protocol: these tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    opened = PostgresStore(request.getfixturevalue("postgres_db"), clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def put(store: Store, *docs: dict[str, Any]) -> None:
    accepted = [o for d in docs for o in parse_body(json.dumps(d).encode())]
    assert all(isinstance(o, Accepted) for o in accepted), accepted
    store.write_packed([pack(accepted)])  # type: ignore[arg-type]
    while store.index_pending(1000):
        pass


def graph(store: Store) -> dict[str, dict[str, Any]]:
    services = store.service_graph(0, 4_000_000_000)
    by_id = {s["ReferenceId"]: s for s in services}
    out = {}
    for service in services:
        key = f"{service['Name']}|{service.get('Type')}"
        service["edges_to"] = {
            f"{by_id[e['ReferenceId']]['Name']}|{by_id[e['ReferenceId']].get('Type')}": e
            for e in service["Edges"]
        }
        out[key] = service
    return out


def summaries(store: Store, expression: str = "") -> list[dict[str, Any]]:
    from otel_xray_collector.api.filter import compile_filter

    found, _, _ = store.scan_summaries(
        0, 4_000_000_000, "Event", None, compile_filter(expression), 100, 1000
    )
    return found


def test_independent_subsegment_before_its_parent_is_folded_in(store: Store) -> None:
    root = segment("front", http=http_block("http://front/x"))
    sub = {
        "name": "back.example",
        "id": new_id(),
        "trace_id": root["trace_id"],
        "parent_id": root["id"],
        "type": "subsegment",
        "namespace": "remote",
        "start_time": root["start_time"] + 0.01,
        "end_time": root["start_time"] + 0.05,
        "http": http_block("http://back.example/y", status=503),
    }
    put(store, sub)
    assert "back.example|remote" not in graph(store)  # no parent yet: nothing to attach to
    put(store, root)
    traces = store.full_traces([root["trace_id"]])[root["trace_id"]]
    [front] = [s for s in traces["segments"] if s["name"] == "front"]
    assert [s["id"] for s in front["subsegments"]] == [sub["id"]]
    assert "parent_id" not in front["subsegments"][0]
    inferred = [s for s in traces["segments"] if s.get("inferred")]
    assert [(s["name"], s["origin"], s["parent_id"]) for s in inferred] == [
        ("back.example", "remote", sub["id"])
    ]
    nodes = graph(store)
    edge = nodes["front|None"]["edges_to"]["back.example|remote"]
    assert edge["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    assert nodes["back.example|remote"]["State"] == "unknown"


def test_in_progress_is_replaced_by_complete_but_not_the_reverse(store: Store) -> None:
    done = segment("worker", http=http_block("http://w/", status=500))
    running = {k: v for k, v in done.items() if k not in ("end_time", "http")}
    running["in_progress"] = True
    put(store, running)
    [summary] = summaries(store)
    assert summary["IsPartial"] is True and "ResponseTime" not in summary
    put(store, done)
    put(store, running)  # a late, stale in-progress copy
    [summary] = summaries(store)
    assert summary["IsPartial"] is False
    assert summary["HasFault"] is True
    assert summary["ResponseTime"] == pytest.approx(0.1)
    assert summary["Revision"] == 2  # the stale copy changed nothing
    stats = graph(store)["worker|None"]["SummaryStatistics"]
    assert stats["TotalCount"] == 1 and stats["FaultStatistics"]["TotalCount"] == 1


def test_aggregates_subtract_the_old_version_of_a_trace(store: Store) -> None:
    first = segment("api", http=http_block("http://api/", status=200))
    put(store, first)
    put(
        store,
        {
            **first,
            "end_time": first["start_time"] + 0.3,
            "http": http_block("http://api/", status=429),
        },
    )
    stats = graph(store)["api|None"]["SummaryStatistics"]
    assert stats == {
        "OkCount": 0,
        "ErrorStatistics": {"ThrottleCount": 1, "OtherCount": 0, "TotalCount": 1},
        "FaultStatistics": {"OtherCount": 0, "TotalCount": 0},
        "TotalCount": 1,
        "TotalResponseTime": pytest.approx(0.3),
    }
    assert graph(store)["api|None"]["ResponseTimeHistogram"] == [{"Value": 0.3, "Count": 1}]


def test_service_graph_client_traced_call_and_inferred_nodes(store: Store) -> None:
    trace_id = new_trace_id()
    root = segment(
        "frontend",
        trace_id=trace_id,
        origin="AWS::EC2::Instance",
        http=http_block("http://frontend/checkout", status=200),
    )
    call_backend = {
        "name": "backend",
        "id": new_id(),
        "namespace": "remote",
        "traced": True,
        "start_time": root["start_time"] + 0.01,
        "end_time": root["start_time"] + 0.08,
        "http": http_block("http://backend/pay", status=200),
    }
    call_table = {
        "name": "DynamoDB",
        "id": new_id(),
        "namespace": "aws",
        "start_time": root["start_time"] + 0.01,
        "end_time": root["start_time"] + 0.02,
        "aws": {"operation": "GetItem", "table_name": "orders"},
        "throttle": True,
        "error": True,
        "http": {"response": {"status": 400}},
    }
    call_sql = {
        "name": "ebdb@db.example",
        "id": new_id(),
        "namespace": "remote",
        "start_time": root["start_time"] + 0.02,
        "end_time": root["start_time"] + 0.03,
        "sql": {"url": "postgresql://db.example/ebdb"},
    }
    local = {
        "name": "render",
        "id": new_id(),
        "start_time": root["start_time"],
        "end_time": root["start_time"] + 0.01,
    }
    root["subsegments"] = [call_backend, call_table, call_sql, local]
    backend = segment(
        "backend",
        trace_id=trace_id,
        parent_id=call_backend["id"],
        start=root["start_time"] + 0.02,
        duration=0.05,
        http=http_block("http://backend/pay", status=200),
    )
    put(store, backend, root)
    nodes = graph(store)
    assert set(nodes) == {
        "frontend|client",
        "frontend|AWS::EC2::Instance",
        "backend|None",
        "orders|AWS::DynamoDB::Table",
        "ebdb@db.example|Database::SQL",
    }
    client = nodes["frontend|client"]
    assert client["State"] == "unknown" and "SummaryStatistics" not in client
    assert list(client["edges_to"]) == ["frontend|AWS::EC2::Instance"]
    frontend = nodes["frontend|AWS::EC2::Instance"]
    assert frontend["Root"] is True and frontend["State"] == "active"
    assert set(frontend["edges_to"]) == {
        "backend|None",
        "orders|AWS::DynamoDB::Table",
        "ebdb@db.example|Database::SQL",
    }
    backend_edge = frontend["edges_to"]["backend|None"]
    # edge = the caller's view (round trip 70 ms); node = the callee's own segment (50 ms)
    assert backend_edge["SummaryStatistics"]["TotalResponseTime"] == pytest.approx(0.07)
    assert nodes["backend|None"]["SummaryStatistics"]["TotalResponseTime"] == pytest.approx(0.05)
    assert nodes["backend|None"]["Root"] is False
    table = nodes["orders|AWS::DynamoDB::Table"]
    assert table["State"] == "unknown"
    assert table["SummaryStatistics"]["ErrorStatistics"] == {
        "ThrottleCount": 1,
        "OtherCount": 0,
        "TotalCount": 1,
    }
    [summary] = summaries(store)
    assert {(s["Name"], s.get("Type")) for s in summary["ServiceIds"]} == {
        ("frontend", "AWS::EC2::Instance"),
        ("backend", None),
        ("orders", "AWS::DynamoDB::Table"),
        ("ebdb@db.example", "Database::SQL"),
    }
    assert summary["HasThrottle"] is True and summary["HasError"] is False
    assert summary["EntryPoint"] == {
        "Name": "frontend",
        "Names": ["frontend"],
        "Type": "AWS::EC2::Instance",
    }


def test_summary_fields_from_root_and_all_segments(store: Store) -> None:
    root = segment(
        "shop",
        user="alice",
        resource_arn="arn:aws:ec2:1",
        http=http_block(
            "http://shop/cart?id=1",
            method="POST",
            status=502,
            user_agent="curl/8",
            client_ip="10.0.0.1",
        ),
        annotations={"tier": "gold", "items": 3, "vip": True},
        aws={"ec2": {"instance_id": "i-123", "availability_zone": "us-east-1a"}},
        fault=True,
        cause={"exceptions": [{"id": new_id(), "type": "KeyError", "message": "boom"}]},
    )
    root["subsegments"] = [
        {
            "name": "inner",
            "id": new_id(),
            "start_time": root["start_time"],
            "end_time": root["end_time"],
            "annotations": {"tier": "silver"},
        }
    ]
    put(store, root)
    [summary] = summaries(store)
    assert summary["Http"] == {
        "HttpURL": "http://shop/cart?id=1",
        "HttpMethod": "POST",
        "HttpStatus": 502,
        "UserAgent": "curl/8",
        "ClientIp": "10.0.0.1",
    }
    assert summary["HasFault"] is True
    shop = [{"Name": "shop", "Names": ["shop"]}]
    assert summary["Users"] == [{"UserName": "alice", "ServiceIds": shop}]
    assert summary["Annotations"]["tier"] == [
        {"AnnotationValue": {"StringValue": "gold"}, "ServiceIds": shop},
        {"AnnotationValue": {"StringValue": "silver"}, "ServiceIds": shop},
    ]
    assert summary["Annotations"]["items"][0]["AnnotationValue"] == {"NumberValue": 3}
    assert summary["Annotations"]["vip"][0]["AnnotationValue"] == {"BooleanValue": True}
    assert summary["ResourceARNs"] == [{"ARN": "arn:aws:ec2:1"}]
    assert summary["InstanceIds"] == [{"Id": "i-123"}]
    assert summary["AvailabilityZones"] == [{"Name": "us-east-1a"}]
    [cause] = summary["FaultRootCauses"]
    assert cause["ClientImpacting"] is True
    assert cause["Services"][0]["EntityPath"][0]["Exceptions"] == [
        {"Name": "KeyError", "Message": "boom"}
    ]


def test_retention_by_age_removes_traces_and_their_aggregates(store: Store, clock: Clock) -> None:
    put(store, segment("old"))
    clock.now += 7200
    put(store, segment("new"))
    assert store.enforce_retention(max_age_seconds=3600, max_bytes=None) == 1
    assert [s["EntryPoint"]["Name"] for s in summaries(store)] == ["new"]
    assert set(graph(store)) == {"new|None", "new|client"}


def test_retention_by_size_deletes_oldest_first(sqlite_store: SqliteStore, clock: Clock) -> None:
    store = sqlite_store  # PostgreSQL applies only the age limit (docs/collector.md)
    padding = "x" * 4000
    for index in range(300):
        clock.now += 1
        put(store, segment(f"svc{index:03d}", metadata={"pad": padding}))
    before = store.db.size_bytes()
    budget = before // 2
    deleted = store.enforce_retention(max_age_seconds=None, max_bytes=budget, batch=20)
    assert deleted > 0
    assert store.db.size_bytes() <= budget
    names = sorted(s["EntryPoint"]["Name"] for s in summaries(store))
    assert names == [f"svc{i:03d}" for i in range(300 - len(names), 300)]  # newest kept
