"""Run ``otel-xray-collector`` as a real subprocess and read its ports from the listening line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

CONSOLE_SCRIPT = Path(sys.executable).with_name("otel-xray-collector")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class CollectorProcess:
    """One collector process on ephemeral 127.0.0.1 ports; ``stop()`` or ``kill()`` ends it."""

    def __init__(self, db: Path | str, *extra_args: str, otlp: bool = True) -> None:
        self.db = db
        args = [
            str(CONSOLE_SCRIPT),
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--otlp",
            "127.0.0.1:0" if otlp else "off",
            "--otlp-http",
            "127.0.0.1:0" if otlp else "off",
            "--db",
            str(db),
            *extra_args,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.stderr_lines: list[str] = []
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            raise RuntimeError("collector exited before listening:\n" + self.stderr_text())
        self.listening: dict[str, Any] = json.loads(line)
        udp = self.listening["udp"]
        self.udp_address = _address(udp) if udp else None  # None: --ingest off / --udp off
        self.tcp_address = _address(self.listening["tcp"])
        self.otlp_address = _address(self.listening["otlp"]) if self.listening["otlp"] else None
        otlp_http = self.listening.get("otlp_http")
        self.otlp_http_address = _address(otlp_http) if otlp_http else None
        self.endpoint_url = f"http://{self.listening['tcp']}"

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def stderr_text(self) -> str:
        return "".join(self.stderr_lines)

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.endpoint_url + path, timeout=10) as response:
            return json.loads(response.read())

    def status(self) -> Any:
        return self.get_json("/status")

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait: the clean-shutdown path."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._close_pipes()
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=20)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr_reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def start_error(db: Path | str) -> str:
    """Run the console script on ``db`` expecting it to refuse to start (exit code 1); its one
    line of stderr."""
    run = subprocess.run(
        [str(CONSOLE_SCRIPT), "--db", str(db), "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0",
         "--otlp", "off", "--otlp-http", "off"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run
    [line] = run.stderr.strip().splitlines()
    return line
