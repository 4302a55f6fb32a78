"""Console render times with 10,000 traces in the store, beside the raw API calls they make.

Prints ONE JSON line. A collector runs in-process on ephemeral loopback ports with a fresh
SQLite file; 10,000 two-service traces (front -> back over HTTP, 1 in 10 faulted, spread over
the last 10 minutes) are written through its ingest (PutTraceSegments, 500 documents a call).
Then, in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):

* ``map_first_render_ms``: navigation start -> the service map drawn (the console's own mark),
  so it includes loading the page and its scripts; ``map_fetch_and_draw_ms`` is the view's
  part alone: its GetServiceGraph request sent -> map drawn;
* ``traces_first_render_ms``: navigation start -> the first page of the trace list and its
  groups drawn (``traces_fetch_and_draw_ms``: first GetTraceSummaries sent -> drawn);
* ``traces_regroup_ms``: with the console's full working set loaded (up to 1,000 summaries),
  changing "Group by" until the new groups are on screen (includes one driver round trip);

and, in the same run, the raw API calls the views make (``GetServiceGraph`` over the same 15
minute window, the first ``GetTraceSummaries`` page), timed from Python with keep-alive off
(as the browser's first call). Ratios are render / raw API. Figures are medians of REPEAT runs.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

from otel_xray_collector.app import Collector  # noqa: E402
from otel_xray_collector.config import CollectorConfig  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

TRACES = 10_000
BATCH = 500
REPEAT = 5
WINDOW = 900  # the console's default range: last 15 minutes
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def trace_documents(rng: random.Random, now: float, index: int) -> list[dict[str, Any]]:
    start = now - 600 * rng.random() - 5
    trace_id = f"1-{int(start):08x}-{rng.getrandbits(96):024x}"
    front_id, call_id, back_id = (f"{rng.getrandbits(64):016x}" for _ in range(3))
    faulted = index % 10 == 0
    path = ("/checkout", "/cart", "/search", "/health")[index % 4]
    back_time = rng.uniform(0.002, 0.05)
    status = 500 if faulted else 200
    front = {
        "trace_id": trace_id,
        "id": front_id,
        "name": "front",
        "start_time": start,
        "end_time": start + back_time + 0.004,
        "fault": faulted,
        "http": {
            "request": {"method": "GET", "url": f"http://shop.local{path}"},
            "response": {"status": status},
        },
        "annotations": {"tenant": ("acme", "globex")[index % 2]},
        "subsegments": [
            {
                "id": call_id,
                "name": "back",
                "namespace": "remote",
                "start_time": start + 0.001,
                "end_time": start + back_time + 0.003,
                "fault": faulted,
                "http": {
                    "request": {"method": "GET", "url": "http://back.local/price"},
                    "response": {"status": status},
                },
            }
        ],
    }
    back = {
        "trace_id": trace_id,
        "id": back_id,
        "parent_id": call_id,
        "name": "back",
        "start_time": start + 0.002,
        "end_time": start + back_time + 0.002,
        "fault": faulted,
        "http": {
            "request": {"method": "GET", "url": "http://back.local/price"},
            "response": {"status": status},
        },
    }
    return [front, back]


class Api:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(
                "POST", f"/{operation}", json.dumps(body), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            data = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"{operation}: {response.status} {data}")
            return data
        finally:
            connection.close()


def median_ms(action: Callable[[], Any]) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def load(api: Api, collector: Collector) -> float:
    rng = random.Random(42)
    now = time.time()
    documents = [json.dumps(d) for i in range(TRACES) for d in trace_documents(rng, now, i)]
    started = time.perf_counter()
    for offset in range(0, len(documents), BATCH):
        answer = api.call(
            "TraceSegments", {"TraceSegmentDocuments": documents[offset : offset + BATCH]}
        )
        if answer.get("UnprocessedTraceSegments"):
            raise RuntimeError(f"rejected: {answer['UnprocessedTraceSegments'][:3]}")
    if not collector.wait_for_datagrams(0, timeout=300):
        raise RuntimeError("the collector did not finish indexing")
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        collector = Collector(
            CollectorConfig(
                udp="127.0.0.1:0",
                tcp="127.0.0.1:0",
                otlp=None,
                otlp_http=None,
                db=str(Path(scratch) / "xray.db"),
            )
        ).start()
        try:
            host, port = collector.tcp_address
            api = Api(host, port)
            load_seconds = load(api, collector)

            def window() -> dict[str, float]:
                end = time.time() + 1
                return {"StartTime": end - WINDOW, "EndTime": end}

            graph_ms = median_ms(lambda: api.call("ServiceGraph", window()))
            summaries_ms = median_ms(lambda: api.call("TraceSummaries", window()))
            first_page = api.call("TraceSummaries", window())
            graph = api.call("ServiceGraph", window())
            graph_requests = sum(
                s.get("SummaryStatistics", {}).get("TotalCount", 0)
                for s in graph["Services"]
                if s["Name"] == "front" and s.get("Type") != "client"
            )

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                try:
                    figures = measure_browser(browser, collector.endpoint_url)
                finally:
                    browser.close()
        finally:
            collector.stop()

    result = {
        "bench": "console",
        "traces": TRACES,
        "load_seconds": round(load_seconds, 2),
        "summaries_first_page": len(first_page.get("TraceSummaries", [])),
        "graph_services": len(graph["Services"]),
        "graph_front_requests": graph_requests,
        "api_service_graph_ms": round(graph_ms, 1),
        "api_trace_summaries_first_page_ms": round(summaries_ms, 1),
        "map_first_render_ms": round(figures["map"], 1),
        "traces_first_render_ms": round(figures["traces"], 1),
        "traces_loaded_for_grouping": figures["loaded"],
        "traces_regroup_ms": round(figures["regroup"], 1),
        "map_fetch_and_draw_ms": round(figures["map_draw"], 1),
        "traces_fetch_and_draw_ms": round(figures["traces_draw"], 1),
        "map_fetch_and_draw_vs_api_ratio": round(figures["map_draw"] / graph_ms, 2),
        "traces_fetch_and_draw_vs_api_ratio": round(figures["traces_draw"] / summaries_ms, 2),
        "map_first_render_vs_api_ratio": round(figures["map"] / graph_ms, 2),
        "traces_first_render_vs_api_ratio": round(figures["traces"] / summaries_ms, 2),
        "repeat": REPEAT,
    }
    print(json.dumps(result))


def measure_browser(browser: Any, base_url: str) -> dict[str, Any]:
    maps, lists, regroups, map_draws, list_draws = [], [], [], [], []
    loaded = 0
    for _ in range(REPEAT):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        # Live polling paused, so a poll never overlaps what is measured.
        page.add_init_script("localStorage.setItem('otel-xray-console.live', 'off')")
        page.goto(f"{base_url}/#/map")
        page.wait_for_selector("body[data-map-rendered]", timeout=60_000)
        mark = page.evaluate("() => __xrayConsole.marks['map-rendered']")
        maps.append(mark["at"])
        map_draws.append(mark["ms"])
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.add_init_script("localStorage.setItem('otel-xray-console.live', 'off')")
        page.goto(f"{base_url}/#/traces")
        page.wait_for_selector("body[data-traces-rendered]", timeout=60_000)
        mark = page.evaluate("() => __xrayConsole.marks['traces-rendered']")
        lists.append(mark["at"])
        list_draws.append(mark["ms"])
        page.wait_for_selector('.view-status[data-state="ready"]', timeout=120_000)
        title = page.locator("#traces-title").text_content() or ""
        loaded = int(re.findall(r"[\d,]+", title)[-1].replace(",", ""))
        started = time.perf_counter()
        page.get_by_test_id("group-by").select_option("annotation.tenant")
        page.wait_for_selector('tr[data-group="acme"]', timeout=60_000)
        regroups.append((time.perf_counter() - started) * 1000)
        context.close()
    return {
        "map": statistics.median(maps),
        "traces": statistics.median(lists),
        "map_draw": statistics.median(map_draws),
        "traces_draw": statistics.median(list_draws),
        "regroup": statistics.median(regroups),
        "loaded": loaded,
    }


if __name__ == "__main__":
    main()
