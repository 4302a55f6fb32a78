"""A Flask app under ``opentelemetry-instrument`` samples by a migrated X-Ray rules file.

Everything is real: the ``opentelemetry-instrument`` launcher, Flask's auto-instrumentation, our
entry points (``awsxray`` distro, ``awsxray_local`` sampler, ``awsxray`` exporter), HTTP over
loopback to the app, and UDP from the app to the ``udp_daemon`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.sampling.api_server import SamplingApiServer, sampling_rule
from tests.support.rules import HEALTHCHECK_V1
from tests.support.udp import UdpDaemon

APP = """
from flask import Flask
from werkzeug.serving import make_server

app = Flask("shop")


@app.route("/healthcheck")
def healthcheck():
    return "ok"


@app.route("/api")
def api():
    return "api"


server = make_server("127.0.0.1", 0, app)
print(server.server_port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
"""

SENTINEL = {"sentinel": True}


class InstrumentedApp:
    """``opentelemetry-instrument python app.py`` with our distro, sampler and exporter."""

    def __init__(self, tmp_path: Path, **env_vars: str) -> None:
        (tmp_path / "app.py").write_text(APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
        env.update(
            OTEL_PYTHON_DISTRO="awsxray",
            OTEL_TRACES_EXPORTER="awsxray",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_SERVICE_NAME="shop",
            OTEL_BSP_SCHEDULE_DELAY="50",
            **env_vars,
        )
        launcher = Path(sys.executable).parent / "opentelemetry-instrument"
        self.process = subprocess.Popen(
            [str(launcher), sys.executable, "app.py"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            self.process.kill()
            raise AssertionError(f"app did not start: {self.process.communicate()[1]}")
        self.port = int(line)

    def get(self, path: str) -> None:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        """SIGINT: KeyboardInterrupt ends the server, atexit flushes the span processor."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
        assert self.process.returncode == 0, stderr


def _all_segments(udp_daemon: UdpDaemon) -> list[dict[str, Any]]:
    """Every document received, once the app has exited.

    Datagrams the app sent before exiting are queued before this sentinel: once it is read,
    everything the app sent has been read.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        payload = b'{"format":"json","version":1}\n' + json.dumps(SENTINEL).encode()
        sock.sendto(payload, ("127.0.0.1", udp_daemon.port))
    documents = udp_daemon.wait_until(lambda docs: SENTINEL in docs)
    return [doc for doc in documents if doc != SENTINEL]


def test_healthcheck_rule_file_under_opentelemetry_instrument(
    tmp_path: Path, udp_daemon: UdpDaemon
) -> None:
    rules = tmp_path / "sampling-rules.json"
    rules.write_text(json.dumps(HEALTHCHECK_V1))
    app = InstrumentedApp(
        tmp_path,
        OTEL_TRACES_SAMPLER="awsxray_local",
        OTEL_TRACES_SAMPLER_ARG=str(rules),
        AWS_XRAY_DAEMON_ADDRESS=udp_daemon.address,
    )
    try:
        for path in ["/healthcheck", "/healthcheck", "/api", "/healthcheck"]:
            app.get(path)
    finally:
        app.stop()
    segments = _all_segments(udp_daemon)
    assert len(segments) == 1, segments
    assert _url(segments[0]).endswith("/api"), segments
    assert segments[0]["name"] == "shop"


def test_centralized_rules_through_the_daemon_address_under_opentelemetry_instrument(
    tmp_path: Path, udp_daemon: UdpDaemon
) -> None:
    # Only the centralized rule can sample: the fallback file and the Default say "never".
    api = SamplingApiServer()
    api.rules = [
        sampling_rule("Default", priority=10000, fixed_rate=0.0),
        sampling_rule("shop-api", priority=1, fixed_rate=1.0, service_name="shop", path="/api"),
    ]
    fallback = tmp_path / "fallback.json"
    fallback.write_text(json.dumps({"version": 2, "default": {"fixed_target": 0, "rate": 0}}))
    try:
        app = InstrumentedApp(
            tmp_path,
            OTEL_TRACES_SAMPLER="awsxray_remote",
            OTEL_TRACES_SAMPLER_ARG=str(fallback),
            AWS_XRAY_DAEMON_ADDRESS=f"tcp:{api.address} udp:{udp_daemon.address}",
        )
        try:
            app.get("/api")  # the first decision starts the poller, which fetches the rules
            api.wait_for("/GetSamplingRules", 1)
            deadline = time.monotonic() + 10
            while not udp_daemon.datagrams:  # rules are installed just after the API answered
                assert time.monotonic() < deadline, "no /api segment once rules were served"
                app.get("/api")
                with contextlib.suppress(AssertionError):
                    udp_daemon.wait_for(1, timeout=0.2)
            app.get("/healthcheck")
        finally:
            app.stop()
    finally:
        api.stop()
    segments = _all_segments(udp_daemon)
    assert segments and all(_url(doc).endswith("/api") for doc in segments), segments


def _url(document: dict[str, Any]) -> str:
    return str(document.get("http", {}).get("request", {}).get("url", ""))
