"""Delivery as a user sees it: the shop app as a real process, real HTTP, real UDP.

* a request's segment reaches the daemon while the app keeps running, with no flush and no
  batch timer (``OTEL_BSP_SCHEDULE_DELAY`` is set to an hour: a batch processor would hold it);
* SIGTERM right after the last of five requests delivers all five, and the process still ends
  by the signal (or, when the application has its own handler, as that handler decides);
* a pre-forked gunicorn worker sends its own spans.

Under ``configure()`` (``SHOP_TRACER=configure``) and under
``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument``. Sampling is the default (centralized
rules, no rules service here, so the local fallback): each request carries an upstream
``Sampled=1`` header, which the parent-based sampler honours, as behind a load balancer.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import VENV_BIN, Shop, base_env, get, start_shop
from tests.support.udp import UdpDaemon

PARENT = "53995c3f42cd8ad8"
HOUR_MS = "3600000"


def root(index: int) -> str:
    return f"1-6b05980d-{index:024x}"


def sampled(index: int) -> dict[str, str]:
    return {"X-Amzn-Trace-Id": f"Root={root(index)};Parent={PARENT};Sampled=1"}


SETUPS = {
    "configure": ([sys.executable], {"SHOP_TRACER": "configure"}),
    "distro": (
        [str(VENV_BIN / "opentelemetry-instrument"), sys.executable],
        {"OTEL_PYTHON_DISTRO": "awsxray"},
    ),
}


def shop_env(daemon: UdpDaemon, backend_url: str, closed_url: str, **extra: str) -> dict[str, str]:
    return base_env(
        OTEL_SERVICE_NAME="shop",
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
        BACKEND_URL=backend_url,
        CLOSED_URL=closed_url,
        OTEL_BSP_SCHEDULE_DELAY=HOUR_MS,
        **extra,
    )


def segments_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["trace_id"]: d for d in docs if "type" not in d}


def arrived(*indexes: int) -> Any:
    wanted = {root(i) for i in indexes}
    return lambda docs: wanted <= set(segments_of(docs))


@pytest.mark.parametrize("setup", SETUPS)
def test_the_segment_arrives_after_the_response_without_any_flush(
    setup: str, udp_daemon: UdpDaemon, backend_url: str, closed_url: str, tmp_path: Path
) -> None:
    command, extra = SETUPS[setup]
    env = shop_env(udp_daemon, backend_url, closed_url, **extra)
    with start_shop(command, env, tmp_path) as shop:
        assert get(f"{shop.url}/orders", sampled(1)) == 200
        docs = udp_daemon.wait_until(arrived(1), timeout=60)  # the app is still running
        assert shop.process.poll() is None
        segment = segments_of(docs)[root(1)]
        assert segment["http"]["response"]["status"] == 200
        (call,) = segment["subsegments"]  # the backend call, embedded
        assert call["http"]["response"]["status"] == 200


def five_requests_then_sigterm(command: list[str], env: dict[str, str], tmp_path: Path) -> Shop:
    """Run the shop, serve five sampled requests, SIGTERM it at once (harsher than 100 ms
    later), wait for it to end."""
    with start_shop(command, env, tmp_path) as shop:
        for index in range(5):
            assert get(f"{shop.url}/orders", sampled(index)) == 200
        shop.process.send_signal(signal.SIGTERM)
        shop.process.wait(timeout=60)
    return shop


def assert_five_delivered(daemon: UdpDaemon) -> None:
    docs = daemon.wait_until(arrived(*range(5)), timeout=30)
    assert len(segments_of(docs)) == 5


@pytest.mark.parametrize("processor", ["xray", "batch"])
@pytest.mark.parametrize("setup", SETUPS)
def test_sigterm_right_after_the_last_request_loses_nothing_and_still_kills(
    setup: str,
    processor: str,
    udp_daemon: UdpDaemon,
    backend_url: str,
    closed_url: str,
    tmp_path: Path,
) -> None:
    """With ``batch`` nothing but the SIGTERM flush can deliver (the timer is an hour away)."""
    command, extra = SETUPS[setup]
    env = shop_env(udp_daemon, backend_url, closed_url, OTEL_XRAY_PROCESSOR=processor, **extra)
    shop = five_requests_then_sigterm(command, env, tmp_path)
    assert shop.process.returncode == -signal.SIGTERM, shop.stderr()
    assert_five_delivered(udp_daemon)


def test_sigterm_opt_out_leaves_the_default_action_alone(
    udp_daemon: UdpDaemon, backend_url: str, closed_url: str, tmp_path: Path
) -> None:
    """``OTEL_XRAY_FLUSH_ON_SIGTERM=false``: killed at once, the batch processor's spans lost."""
    command, extra = SETUPS["configure"]
    env = shop_env(
        udp_daemon,
        backend_url,
        closed_url,
        OTEL_XRAY_PROCESSOR="batch",
        OTEL_XRAY_FLUSH_ON_SIGTERM="false",
        **extra,
    )
    shop = five_requests_then_sigterm(command, env, tmp_path)
    assert shop.process.returncode == -signal.SIGTERM
    # The process is gone: whatever it sent is queued before this marker, which loopback UDP
    # delivers after it. Nothing but the marker arrives.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
        marker.sendto(b"marker", ("127.0.0.1", udp_daemon.port))
    assert udp_daemon.wait_for(1) == [b"marker"]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("processor", ["xray", "batch"])
