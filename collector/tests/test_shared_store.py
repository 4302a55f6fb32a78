"""Two collector processes, one PostgreSQL store: many writers, one truth.

Each collector receives half of the segments of the same traces, and both receive some of the
same documents (a retry, two daemons); through boto3 against either collector every trace is
whole, no document is there twice and the service graph counts every request exactly once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import xray_client_for
from .support.postgres import PostgresServer
from .support.process import CollectorProcess, start_error
from .support.segments import HEADER, http_block, new_id, segment
from .test_sampling_rules_api import RULE

TRACES = 60
WINDOW = {"StartTime": 0, "EndTime": 4_000_000_000}


@pytest.fixture
def pair(postgres_db: str) -> Iterator[tuple[CollectorProcess, CollectorProcess]]:
    first = CollectorProcess(postgres_db, otlp=False)
    try:
        second = CollectorProcess(postgres_db, otlp=False)
        try:
            yield first, second
        finally:
            second.kill()
    finally:
        first.kill()


def call_pair(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``front`` segment calling ``back`` (a traced HTTP call), and ``back``'s segment."""
    call_id = new_id()
    front = segment(
        "front",
        http=http_block(f"http://front/{index}"),
        subsegments=[
            {
                "id": call_id,
                "name": "back",
                "start_time": time.time() - 0.9,
                "end_time": time.time() - 0.85,
                "traced": True,
                "http": http_block("http://back/"),
            }
        ],
    )
    back = segment("back", trace_id=front["trace_id"], parent_id=call_id)
    return front, back


def wait_indexed(collector: CollectorProcess, timeout: float = 60.0) -> None:
    """Until no trace waits to be indexed by any collector (the shared to-do list is empty)."""
    deadline = time.monotonic() + timeout
    while collector.status()["store"]["pending_traces"]:
        assert time.monotonic() < deadline, collector.status()["store"]


def put_all(endpoint_url: str, docs: list[dict[str, Any]]) -> None:
    client = xray_client_for(endpoint_url)
    for start in range(0, len(docs), 10):
        answer = client.put_trace_segments(
            TraceSegmentDocuments=[json.dumps(d) for d in docs[start : start + 10]]
        )
        assert answer["UnprocessedTraceSegments"] == []


def edge_totals(client: Any) -> dict[tuple[str, str], int]:
    services = client.get_service_graph(**WINDOW)["Services"]
    by_ref = {s["ReferenceId"]: s for s in services}
    return {
        (s["Name"], by_ref[e["ReferenceId"]]["Name"]): e["SummaryStatistics"]["TotalCount"]
        for s in services
        for e in s["Edges"]
    }


