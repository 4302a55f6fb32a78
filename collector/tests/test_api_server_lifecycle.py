"""The HTTP listener's lifecycle: stop() ends the serving thread whatever state its loop is in."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from otel_xray_collector.api.server import HttpListener
from otel_xray_collector.app import Collector

from .conftest import make_config


def _ok(environ: object, start_response: object) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])  # type: ignore[operator]
    return [json.dumps({"ok": True}).encode()]


def test_stop_ends_the_thread_even_when_the_loops_wake_up_pipe_is_gone() -> None:
    listener = HttpListener("127.0.0.1", 0, _ok, name="--tcp")
    listener.start()
    host, port = listener.address
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as answer:
        assert answer.status == 200
    # What a loop that closed its trigger (a descriptor gone bad under it) leaves behind.
    listener._server.trigger.close()
    listener.stop()
    assert not listener._thread.is_alive()


def test_stop_twice_is_harmless() -> None:
    listener = HttpListener("127.0.0.1", 0, _ok, name="--tcp")
    listener.start()
    listener.stop()
    listener.stop()
    assert not listener._thread.is_alive()


def test_a_second_start_of_a_running_collector_binds_nothing_new(tmp_path: Path) -> None:
    collector = Collector(make_config(tmp_path / "x.db", otlp=None, otlp_http=None)).start()
    try:
        addresses = (collector.udp_address, collector.tcp_address)
        with collector.start() as same:
            assert same is collector
            assert (same.udp_address, same.tcp_address) == addresses
    finally:
        collector.stop()
