"""Runs a documented shell block inside a private network namespace, where its fixed ports
(2000, 4317) are free and nothing can leave: ``unshare -rn python netns_driver.py SPEC``.

Standard library only: it runs under the docs venv's Python. SPEC is JSON:
``{"mode": "udp"|"collector"|"daemon", "script": str, "cwd": str}``. Prints one JSON line:
the block's exit code and output, and what arrived (segment names, or the collector's event).

- ``udp``: a UDP socket on 127.0.0.1:2000 (the daemon's default) takes what the block sends.
- ``collector``: ``otel-xray-collector`` with its defaults runs while the block does; the
  result holds the trace summaries its API returns afterwards.
- ``daemon``: the block itself starts a server; its first JSON stdout line (the collector's
  ``listening`` event) is returned and the block is stopped.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from typing import Any

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
STARTUP_TIMEOUT = 60.0


def loopback_up() -> None:
    """A new network namespace starts with `lo` down; bring it up (as `ip link set lo up`)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = struct.pack("16sH14x", b"lo", 0)
    flags = struct.unpack("16sH14x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
    fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    probe.close()


def first_json_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            return event
    raise RuntimeError("no JSON start-up line")


def stop(process: subprocess.Popen[str]) -> str:
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return err


def drain(sock: socket.socket) -> list[str]:
    names = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(70_000)
        except BlockingIOError:
            return names
        names.append(json.loads(data.split(b"\n", 1)[1])["name"])


def summaries() -> list[dict[str, Any]]:
    now = time.time()
    request = urllib.request.Request(
        "http://127.0.0.1:2000/TraceSummaries",
        data=json.dumps({"StartTime": now - 3600, "EndTime": now + 60}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        found: list[dict[str, Any]] = json.load(response)["TraceSummaries"]
        return found


def main() -> None:
    spec = json.loads(sys.argv[1])
    loopback_up()
    result: dict[str, Any] = {}
    shell = ["bash", "-euo", "pipefail", "-c", spec["script"]]
    if spec["mode"] == "daemon":
        process = subprocess.Popen(
            shell, cwd=spec["cwd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        result["event"] = first_json_line(process)
        result["stderr"] = stop(process)
        print(json.dumps(result))
        return
    receiver = collector = None
    if spec["mode"] == "udp":
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 2000))
    else:
        collector = subprocess.Popen(
            ["otel-xray-collector"], cwd=spec["cwd"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        first_json_line(collector)
    ran = subprocess.run(shell, cwd=spec["cwd"], capture_output=True, text=True, timeout=300)
    result.update(returncode=ran.returncode, stdout=ran.stdout, stderr=ran.stderr)
    if receiver is not None:
        result["segments"] = drain(receiver)
    if collector is not None:
        # The block has exited, so its spans were exported; the collector stores them within
        # its commit interval. Poll its API until they show (or give up after 30 s).
        deadline = time.monotonic() + 30
        found = summaries()
        while not found and time.monotonic() < deadline:
            time.sleep(0.1)
            found = summaries()
        result["summaries"] = found
        result["collector_stderr"] = stop(collector)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