def test_the_application_sigterm_handler_still_runs_and_nothing_is_lost(
    when: str,
    processor: str,
    udp_daemon: UdpDaemon,
    backend_url: str,
    closed_url: str,
    tmp_path: Path,
) -> None:
    """The app's handler exits with 143 through SystemExit: before ours, ours flushes and calls
    it; after ours, it replaced ours and the exit runs the provider's atexit shutdown."""
    command, extra = SETUPS["configure"]
    env = shop_env(
        udp_daemon,
        backend_url,
        closed_url,
        OTEL_XRAY_PROCESSOR=processor,
        SHOP_SIGTERM=when,
        **extra,
    )
    shop = five_requests_then_sigterm(command, env, tmp_path)
    assert shop.process.returncode == 143, shop.stderr()
    assert shop.stderr().count("app SIGTERM handler ran") == 1
    assert_five_delivered(udp_daemon)


GUNICORN_APP = textwrap.dedent(
    """
    import os

    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    from otel_xray import configure
    from tests.e2e.apps.shop import create_app

    configure("shop")  # in the arbiter (--preload): the worker is a forked copy
    app = create_app(os.environ["BACKEND_URL"], os.environ["CLOSED_URL"])
    FlaskInstrumentor().instrument_app(app)
    RequestsInstrumentor().instrument()

    @app.route("/pid")
    def pid() -> str:
        return str(os.getpid())
    """
)


@pytest.fixture
def gunicorn_app(tmp_path: Path) -> Path:
    (tmp_path / "gunicorn_shop.py").write_text(GUNICORN_APP)
    return tmp_path


@pytest.fixture
def gunicorn(
    gunicorn_app: Path, udp_daemon: UdpDaemon, backend_url: str, closed_url: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = shop_env(udp_daemon, backend_url, closed_url)
    env["PYTHONPATH"] = f"{gunicorn_app}:{Path(__file__).resolve().parents[2]}"
    # gunicorn serves on a socket bound here and inherited (fd://): a port number handed over
    # instead could be taken by another process before gunicorn binds it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "--preload",
                "--workers=1",
                f"--bind=fd://{listener.fileno()}",
                "gunicorn_shop:app",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(listener.fileno(),),
        )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # gunicorn logs to stderr: wait for its worker to boot
            if "Booting worker" in line:
                break
        else:
            pytest.fail("gunicorn did not boot a worker")
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stderr is not None:
            process.stderr.close()


def test_a_gunicorn_worker_forked_after_configure_sends_its_own_segments(
    gunicorn: tuple[str, subprocess.Popen[str]], udp_daemon: UdpDaemon
) -> None:
    url, arbiter = gunicorn
    assert get(f"{url}/orders", sampled(7)) == 200
    docs = udp_daemon.wait_until(arrived(7), timeout=60)  # no flush: the worker's own sender
    assert arbiter.poll() is None
    (call,) = segments_of(docs)[root(7)]["subsegments"]
    assert call["http"]["response"]["status"] == 200