def test_two_collectors_share_one_truth(pair: tuple[CollectorProcess, CollectorProcess]) -> None:
    first, second = pair
    pairs = [call_pair(i) for i in range(TRACES)]
    fronts = [f for f, _ in pairs]
    backs = [b for _, b in pairs]
    shared = fronts[: TRACES // 3] + backs[: TRACES // 3]  # sent to both collectors
    # Both collectors write at the same time: the same documents race into the same rows.
    writers = [
        threading.Thread(target=put_all, args=(first.endpoint_url, fronts + backs[: TRACES // 3])),
        threading.Thread(target=put_all, args=(second.endpoint_url, backs + shared)),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    wait_indexed(first)

    trace_ids = [f["trace_id"] for f in fronts]
    for collector in (first, second):
        client = xray_client_for(collector.endpoint_url)
        traces: list[dict[str, Any]] = []
        for start in range(0, TRACES, 5):
            page = client.batch_get_traces(TraceIds=trace_ids[start : start + 5])
            assert page["UnprocessedTraceIds"] == []
            traces.extend(page["Traces"])
        assert sorted(t["Id"] for t in traces) == sorted(trace_ids)
        for trace in traces:  # whole, each document once
            names = sorted(json.loads(s["Document"])["name"] for s in trace["Segments"])
            assert names == ["back", "front"], trace
        summaries = client.get_trace_summaries(**WINDOW)["TraceSummaries"]
        assert sorted(s["Id"] for s in summaries) == sorted(trace_ids)
        assert all(not s["IsPartial"] for s in summaries)
        assert edge_totals(client) == {("front", "front"): TRACES, ("front", "back"): TRACES}


def test_kill_9_of_one_collector_loses_nothing_it_acknowledged(
    pair: tuple[CollectorProcess, CollectorProcess],
) -> None:
    victim, survivor = pair
    acknowledged: list[str] = []
    stop = threading.Event()
    flooded = 0

    def flood() -> None:  # UDP traffic keeps the victim's writer busy while it is killed
        nonlocal flooded
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while flooded < 3000:
                for _ in range(50):
                    udp.sendto(HEADER + json.dumps(segment("flood")).encode(), victim.udp_address)
                flooded += 50
                if stop.wait(0.002):  # bursts: leave the test's HTTP calls some GIL
                    return

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        client = xray_client_for(victim.endpoint_url)
        for _ in range(10):
            batch = [segment("acked") for _ in range(10)]
            answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in batch])
            assert answer["UnprocessedTraceSegments"] == []
            acknowledged.extend(d["trace_id"] for d in batch)
        # the survivor keeps ingesting into the same store meanwhile
        put_all(survivor.endpoint_url, [segment("other") for _ in range(20)])
        deadline = time.monotonic() + 30
        while victim.status()["stored"] <= len(acknowledged):  # some of the flood committed
            assert time.monotonic() < deadline
        victim.kill()
    finally:
        stop.set()
        flooder.join()
        victim.kill()
    wait_indexed(survivor)
    client = xray_client_for(survivor.endpoint_url)
    found: set[str] = set()
    paginator = client.get_paginator("batch_get_traces")
    for start in range(0, len(acknowledged), 5):
        for page in paginator.paginate(TraceIds=acknowledged[start : start + 5]):
            found.update(t["Id"] for t in page["Traces"])
    assert found == set(acknowledged)
    # whatever the victim committed is indexed by the survivor: every acknowledged trace listed
    summaries = client.get_paginator("get_trace_summaries").paginate(**WINDOW)
    listed = {s["Id"] for page in summaries for s in page["TraceSummaries"]}
    assert set(acknowledged) <= listed


def test_an_ingest_off_replica_answers_from_the_shared_store(postgres_db: str) -> None:
    ingest = CollectorProcess(postgres_db, otlp=False)
    try:
        replica = CollectorProcess(postgres_db, "--ingest", "off")
        try:
            assert (replica.udp_address, replica.otlp_address, replica.otlp_http_address) == (
                None,
                None,
                None,
            )
            front, back = call_pair(0)
            put_all(ingest.endpoint_url, [front, back])
            wait_indexed(replica)
            client = xray_client_for(replica.endpoint_url)
            summaries = client.get_trace_summaries(**WINDOW)["TraceSummaries"]
            assert [s["Id"] for s in summaries] == [front["trace_id"]]
            assert edge_totals(client) == {("front", "front"): 1, ("front", "back"): 1}
            with urllib.request.urlopen(replica.endpoint_url + "/", timeout=10) as page:
                assert page.status == 200 and b"<html" in page.read().lower()
        finally:
            replica.kill()
    finally:
        ingest.kill()


def test_an_unreachable_database_is_one_line_naming_the_flag() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"postgresql://xray@127.0.0.1:{probe.getsockname()[1]}/xray"
        line = start_error(url)
    assert "--db: cannot open the PostgreSQL store" in line


def await_true(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (another collector's change arrives within seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout} s"
        time.sleep(0.05)


def rules_of(client: Any) -> dict[str, dict[str, Any]]:
    records = client.get_sampling_rules()["SamplingRuleRecords"]
    return {r["SamplingRule"]["RuleName"]: r["SamplingRule"] for r in records}


def last_rule_modification(client: Any) -> float:
    import datetime

    answer = client.get_sampling_targets(
        SamplingStatisticsDocuments=[
            {
                "RuleName": "Default",
                "ClientID": "0" * 24,
                "Timestamp": datetime.datetime.now(datetime.UTC),
                "RequestCount": 1,
                "SampledCount": 1,
                "BorrowCount": 0,
            }
        ]
    )
    return float(answer["LastRuleModification"].timestamp())


def graph_names(client: Any, group: str) -> set[str] | None:
    """Service names of the graph scoped to ``group``; None when the group is unknown."""
    try:
        services = client.get_service_graph(**WINDOW, GroupName=group)["Services"]
    except client.exceptions.InvalidRequestException:
        return None
    return {s["Name"] for s in services}


def test_rules_and_groups_changed_through_one_collector_reach_the_other(
    pair: tuple[CollectorProcess, CollectorProcess],
) -> None:
    first, second = pair
    a = xray_client_for(first.endpoint_url)
    b = xray_client_for(second.endpoint_url)
    front, back = call_pair(0)
    solo = segment("solo")
    put_all(first.endpoint_url, [front, back, solo])
    wait_indexed(first)
    assert "checkout" not in rules_of(b)
    before = last_rule_modification(b)

    a.create_sampling_rule(SamplingRule=RULE)
    await_true(lambda: "checkout" in rules_of(b), "created rule on B")
    assert rules_of(b)["checkout"]["FixedRate"] == 0.25
    # SDK pollers of B refetch: its LastRuleModification moved past the previous answer
    assert last_rule_modification(b) > before
    a.update_sampling_rule(SamplingRuleUpdate={"RuleName": "checkout", "FixedRate": 0.75})
    await_true(lambda: rules_of(b)["checkout"]["FixedRate"] == 0.75, "updated rule on B")
    a.delete_sampling_rule(RuleName="checkout")
    await_true(lambda: "checkout" not in rules_of(b), "deleted rule on B")

    a.create_group(GroupName="lonely", FilterExpression='service("solo")')
    await_true(
        lambda: any(g["GroupName"] == "lonely" for g in b.get_groups()["Groups"]),
        "created group on B",
    )
    assert graph_names(b, "lonely") == {"solo"}
    a.update_group(GroupName="lonely", FilterExpression='service("back")')
    await_true(lambda: graph_names(b, "lonely") == {"front", "back"}, "updated group on B")
    a.delete_group(GroupName="lonely")
    await_true(lambda: graph_names(b, "lonely") is None, "deleted group on B")
    assert [g["GroupName"] for g in b.get_groups()["Groups"]] == ["Default"]


def test_a_database_outage_is_answered_503_not_a_traceback(
    postgres_server: PostgresServer, postgres_db: str
) -> None:
    from botocore.exceptions import ClientError

    name = postgres_db.rsplit("/", 1)[1]
    collector = CollectorProcess(postgres_db, otlp=False)
    try:
        client = xray_client_for(collector.endpoint_url, attempts=1)
        before, after = call_pair(0), call_pair(1)
        put_all(collector.endpoint_url, list(before))
        # The database goes away: the collector's sessions are ended and new ones refused.
        postgres_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        postgres_server.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        for call in (
            lambda: client.put_trace_segments(TraceSegmentDocuments=[json.dumps(after[0])]),
            lambda: client.get_trace_summaries(**WINDOW),
            lambda: client.get_trace_summaries(**WINDOW),
        ):
            with pytest.raises(ClientError) as caught:
                call()
            error = caught.value.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert error["Error"]["Code"] == "ServiceUnavailable"
        assert collector.status()["store_unreachable"] == 3
        # Back: the next good input is stored and read.
        postgres_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        put_all(collector.endpoint_url, list(after))
        wait_indexed(collector)
        summaries = client.get_trace_summaries(**WINDOW)["TraceSummaries"]
        assert sorted(s["Id"] for s in summaries) == sorted(
            [before[0]["trace_id"], after[0]["trace_id"]]
        )
    finally:
        collector.kill()
    logged = "\n".join(collector.stderr_lines)
    assert logged.count("answering 503 until the store is back") == 1  # once per outage
    assert "internal error answering" not in logged  # no request became a 500


def test_the_trace_segment_destination_set_through_one_collector_is_the_others(
    pair: tuple[CollectorProcess, CollectorProcess],
) -> None:
    a, b = (xray_client_for(c.endpoint_url) for c in pair)
    assert b.get_trace_segment_destination()["Destination"] == "XRay"
    a.update_trace_segment_destination(Destination="CloudWatchLogs")
    answer = b.get_trace_segment_destination()
    assert (answer["Destination"], answer["Status"]) == ("CloudWatchLogs", "ACTIVE")
