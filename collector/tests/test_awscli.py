"""The AWS CLI (`aws xray … --endpoint-url`) against the collector, as a user would type it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from otel_xray_collector.app import Collector

from .support.segments import UdpSender, http_block, new_id, segment

AWS = str(Path(sys.executable).parent / "aws")


def run_aws(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    """``aws xray ARGS --endpoint-url <collector>`` with test credentials and no profile."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PAGER": "",
    }
    return subprocess.run(
        [AWS, "xray", *args, "--endpoint-url", collector.endpoint_url, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def aws_xray(collector: Collector, *args: str) -> dict[str, Any]:
    result = run_aws(collector, *args)
    assert result.returncode == 0, result.stderr
    # Operations with an empty answer (DeleteGroup) print nothing.
    parsed: dict[str, Any] = json.loads(result.stdout) if result.stdout.strip() else {}
    return parsed


def test_aws_cli_reads_summaries_traces_and_the_service_graph(collector: Collector) -> None:
    front = segment("front", http=http_block("http://shop/cart", status=500), fault=True)
    call_id = new_id()
    front["subsegments"] = [
        {
            "id": call_id,
            "name": "back",
            "namespace": "remote",
            "start_time": front["start_time"] + 0.01,
            "end_time": front["end_time"] - 0.01,
            "http": http_block("http://back/price", status=500),
            "fault": True,
        }
    ]
    back = segment(
        "back",
        trace_id=front["trace_id"],
        parent_id=call_id,
        http=http_block("http://back/price", status=500),
        fault=True,
    )
    UdpSender(collector.udp_address).send([front, back])
    assert collector.wait_for_datagrams(2)
    window = ["--start-time", str(int(time.time()) - 600), "--end-time", str(int(time.time()) + 60)]

    summaries = aws_xray(
        collector,
        "get-trace-summaries",
        *window,
        "--filter-expression",
        'service("front") AND fault',
    )
    assert [s["Id"] for s in summaries["TraceSummaries"]] == [front["trace_id"]]

    traces = aws_xray(collector, "batch-get-traces", "--trace-ids", front["trace_id"])
    documents = [json.loads(s["Document"]) for s in traces["Traces"][0]["Segments"]]
    assert {d["name"] for d in documents} >= {"front", "back"}

    graph = aws_xray(collector, "get-service-graph", *window)
    services = {s["Name"]: s for s in graph["Services"] if s.get("Type") != "client"}
    back_ref = services["back"]["ReferenceId"]
    edge = next(e for e in services["front"]["Edges"] if e["ReferenceId"] == back_ref)
    assert edge["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1


def test_aws_cli_gets_an_xray_shaped_error_for_a_bad_filter(collector: Collector) -> None:
    result = run_aws(
        collector,
        "get-trace-summaries",
        "--start-time",
        "1",
        "--end-time",
        str(int(time.time())),
        "--filter-expression",
        "service(",
    )
    assert result.returncode != 0
    assert "InvalidRequestException" in result.stderr


def test_aws_cli_gets_and_updates_the_trace_segment_destination(collector: Collector) -> None:
    assert aws_xray(collector, "get-trace-segment-destination") == {
        "Destination": "XRay",
        "Status": "ACTIVE",
    }
    updated = aws_xray(
        collector, "update-trace-segment-destination", "--destination", "CloudWatchLogs"
    )
    assert updated == {"Destination": "CloudWatchLogs", "Status": "ACTIVE"}
    assert aws_xray(collector, "get-trace-segment-destination")["Destination"] == "CloudWatchLogs"
    refused = run_aws(collector, "update-trace-segment-destination", "--destination", "S3")
    assert refused.returncode != 0
    assert "InvalidRequestException" in refused.stderr
    assert "Destination must be one of XRay, CloudWatchLogs" in refused.stderr
