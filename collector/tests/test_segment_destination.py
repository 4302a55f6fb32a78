"""GetTraceSegmentDestination / UpdateTraceSegmentDestination through boto3, and our own
forwarder in ``auto`` mode pointed at a collector (collector -> collector) following the answer.
The AWS CLI runs the same operations in test_awscli.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from otel_xray_collector.app import Collector

from .conftest import forwarding_collector, make_config, xray_client_for
from .support.fake_aws import use_fake_aws
from .support.segments import segment


def assert_invalid(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert message in error["Error"]["Message"]


def test_the_destination_is_xray_until_updated(xray_client: Any) -> None:
    answer = xray_client.get_trace_segment_destination()
    assert (answer["Destination"], answer["Status"]) == ("XRay", "ACTIVE")

    answer = xray_client.update_trace_segment_destination(
        Destination="CloudWatchLogs",
        CloudWatchLogsConfiguration={"SpansLogGroupKmsKeyId": "alias/spans"},
    )
    assert (answer["Destination"], answer["Status"]) == ("CloudWatchLogs", "ACTIVE")
    assert xray_client.get_trace_segment_destination()["Destination"] == "CloudWatchLogs"
    # Destination is optional: an update without it keeps the current one.
    assert xray_client.update_trace_segment_destination()["Destination"] == "CloudWatchLogs"

    answer = xray_client.update_trace_segment_destination(Destination="XRay")
    assert (answer["Destination"], answer["Status"]) == ("XRay", "ACTIVE")
    assert xray_client.get_trace_segment_destination()["Destination"] == "XRay"


def test_invalid_updates_are_400_and_change_nothing(xray_client: Any) -> None:
    update = xray_client.update_trace_segment_destination
    assert_invalid(lambda: update(Destination="S3"), "Destination must be one of")
    assert_invalid(
        lambda: update(Destination="XRay", CloudWatchLogsConfiguration={}),
        "applies only to the CloudWatchLogs destination",
    )
    assert_invalid(
        lambda: update(
            Destination="CloudWatchLogs",
            CloudWatchLogsConfiguration={"SpansLogGroupKmsKeyId": "k" * 257},
        ),
        "SpansLogGroupKmsKeyId must be a string of 1 to 256",
    )
    assert xray_client.get_trace_segment_destination()["Destination"] == "XRay"


def test_the_destination_is_a_setting_of_the_store(tmp_path: Path) -> None:
    """Kept across a restart; with no store at all, kept in memory."""
    db = tmp_path / "x.db"
    with Collector(make_config(db)).start() as first:
        xray_client_for(first.endpoint_url).update_trace_segment_destination(
            Destination="CloudWatchLogs"
        )
    with Collector(make_config(db)).start() as second:
        client = xray_client_for(second.endpoint_url)
        assert client.get_trace_segment_destination()["Destination"] == "CloudWatchLogs"
    with Collector(make_config(db, store=False)).start() as storeless:
        client = xray_client_for(storeless.endpoint_url)
        assert client.get_trace_segment_destination()["Destination"] == "XRay"
        client.update_trace_segment_destination(Destination="CloudWatchLogs")
        assert client.get_trace_segment_destination()["Destination"] == "CloudWatchLogs"


def test_an_auto_forwarder_pointed_at_a_collector_follows_its_destination(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """collector (downstream, ``--forward-protocol auto``) -> collector (upstream): segments
    while the upstream answers XRay, OTLP to its /v1/traces once it is told CloudWatchLogs;
    both arrive and are stored upstream."""
    use_fake_aws(monkeypatch, tmp_path)
    upstream = xray_client_for(collector.endpoint_url)
    downstream = forwarding_collector(collector.endpoint_url, "auto", telemetry_interval=None)
    try:
        forwarder = downstream.forwarder
        assert forwarder is not None and forwarder.wait_for_destination_checks(1)
        counters = forwarder.counters()
        assert counters["destination"] == {"Destination": "XRay", "Status": "ACTIVE"}
        assert counters["destination_errors"] == 0
        assert forwarder.active_protocol == "segments"
        sent = xray_client_for(downstream.endpoint_url)
        first = segment("through-segments")
        sent.put_trace_segments(TraceSegmentDocuments=[json.dumps(first)])
        assert forwarder.flush()

        upstream.update_trace_segment_destination(Destination="CloudWatchLogs")
        assert forwarder.refresh_destination() == "otlp"
        second = segment("through-otlp")
        sent.put_trace_segments(TraceSegmentDocuments=[json.dumps(second)])
        assert forwarder.flush()
        counters = forwarder.counters()
    finally:
        downstream.stop()

    assert counters["destination_errors"] == 0
    traces = upstream.batch_get_traces(TraceIds=[first["trace_id"], second["trace_id"]])
    names = {
        trace["Id"]: [json.loads(s["Document"])["name"] for s in trace["Segments"]]
        for trace in traces["Traces"]
    }
    assert names == {
        first["trace_id"]: ["through-segments"],
        second["trace_id"]: ["through-otlp"],
    }
