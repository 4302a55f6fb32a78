"""Per-decision cost of the X-Ray samplers against the SDK's TraceIdRatioBased, in one run.

Prints ONE JSON line. Every sampler decides root spans carrying the attributes Flask's
instrumentation passes at span start (default semantic conventions); X-Ray rules are the
migration example (``GET /healthcheck`` never, else 1/s + 5 %), so the decision walks one
non-matching rule then the default, the common shape. The remote sampler gets the same rules
(plus its Default) from a real HTTP server on 127.0.0.1, with its poller stopped.
Figures are the median of several repetitions, in nanoseconds per decision.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased  # noqa: E402

from otel_xray.sampling import (  # noqa: E402
    XRayLocalSampler,
    XRayParentBased,
    XRayRemoteSampler,
)
from tests.sampling.api_server import SamplingApiServer, sampling_rule  # noqa: E402

RULES = {
    "version": 2,
    "rules": [
        {
            "host": "*",
            "http_method": "GET",
            "url_path": "/healthcheck",
            "fixed_target": 0,
            "rate": 0,
        }
    ],
    "default": {"fixed_target": 1, "rate": 0.05},
}
ATTRIBUTES: dict[str, Any] = {
    "http.method": "GET",
    "http.server_name": "127.0.0.1",
    "http.scheme": "http",
    "net.host.name": "127.0.0.1:5000",
    "http.host": "127.0.0.1:5000",
    "net.host.port": 5000,
    "http.target": "/api/orders?page=2",
    "net.peer.ip": "127.0.0.1",
    "net.peer.port": 53422,
    "http.user_agent": "python-requests/2.32.3",
    "http.flavor": "1.1",
    "http.route": "/api/orders",
}
TRACE_ID = 0x6761C0A3B2E8F7D5A4C3B2A1908F7E6D
DECISIONS = 20_000
REPEATS = 25


def _decider(sampler: Sampler) -> Callable[[], None]:
    should_sample = sampler.should_sample

    def decide() -> None:
        should_sample(None, TRACE_ID, "GET /api/orders", None, ATTRIBUTES)

    return decide


def _costs(samplers: dict[str, Sampler]) -> dict[str, float]:
    """Median ns/decision; samplers take turns in every repetition so drift hits all alike."""
    deciders = {name: _decider(sampler) for name, sampler in samplers.items()}
    for decide in deciders.values():
        decide()
    runs: dict[str, list[float]] = {name: [] for name in deciders}
    for _ in range(REPEATS):
        for name, decide in deciders.items():
            runs[name].append(timeit.timeit(decide, number=DECISIONS) / DECISIONS * 1e9)
    return {name: round(statistics.median(times), 1) for name, times in runs.items()}


def main() -> None:
    api = SamplingApiServer()
    api.rules = [
        sampling_rule("no-healthchecks", priority=1, method="GET", path="/healthcheck"),
        sampling_rule("Default", priority=10000, reservoir=1, fixed_rate=0.05),
    ]
    remote = XRayRemoteSampler(
        resource=Resource.create({"service.name": "shop"}),
        daemon_address=api.address,
        autostart=False,
    )
    try:
        assert remote.refresh_rules(), "the sampling API server did not answer"
    finally:
        api.stop()
    roots: dict[str, Sampler] = {
        "traceidratio": TraceIdRatioBased(0.05),
        "xray_local": XRayLocalSampler(RULES),
        "xray_remote": remote,
    }
    samplers: dict[str, Sampler] = dict(roots)
    # Each wrapped as deployed: the SDK's ParentBased for TraceIdRatioBased (what
    # parentbased_traceidratio gives), XRayParentBased for ours (what the entry points give).
    samplers["parentbased_traceidratio"] = ParentBased(roots["traceidratio"])
    samplers["parentbased_xray_local"] = XRayParentBased(roots["xray_local"])
    samplers["parentbased_xray_remote"] = XRayParentBased(roots["xray_remote"])
    costs = _costs(samplers)
    ratio: Callable[[str, str], float] = lambda a, b: round(costs[a] / costs[b], 2)  # noqa: E731
    print(
        json.dumps(
            {
                "bench": "sampler",
                "unit": "ns/decision",
                "python": platform.python_version(),
                "decisions": DECISIONS,
                "repeats": REPEATS,
                "statistic": "median",
                "cost": costs,
                "ratio_vs_traceidratio": {
                    "xray_local": ratio("xray_local", "traceidratio"),
                    "xray_remote": ratio("xray_remote", "traceidratio"),
                    "parentbased_xray_local": ratio(
                        "parentbased_xray_local", "parentbased_traceidratio"
                    ),
                    "parentbased_xray_remote": ratio(
                        "parentbased_xray_remote", "parentbased_traceidratio"
                    ),
                },
                "target_max_ratio": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
