"""The classic scenario end to end, read back through the collector's X-Ray API with boto3.

Real processes throughout: the collector, back and front under ``opentelemetry-instrument`` with
the awsxray distro, moto's server for DynamoDB. Nothing here knows how spans are produced; the
assertions are what an X-Ray console user would check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.microservices.scenario import RUN_MARKER, Scenario

ROOT = Path(__file__).resolve().parents[2]


def _nodes(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Service nodes by name (the client node bears its root service's name: left out)."""
    return {s["Name"]: s for s in graph["Services"] if s.get("Type") != "client"}


def _edge(graph: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    nodes = _nodes(graph)
    target_ref = nodes[target]["ReferenceId"]
    for edge in nodes[source].get("Edges", []):
        if edge["ReferenceId"] == target_ref:
            return dict(edge)
    raise AssertionError(f"no edge {source} -> {target} in {json.dumps(graph)[:2000]}")


def _documents(client: Any, trace_id: str) -> list[dict[str, Any]]:
    traces = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    assert len(traces) == 1
    return [json.loads(segment["Document"]) for segment in traces[0]["Segments"]]


def _walk(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield document
    for child in document.get("subsegments", []) or []:
        yield from _walk(child)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run both phases once; the tests below read different parts of the result."""
    workdir = tmp_path_factory.mktemp("scenario")
    with Scenario(workdir, prefer_default_ports=False) as running:
        healthy = running.drive(6)
        healthy_traces = running.wait_for_traces(healthy.ok + healthy.failed)
        healthy_graph = running.service_graph()
        running.stop_back()
        broken = running.drive(6)
        total = healthy.ok + healthy.failed + broken.ok + broken.failed
        all_traces = running.wait_for_traces(total)
        yield {
            "scenario": running,
            "client": running.xray(),
            "healthy": healthy,
            "broken": broken,
            "healthy_traces": healthy_traces,
            "healthy_graph": healthy_graph,
            "all_traces": all_traces,
            "graph": running.service_graph(),
            "total": total,
        }


def test_map_has_client_front_back_and_the_aws_node(scenario: dict[str, Any]) -> None:
    graph = scenario["healthy_graph"]
    nodes = _nodes(graph)
    assert {"front", "back"} <= set(nodes)
    client_nodes = [s for s in graph["Services"] if s.get("Type") == "client"]
    assert client_nodes, "the map has no client node"
    front_ref = nodes["front"]["ReferenceId"]
    assert any(e["ReferenceId"] == front_ref for e in client_nodes[0].get("Edges", []))
    _edge(graph, "front", "back")
    aws_nodes = [s for s in graph["Services"] if str(s.get("Type", "")).startswith("AWS::DynamoDB")]
    assert aws_nodes, f"no DynamoDB node: {[s.get('Type') for s in graph['Services']]}"
    front_edges = {e["ReferenceId"] for e in nodes["front"].get("Edges", [])}
    assert aws_nodes[0]["ReferenceId"] in front_edges


def test_health_checks_are_not_sampled(scenario: dict[str, Any]) -> None:
    running: Scenario = scenario["scenario"]
    urls = [t.get("Http", {}).get("HttpURL", "") for t in scenario["all_traces"]]
    assert urls and all("/order/" in url for url in urls), urls
    assert not list(running.trace_summaries(filter_expression='http.url CONTAINS "healthcheck"'))
    assert len(scenario["all_traces"]) == scenario["total"]


def test_one_trace_holds_front_three_remote_calls_and_back_segments(
    scenario: dict[str, Any],
) -> None:
    client = scenario["client"]
    ok_trace = next(
        t for t in scenario["healthy_traces"] if t.get("Http", {}).get("HttpStatus") == 200
    )
    documents = _documents(client, ok_trace["Id"])
    entities = [entity for document in documents for entity in _walk(document)]
    front = next(d for d in documents if d["name"] == "front" and "type" not in d)
    backs = [d for d in documents if d["name"] == "back" and "type" not in d]
    remote_calls = [
        e
        for e in entities
        if e.get("namespace") == "remote" and "http" in e and "127.0.0.1" in e.get("name", "")
    ]
    assert len(remote_calls) == 3, [e.get("name") for e in entities]
    assert len(backs) == 3
    assert {d["trace_id"] for d in documents} == {ok_trace["Id"]}
    # Each back segment's parent is one of front's remote subsegments, one each.
    assert sorted(b["parent_id"] for b in backs) == sorted(c["id"] for c in remote_calls)
    assert front.get("http", {}).get("response", {}).get("status") == 200
    summary = [
        (e.get("name"), e.get("namespace"), (e.get("aws") or {}).get("operation")) for e in entities
    ]
    assert any(
        e.get("namespace") == "aws" and e.get("aws", {}).get("operation") == "PutItem"
        for e in entities
    ), summary
    assert any("sql" in e for e in entities), summary


def test_after_back_stops_front_carries_faults_and_the_connection_error(
    scenario: dict[str, Any],
) -> None:
    assert scenario["broken"].failed == 6
    graph = scenario["graph"]
    front = _nodes(graph)["front"]
    assert front["SummaryStatistics"]["FaultStatistics"]["TotalCount"] >= 6
    # With back gone there is no downstream segment: the failed calls end on an inferred remote
    # node named after the host front was calling, as in X-Ray, and that edge is the faulty one.
    nodes = _nodes(graph)
    fault_edges = {
        target["Name"]: edge["SummaryStatistics"]["FaultStatistics"]["TotalCount"]
        for edge in front.get("Edges", [])
        for target in graph["Services"]
        if target["ReferenceId"] == edge["ReferenceId"]
    }
    assert fault_edges.get("127.0.0.1", 0) >= 6, fault_edges
    assert nodes["127.0.0.1"]["Type"] == "remote"
    faulted = [t for t in scenario["all_traces"] if t.get("HasFault")]
    assert len(faulted) >= 6
    documents = _documents(scenario["client"], faulted[-1]["Id"])
    messages = [
        f"{exc.get('type')}: {exc.get('message')}"
        for document in documents
        for entity in _walk(document)
        for exc in (entity.get("cause") or {}).get("exceptions", [])
        if isinstance(entity.get("cause"), dict)
    ]
    assert any("Connection refused" in m or "ConnectionError" in m for m in messages), messages


def _processes_with_marker(workdir: Path) -> list[int]:
    found = []
    needle = f"{RUN_MARKER}={workdir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_demo_exit_prints_the_map_and_leaves_no_process(tmp_path: Path) -> None:
    """`make demo ARGS=--exit`, with the DNS phase; the demo runs its own loopback guard."""
    workdir = tmp_path / "demo"
    env = {**os.environ, "LOOPBACK_GUARD_LOG": ""}  # "": the demo runs and checks its own guard
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.microservices.demo",
            "--exit",
            "--requests",
            "4",
            "--workdir",
            str(workdir),
            "--dns",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**env, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nothing left loopback" in result.stdout
    assert not (workdir / "loopback-guard.log").exists()
    assert "back.invalid" in result.stdout  # the DNS failure is shown, answered locally
    assert "Service map" in result.stdout
    assert "front → back" in result.stdout
    assert "Faulted traces" in result.stdout
    assert "Console: http://127.0.0.1:" in result.stdout
    assert _processes_with_marker(workdir) == []
