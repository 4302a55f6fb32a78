"""``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument python shop.py``, as a user runs it.

Nothing but the distro choice, the daemon address and the service name is configured: the
distro's defaults must pick our exporter, propagator, id generator, sampler and configurator.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tests.e2e.harness import VENV_BIN, Shop, base_env, get, run_shop
from tests.support.schema import assert_valid
from tests.support.udp import UdpDaemon

ROOT_A = "1-6b05980d-5e644423c61ba3d658380682"
ROOT_B = "1-6b05980d-000000000000000000000b0b"
PARENT = "53995c3f42cd8ad8"


def _shop_under_the_distro(
    udp_daemon: UdpDaemon, backend_url: str, closed_url: str, tmp_path: Path
) -> AbstractContextManager[Shop]:
    """The shop under ``opentelemetry-instrument`` with nothing but the distro configured."""
    env = base_env(
        OTEL_PYTHON_DISTRO="awsxray",
        OTEL_SERVICE_NAME="shop",
        AWS_XRAY_DAEMON_ADDRESS=udp_daemon.address,
        BACKEND_URL=backend_url,
        CLOSED_URL=closed_url,
    )
    command = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python")]
    return run_shop(command, env, tmp_path)


def test_opentelemetry_instrument_with_the_distro_sends_segments(
    udp_daemon: UdpDaemon, backend_url: str, closed_url: str, tmp_path: Path
) -> None:
    with _shop_under_the_distro(udp_daemon, backend_url, closed_url, tmp_path) as shop:
        # The caller decided to sample (Sampled=1): the X-Ray propagator must honour it.
        assert (
            get(
                f"{shop.url}/orders",
                {"X-Amzn-Trace-Id": f"Root={ROOT_A};Parent={PARENT};Sampled=1"},
            )
            == 200
        )
        assert (
            get(
                f"{shop.url}/broken",
                {"X-Amzn-Trace-Id": f"Root={ROOT_B};Parent={PARENT};Sampled=1"},
            )
            == 502
        )
    assert shop.process.returncode == 0, shop.stderr()

    def both_arrived(docs: list[dict[str, Any]]) -> bool:
        return {ROOT_A, ROOT_B} <= {d.get("trace_id") for d in docs if "type" not in d}

    docs = udp_daemon.wait_until(both_arrived)
    for doc in docs:
        assert_valid(doc)
    segments = {d["trace_id"]: d for d in docs if "type" not in d}

    orders = segments[ROOT_A]
    assert orders["name"] == "shop" and orders["parent_id"] == PARENT
    assert orders["http"]["request"]["method"] == "GET"
    assert orders["http"]["response"]["status"] == 200
    assert orders["aws"]["xray"]["auto_instrumentation"] is True
    (call,) = orders["subsegments"]
    assert call["name"] == "127.0.0.1" and call["namespace"] == "remote"
    assert call["http"]["response"]["status"] == 200

    broken = segments[ROOT_B]
    assert broken["fault"] is True and broken["http"]["response"]["status"] == 502
    (failed,) = broken["subsegments"]
    assert failed["fault"] is True
    assert failed["cause"]["exceptions"][0]["type"].endswith("ConnectionError")
    assert "Connection refused" in failed["cause"]["exceptions"][0]["message"]


W3C_TRACE = "6b05980e00000000000000000000c0de"
W3C_PARENT = "00f067aa0ba902b7"


def test_both_headers_arrive_the_x_ray_header_wins_unless_it_is_root_only(
    udp_daemon: UdpDaemon, backend_url: str, closed_url: str, tmp_path: Path
) -> None:
    """The distro's default propagators, at a real instrumented server (docs/decisions.md)."""
    traceparent = f"00-{W3C_TRACE}-{W3C_PARENT}-01"
    with _shop_under_the_distro(udp_daemon, backend_url, closed_url, tmp_path) as shop:
        both = {
            "X-Amzn-Trace-Id": f"Root={ROOT_A};Parent={PARENT};Sampled=1",
            "traceparent": traceparent,
        }
        assert get(f"{shop.url}/orders", both) == 200
        # What an ALB adds when the caller sent only traceparent: a Root of its own, no Parent.
        alb = {"X-Amzn-Trace-Id": f"Root={ROOT_B};Sampled=1", "traceparent": traceparent}
        assert get(f"{shop.url}/orders", alb) == 200
    assert shop.process.returncode == 0, shop.stderr()

    w3c_root = f"1-{W3C_TRACE[:8]}-{W3C_TRACE[8:]}"

    def both_arrived(docs: list[dict[str, Any]]) -> bool:
        return {ROOT_A, w3c_root} <= {d.get("trace_id") for d in docs if "type" not in d}

    segments = {d["trace_id"]: d for d in udp_daemon.wait_until(both_arrived) if "type" not in d}
    assert segments[ROOT_A]["parent_id"] == PARENT  # X-Amzn-Trace-Id won over traceparent
    assert segments[w3c_root]["parent_id"] == W3C_PARENT  # Root-only did not replace it
    assert ROOT_B not in segments
