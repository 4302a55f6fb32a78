"""Same app, same traffic: our segments against the AWS X-Ray SDK's (Flask middleware + requests).

Both run as subprocesses (the X-Ray SDK's global recorder stays out of this process), each
sending to its own loopback daemon. The fields an X-Ray console user reads must agree;
differences we accept on purpose are listed in docs/decisions.md ("Interop with the X-Ray SDK").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.harness import VENV_BIN, base_env, get, run_shop
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon

PARENT = "53995c3f42cd8ad8"
ORDERS = "1-6b05980d-5e644423c61ba3d658380682"
BROKEN = "1-6b05980d-5e644423c61ba3d658380699"


def drive(
    command: list[str], env: dict[str, str], tmp_path: Path, daemon: UdpDaemon
) -> dict[str, dict[str, Any]]:
    """Run the shop, call /orders and /broken with a sampled trace header, return both segments."""
    with run_shop(command, env, tmp_path) as shop:
        header = "Root={};Parent=" + PARENT + ";Sampled=1"
        orders = f"{shop.url}/orders?coupon=SPRING"  # a query neither side records
        assert get(orders, {"X-Amzn-Trace-Id": header.format(ORDERS)}) == 200
        assert get(f"{shop.url}/broken", {"X-Amzn-Trace-Id": header.format(BROKEN)}) == 502
    assert shop.process.returncode == 0, shop.stderr()
    docs = daemon.wait_until(
        lambda ds: {ORDERS, BROKEN} <= {d.get("trace_id") for d in ds if "type" not in d}
    )
    for doc in docs:
        assert_valid(doc)
    return {d["trace_id"]: d for d in docs if d.get("trace_id") in (ORDERS, BROKEN)}


def console_view(segment: dict[str, Any]) -> dict[str, Any]:
    """What the X-Ray console shows of a segment and its one downstream call."""
    (call,) = segment["subsegments"]
    view: dict[str, Any] = {
        "name": segment["name"],
        "trace_id": segment["trace_id"],
        "parent_id": segment["parent_id"],
        "fault": segment.get("fault", False),
        "error": segment.get("error", False),
        "request": {k: segment["http"]["request"].get(k) for k in ("method", "client_ip")},
        # Only the port differs between the two runs' URLs.
        "url_path": urlsplit(segment["http"]["request"]["url"]).path,
        "url_query": urlsplit(segment["http"]["request"]["url"]).query,
        "status": segment["http"]["response"]["status"],
        "call.name": call["name"],
        "call.namespace": call["namespace"],
        "call.type": call["type"],
        "call.parent_is_segment": call["parent_id"] == segment["id"],
        "call.trace_id": call["trace_id"],
        "call.method": call["http"]["request"]["method"].upper(),
        # The shop calls /items?page=1: neither side records the query string.
        "call.url": call["http"]["request"]["url"],
        "call.status": call["http"].get("response", {}).get("status"),
        "call.fault": call.get("fault", False),
        "call.error": call.get("error", False),
    }
    if "cause" in call:
        first = call["cause"]["exceptions"][0]
        view["call.exception.type"] = first["type"].rsplit(".", 1)[-1]
        view["call.exception.message"] = first["message"]
    return view


def test_segments_match_the_xray_sdk_field_by_field(
    backend_url: str, closed_url: str, tmp_path: Path
) -> None:
    python = str(VENV_BIN / "python")
    common = {"BACKEND_URL": backend_url, "CLOSED_URL": closed_url}
    sdk_daemon, our_daemon = UdpDaemon(), UdpDaemon()
    try:
        theirs = drive(
            [python],
            base_env(SHOP_TRACER="xray-sdk", AWS_XRAY_DAEMON_ADDRESS=sdk_daemon.address, **common),
            tmp_path,
            sdk_daemon,
        )
        ours = drive(
            [str(VENV_BIN / "opentelemetry-instrument"), python],
            base_env(
                OTEL_PYTHON_DISTRO="awsxray",
                OTEL_SERVICE_NAME="shop",
                AWS_XRAY_DAEMON_ADDRESS=our_daemon.address,
                **common,
            ),
            tmp_path,
            our_daemon,
        )
    finally:
        sdk_daemon.close()
        our_daemon.close()
    for trace_id in (ORDERS, BROKEN):
        assert console_view(ours[trace_id]) == console_view(theirs[trace_id])
    # The fields compared are really there (not both missing).
    assert console_view(ours[ORDERS])["call.status"] == 200
    assert console_view(ours[BROKEN])["call.exception.type"] == "ConnectionError"
