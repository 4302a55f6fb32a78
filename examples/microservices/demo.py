"""`make demo`: the classic X-Ray scenario on the local collector, no AWS account needed.

front calls back three times per request; traffic flows; then back goes down and front's calls
fail. The demo prints the service map, the slowest and the faulted traces (with the downstream
connection error) and the console URL, then keeps the console up until Ctrl-C (or exits at once
with ``--exit`` / ``DEMO_EXIT=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from examples.microservices.scenario import DriveResult, Scenario

ROOT = Path(__file__).resolve().parents[2]
GUARD_DIR = ROOT / "tools" / "netguard"


def install_loopback_guard(workdir: Path) -> Path:
    """Guard this process and every Python process the demo starts (tools/netguard).

    Returns the violations log: when it has lines at the end, some process tried to reach
    beyond loopback and the demo fails. Under the test suite the session's log is kept.
    """
    if str(GUARD_DIR) not in sys.path:
        sys.path.insert(0, str(GUARD_DIR))
    import loopback_guard

    inherited = os.environ.get(loopback_guard.LOG_ENV)
    log = Path(inherited) if inherited else workdir / "loopback-guard.log"
    if not inherited:
        log.unlink(missing_ok=True)
    os.environ.update(loopback_guard.environment(log))
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    loopback_guard.install()
    return log


def loopback_violations(log: Path) -> list[str]:
    import loopback_guard

    return loopback_guard.violations(log)


class Style:
    """ANSI colours when writing to a terminal (and NO_COLOR unset), plain text otherwise."""

    def __init__(self, stream: Any) -> None:
        self.enabled = stream.isatty() and "NO_COLOR" not in os.environ

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def health(self, text: str, stats: dict[str, Any]) -> str:
        faults = stats.get("FaultStatistics", {}).get("TotalCount", 0)
        errors = stats.get("ErrorStatistics", {}).get("TotalCount", 0)
        if faults:
            return self(text, "1;31")
        if errors:
            return self(text, "33")
        return self(text, "32")


def progress_bar(label: str, done: int, total: int, result: DriveResult) -> None:
    if not sys.stderr.isatty() and done < total:
        return  # a log file gets the final line only
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(
        f"\r  {label:<24} [{bar}] {done:>3}/{total}  ok {result.ok:>3}  failed {result.failed:>3}"
    )
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _counts(stats: dict[str, Any]) -> str:
    ok = stats.get("OkCount", 0)
    errors = stats.get("ErrorStatistics", {})
    faults = stats.get("FaultStatistics", {}).get("TotalCount", 0)
    throttles = errors.get("ThrottleCount", 0)
    total = stats.get("TotalCount", 0)
    avg = (stats.get("TotalResponseTime", 0.0) / total * 1000) if total else 0.0
    return (
        f"ok {ok:>3}  error {errors.get('TotalCount', 0):>3}  throttle {throttles:>3}  "
        f"fault {faults:>3}  avg {avg:7.1f} ms"
    )


def _label(service: dict[str, Any]) -> str:
    """The client node carries its root service's name; show it as the client it is."""
    return "client" if service.get("Type") == "client" else str(service.get("Name", "?"))


def render_service_map(graph: dict[str, Any], style: Style) -> list[str]:
    services = graph.get("Services", [])
    by_ref = {service["ReferenceId"]: service for service in services}
    lines = [style("Service map", "1")]
    for service in sorted(services, key=lambda s: (s.get("Type") != "client", s.get("Name", ""))):
        if service.get("Type") == "client":
            continue  # drawn through its edge below
        stats = service.get("SummaryStatistics") or {}
        name = f"{_label(service)} ({service.get('Type') or 'service'})"
        counts = _counts(stats) if stats else "(no own statistics)"
        lines.append(f"  {style.health('●', stats)} {name:<40} {counts}")
    lines.append(style("Edges", "1"))
    for service in services:
        for edge in service.get("Edges", []):
            target = by_ref.get(edge.get("ReferenceId"))
            if target is None:
                continue
            stats = edge.get("SummaryStatistics") or {}
            arrow = f"{_label(service)} → {_label(target)}"
            lines.append(f"  {style.health('━━▶', stats)} {arrow:<38} {_counts(stats)}")
    return lines


def _failing_entity(document: dict[str, Any], depth: int = 0) -> tuple[int, dict[str, Any]] | None:
    """The deepest entity in a document tree that recorded an exception: the failed call."""
    best: tuple[int, dict[str, Any]] | None = None
    cause = document.get("cause")
    if isinstance(cause, dict) and cause.get("exceptions"):
        best = (depth, document)
    for child in document.get("subsegments", []) or []:
        found = _failing_entity(child, depth + 1)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def _exception_text(exception: dict[str, Any]) -> str:
    return f"{exception.get('type', '')}: {exception.get('message', '')}".strip(": ")


