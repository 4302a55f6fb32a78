"""Request end -> datagram received: how long a segment takes to reach the daemon.

Prints ONE JSON line. A request is the one of ``bench/request.py`` (SERVER span, HTTP call, SQL
span). Requests run one after another. A daemon stand-in *in another process* notes when each
datagram arrives (wall clock) and subtracts the segment's own ``end_time``, which the tracer
recorded when the request's root span ended: the same clock, the same definition for every peer.
Peers in the same run:

* ``otel_xray``: ``configure()``'s default setup (the trace-aware processor), 1,000 requests;
* ``xray_sdk``: aws-xray-sdk, which sends synchronously when the segment ends: the floor;
* ``batch``: the SDK's ``BatchSpanProcessor`` with otel-xray's exporter (``configure(
  processor="batch")``, the previous default), a few requests only: it waits for its 5 s timer.

Target: ``otel_xray`` p99 <= 20 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace.sampling import ALWAYS_ON  # noqa: E402

from bench.exporter import RESOURCE  # noqa: E402
from bench.request import Requests, otel_requests, xray_sdk_requests  # noqa: E402
from otel_xray import configure  # noqa: E402

REQUESTS = 1000
XRAY_SDK_REQUESTS = 300
BATCH_REQUESTS = 4

# Receives datagrams and prints, for each segment, milliseconds from its end_time to arrival.
_RECEIVER = """
import json, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
while True:
    data = sock.recv(70000)
    now = time.time()
    if data == b"stop":
        break
    document = json.loads(data.partition(b"\\n")[2])
    if "type" not in document:
        print((now - document["end_time"]) * 1000, flush=True)
"""


class Receiver:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _RECEIVER], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        self.port = int(self.stdout.readline())
        self.address = f"127.0.0.1:{self.port}"

    def next_latency(self) -> float:
        """Milliseconds from the next segment's end to its arrival."""
        return float(self.stdout.readline())

    def close(self) -> None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stop:
            stop.sendto(b"stop", ("127.0.0.1", self.port))
        self.process.wait(timeout=30)


def latencies(
    receiver: Receiver, run_one: Callable[[int], None], count: int, offset: int
) -> list[float]:
    """Milliseconds from the end of each request to its datagram's arrival."""
    found: list[float] = []
    for index in range(count):
        run_one(offset + index)
        found.append(receiver.next_latency())
    return found


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "max_ms": round(max(values), 3),
    }


def one_request(run: Requests) -> Callable[[int], None]:
    return lambda index: run(index, 1)


def main() -> None:
    receiver = Receiver()
    try:
        ours = configure(
            "front",
            resource=RESOURCE,
            sampler=ALWAYS_ON,
            daemon_address=receiver.address,
            set_global=False,
        )
        batch = configure(
            "front",
            resource=RESOURCE,
            sampler=ALWAYS_ON,
            daemon_address=receiver.address,
            set_global=False,
            processor="batch",
        )
        ours_run = one_request(otel_requests(ours))
        latencies(receiver, ours_run, 20, 0)  # warm-up
        measured = latencies(receiver, ours_run, REQUESTS, 100)
        sdk = latencies(
            receiver, one_request(xray_sdk_requests(receiver.address)), XRAY_SDK_REQUESTS, 0
        )
        batched = latencies(receiver, one_request(otel_requests(batch)), BATCH_REQUESTS, 0)
        ours.shutdown()
        batch.shutdown()
    finally:
        receiver.close()
    ours_summary = summary(measured)
    result = {
        "bench": "latency",
        "requests": REQUESTS,
        "otel_xray": ours_summary,
        "xray_sdk": {"requests": XRAY_SDK_REQUESTS, **summary(sdk)},
        "batch_processor": {"requests": BATCH_REQUESTS, **summary(batched)},
        "p99_vs_xray_sdk_p99": round(ours_summary["p99_ms"] / max(summary(sdk)["p99_ms"], 1e-3), 2),
        "targets": {"otel_xray_p99<=20ms": ours_summary["p99_ms"] <= 20},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
