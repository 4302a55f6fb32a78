"""The collector as a daemon: segments from the X-Ray SDK's UDP format reach "AWS" (moto)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.config import CollectorConfig

from collector.tests.support.fake_aws import use_fake_aws
from collector.tests.support.moto_server import MotoXRay


@pytest.fixture
def moto_xray() -> Iterator[MotoXRay]:
    server = MotoXRay()
    try:
        yield server
    finally:
        server.close()


def test_segments_received_over_udp_are_forwarded_and_kept(
    moto_xray: MotoXRay, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_fake_aws(monkeypatch, tmp_path)
    collector = Collector(
        CollectorConfig(
            udp="127.0.0.1:0",
            tcp="127.0.0.1:0",
            otlp=None,
            otlp_http=None,
            db=":memory:",
            forward_endpoint=moto_xray.url,
            region="us-west-2",
        )
    )
    collector.start()
    start = time.time() - 2
    trace_id = f"1-{int(start):08x}-00000000000000000000beef"
    document = json.dumps(
        {
            "name": "daemon-user",
            "id": "00000000000000aa",
            "trace_id": trace_id,
            "start_time": start,
            "end_time": start + 0.5,
        }
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(
                b'{"format":"json","version":1}\n' + document.encode(), collector.udp_address
            )
        assert collector.wait_for_datagrams(1)
        local = boto3.session.Session().client(
            "xray", region_name="us-east-1", endpoint_url=collector.endpoint_url
        )
        kept = local.batch_get_traces(TraceIds=[trace_id])["Traces"]
        forwarded = collector.status()["forwarder"]
    finally:
        collector.stop()  # stopping sends what the forwarder still holds

    traces = moto_xray.client("us-west-2").batch_get_traces(TraceIds=[trace_id])["Traces"]
    assert [s["Document"] for s in traces[0]["Segments"]] == [document]
    assert forwarded["received"] == 1
    assert json.loads(kept[0]["Segments"][0]["Document"])["name"] == "daemon-user"
