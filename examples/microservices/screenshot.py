"""Screenshots of the console showing what `make demo` shows: docs/console-map.png and
docs/console-trace.png (the images in README.md and docs/console.md).

Runs the demo's scenario (healthy traffic, then back goes down) on the local collector, then
opens the console in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright,
both installed by ``make test``) and captures the service map and the trace view of a failed
request. Everything stays on 127.0.0.1 (the loopback guard runs as in the demo).

    .venv/bin/python -m examples.microservices.screenshot            # writes docs/*.png
    .venv/bin/python -m examples.microservices.screenshot --out DIR  # elsewhere
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from examples.microservices.demo import ROOT, install_loopback_guard, loopback_violations
from examples.microservices.scenario import Scenario

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
MAP_FILE = "console-map.png"
TRACE_FILE = "console-trace.png"


def run_scenario(scenario: Scenario, requests: int) -> None:
    """The demo's two phases, and the wait until every trace is in the store."""
    healthy = scenario.drive(requests, label="healthy traffic")
    scenario.stop_back()
    broken = scenario.drive(requests, label="back is down")
    scenario.wait_for_traces(healthy.ok + healthy.failed + broken.ok + broken.failed)


def capture(console_url: str, out: Path) -> list[Path]:
    """The service map with the failing node selected, then a faulted trace."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            page.goto(f"{console_url}/#/map")
            front = page.locator('g.node[data-name="front"]:not(.client)')
            expect(front).to_have_attribute("data-health", "fault", timeout=30_000)
            front.focus()
            page.keyboard.press("Enter")
            expect(page.locator(".details-panel svg.chart").first).to_be_visible()
            page.mouse.move(0, 0)  # no hover highlight in the picture
            map_path = out / MAP_FILE
            page.screenshot(path=str(map_path))

            page.goto(f"{console_url}/#/traces")
            failed = page.locator("tr[data-trace-id].status-row-fault").first
            expect(failed).to_be_visible(timeout=30_000)
            failed.get_by_role("link").click()
            expect(page.get_by_test_id("exception").first).to_be_visible()
            expect(page.locator(".stack li.frame-app").first).to_be_visible()
            page.mouse.move(0, 0)
            trace_path = out / TRACE_FILE
            page.screenshot(path=str(trace_path), full_page=True)
        finally:
            browser.close()
    return [map_path, trace_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    parser.add_argument("--requests", type=int, default=24, help="requests per phase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otel-xray-screenshot-") as work:
        workdir = Path(work)
        guard_log = install_loopback_guard(workdir)
        with Scenario(workdir, prefer_default_ports=False) as scenario:
            run_scenario(scenario, args.requests)
            paths = capture(f"http://{scenario.addresses['tcp']}", args.out)
        violations = loopback_violations(guard_log)
    if violations:
        print("\n".join(violations), file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
