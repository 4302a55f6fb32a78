"""Running the shop app as a process and talking to it (helpers for the e2e tests)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SHOP = Path(__file__).resolve().parent / "apps" / "shop.py"
VENV_BIN = Path(sys.executable).parent


def get(url: str, headers: Mapping[str, str] | None = None) -> int:
    """GET with urllib (not instrumented by anything here); returns the status code."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


@dataclass
class Shop:
    url: str
    process: subprocess.Popen[str]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: no AWS/OTEL variable of the developer's shell leaks into the app."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "AWS_", "ECS_", "_X_AMZN")) and k != "PYTHONPATH"
    }
    # IMDS probing by the EC2 detector must stay on loopback: point it at a refused port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env.update(extra)
    return env


@contextmanager
def start_shop(command: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[Shop]:
    """Start the shop and yield it once it listens; on exit kill it if it is still running (the
    test decides how it ends: ``/quit``, a signal...)."""
    stderr_path = tmp_path / "shop.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, str(SHOP)], stdout=subprocess.PIPE, stderr=stderr, env=env, text=True
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        assert line.strip().isdigit(), f"shop did not start: {stderr_path.read_text()}"
        yield Shop(f"http://127.0.0.1:{int(line)}", process, stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def run_shop(command: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[Shop]:
    """Start the shop, yield it once it listens; on exit ask it to quit and wait for it."""
    with start_shop(command, env, tmp_path) as shop:
        yield shop
        get(f"{shop.url}/quit")
        shop.process.wait(timeout=60)