def render_traces(scenario: Scenario, style: Style) -> list[str]:
    client = scenario.xray()
    summaries = list(scenario.trace_summaries(client))
    lines = [style("Slowest traces", "1")]
    for summary in sorted(summaries, key=lambda s: -s.get("ResponseTime", 0))[:3]:
        http = summary.get("Http", {})
        lines.append(
            f"  {summary['Id']}  {summary.get('ResponseTime', 0) * 1000:7.1f} ms  "
            f"{http.get('HttpMethod', '')} {http.get('HttpURL', '')} "
            f"{http.get('HttpStatus', '')}"
        )
    faulted = [s for s in summaries if s.get("HasFault")]
    lines.append(style(f"Faulted traces ({len(faulted)} of {len(summaries)})", "1"))
    if faulted:
        ids = [s["Id"] for s in faulted[:3]]
        traces = client.batch_get_traces(TraceIds=ids).get("Traces", [])
        for trace in traces:
            lines.append(f"  {trace['Id']}")
            failures = [
                _failing_entity(json.loads(segment["Document"]))
                for segment in trace.get("Segments", [])
            ]
            found = [f for f in failures if f is not None]
            if not found:
                continue
            entity = max(found, key=lambda item: item[0])[1]
            exceptions = entity["cause"]["exceptions"]
            lines.append(
                f"    {style('✖', '1;31')} {entity.get('name')}: "
                f"{_exception_text(exceptions[0])[:150]}"
            )
            if len(exceptions) > 1:
                lines.append(f"      root cause: {_exception_text(exceptions[-1])[:140]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exit",
        action="store_true",
        default=os.environ.get("DEMO_EXIT") == "1",
        help="exit after printing instead of serving the console until Ctrl-C",
    )
    parser.add_argument("--requests", type=int, default=24, help="requests per phase")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    parser.add_argument(
        "--dns",
        action="store_true",
        help="also show the DNS failure: front calls a host name that does not "
        "resolve (back.invalid)",
    )
    args = parser.parse_args(argv)
    # Ctrl-C must stop everything even when started from a script that ignores SIGINT for
    # background jobs; services started from here inherit the default handling too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    style = Style(sys.stdout)
    out = sys.stdout

    print(
        style("otel-xray demo: front → back (×3), SQLite, DynamoDB (moto); all on 127.0.0.1", "1"),
        file=out,
    )
    # Each run starts from an empty store, so the map printed below is this run's traffic.
    args.workdir.mkdir(parents=True, exist_ok=True)
    for stale in args.workdir.glob("xray.db*"):
        stale.unlink()
    guard_log = install_loopback_guard(args.workdir)
    with Scenario(args.workdir) as scenario:
        print(
            f"  collector: udp {scenario.addresses['udp']}  api+console "
            f"http://{scenario.addresses['tcp']}/  (db {args.workdir / 'xray.db'})",
            file=out,
        )
        print(
            f"  front {scenario.services['front'].url}   back {scenario.services['back'].url}",
            file=out,
        )
        out.flush()
        healthy = scenario.drive(args.requests, label="healthy traffic", progress=progress_bar)
        scenario.stop_back()
        print("  back stopped: front's calls to it now fail (connection refused)", file=sys.stderr)
        broken = scenario.drive(args.requests, label="back is down", progress=progress_bar)
        expected = healthy.ok + healthy.failed + broken.ok + broken.failed
        if args.dns:
            scenario.point_front_at("http://back.invalid:8080")
            print("  front now calls back.invalid: the name does not resolve", file=sys.stderr)
            unresolved = scenario.drive(
                max(1, args.requests // 2), label="back's name is gone", progress=progress_bar
            )
            expected += unresolved.ok + unresolved.failed
        scenario.wait_for_traces(expected)
        print(file=out)
        for line in render_service_map(scenario.service_graph(), style):
            print(line, file=out)
        print(file=out)
        for line in render_traces(scenario, style):
            print(line, file=out)
        print(file=out)
        console_url = f"http://{scenario.addresses['tcp']}/"
        print(f"Console: {style(console_url, '1;36')}", file=out)
        out.flush()
        if not args.exit:
            print("Serving the console; press Ctrl-C to stop everything.", file=out)
            out.flush()
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
    print("Stopped the collector, front, back and moto.", file=out)
    violations = loopback_violations(guard_log)
    if violations:
        print(f"{len(violations)} attempt(s) to reach beyond loopback:", file=sys.stderr)
        for line in violations:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("Nothing left loopback (the loopback guard saw no other address).", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
