"""A Flask app under ``opentelemetry-instrument`` samples by a migrated X-Ray rules file.

Everything is real: the ``opentelemetry-instrument`` launcher, Flask's auto-instrumentation, our
entry points (``awsxray`` distro, ``awsxray_local`` sampler, ``awsxray`` exporter), HTTP over
loopback to the app, and UDP from the app to the ``udp_daemon`` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.udp import UdpDaemon

RULES = {
    "version": 1,
    "rules": [
        {
            "description": "Healthy check",
            "service_name": "*",
            "http_method": "GET",
            "url_path": "/healthcheck",
            "fixed_target": 0,
            "rate": 0,
        }
    ],
    "default": {"fixed_target": 1, "rate": 1},
}

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


def _get(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return int(response.status)


def test_healthcheck_rule_file_under_opentelemetry_instrument(
    tmp_path: Path, udp_daemon: UdpDaemon
) -> None:
    rules = tmp_path / "sampling-rules.json"
    rules.write_text(json.dumps(RULES))
    (tmp_path / "app.py").write_text(APP)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "AWS_"))}
    env.update(
        OTEL_PYTHON_DISTRO="awsxray",
        OTEL_TRACES_SAMPLER="awsxray_local",
        OTEL_TRACES_SAMPLER_ARG=str(rules),
        OTEL_TRACES_EXPORTER="awsxray",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="shop",
        AWS_XRAY_DAEMON_ADDRESS=udp_daemon.address,
    )
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    app = subprocess.Popen(
        [str(launcher), sys.executable, "app.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        port = int(app.stdout.readline())
        for path in ["/healthcheck", "/healthcheck", "/api", "/healthcheck"]:
            assert _get(port, path) == 200
        app.send_signal(signal.SIGINT)  # KeyboardInterrupt -> atexit flushes the span processor
        _, stderr = app.communicate(timeout=30)
        assert app.returncode == 0, stderr
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()

    # Datagrams the app sent before exiting are queued before this one: once it is read,
    # everything the app sent has been read.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        payload = b'{"format":"json","version":1}\n' + json.dumps(SENTINEL).encode()
        sock.sendto(payload, ("127.0.0.1", udp_daemon.port))
    documents = udp_daemon.wait_until(lambda docs: SENTINEL in docs)
    segments = [doc for doc in documents if doc != SENTINEL]
    urls = [_url(doc) for doc in segments]
    assert len(segments) == 1, segments
    assert urls[0].endswith("/api"), segments
    assert segments[0]["name"] == "shop"
    assert not any("/healthcheck" in json.dumps(doc) for doc in segments)


def _url(document: dict[str, Any]) -> str:
    return str(document.get("http", {}).get("request", {}).get("url", ""))
