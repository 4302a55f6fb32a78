"""The service map in a real browser, fed by two real Flask services through a real collector."""

from __future__ import annotations

import json
import random
import re
import time

from otel_xray_collector.app import Collector
from playwright.sync_api import expect

from .conftest import ConsolePage
from .console_scenario import Shop
from .console_traffic import LIVE_TIMEOUT_MS, api, send_traffic


def test_map_shows_both_services_and_the_edge_between_them(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 3)
    page = console.open()

    front = page.locator('g.node[data-name="front"]:not(.client)')
    back = page.locator('g.node[data-name="back"]')
    expect(front).to_have_count(1)
    expect(back).to_have_count(1)
    expect(page.locator('g.node.client[data-name="front"]')).to_have_count(1)
    expect(page.locator('g.edge[data-source="front"][data-target="back"]')).to_have_count(1)
    expect(front).to_have_attribute("data-health", "ok")
    expect(back).to_have_attribute("data-health", "ok")
    expect(front).to_have_attribute("aria-label", re.compile(r"^front, .*100% OK"))
    expect(front.locator(".node-rate")).to_contain_text("t/min")
    console.screenshot("map")

    # Selecting with the keyboard shows the node's status counts and distribution...
    front.focus()
    page.keyboard.press("Enter")
    panel = page.locator(".details-panel")
    expect(panel.get_by_test_id("panel-title")).to_have_text("front")
    expect(panel.locator(".status-count.status-ok dd")).to_contain_text("3")
    expect(
        panel.locator('svg.chart[aria-label^="Response time distribution: 3 requests"]')
    ).to_be_visible()
    console.screenshot("map-selected")
    # ...and links to its traces, filtered with the same expression GetTraceSummaries takes.
    panel.get_by_test_id("view-traces").click()
    expect(page.get_by_test_id("filter-input")).to_have_value('service("front")')
    expect(page.locator("tr[data-trace-id]")).to_have_count(3)


def test_selecting_the_edge_links_to_its_traces(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout", "/checkout", "/health"])
    page = console.open("#/map")
    edge = page.locator('g.edge[data-source="front"][data-target="back"]')
    edge.focus()
    page.keyboard.press("Enter")
    expect(edge).to_have_attribute("aria-pressed", "true")
    panel = page.locator(".details-panel")
    expect(panel.get_by_test_id("panel-title")).to_have_text("front → back")
    expect(panel.locator(".status-count.status-ok dd")).to_contain_text("2")
    panel.get_by_test_id("view-traces").click()
    expect(page.get_by_test_id("filter-input")).to_have_value('edge("front", "back")')
    expect(page.locator("tr[data-trace-id]")).to_have_count(2)
    console.screenshot("edge-traces")


def test_front_turns_red_without_reload_when_back_is_stopped(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 2)
    page = console.open("#/map")
    front = page.locator('g.node[data-name="front"]:not(.client)')
    expect(front).to_have_attribute("data-health", "ok")
    expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")

    shop.back.stop()
    statuses = send_traffic(shop, collector, ["/checkout"] * 3)
    assert statuses == [500, 500, 500]

    # Live polling picks the faults up: front's ring gets its red share, its name turns red.
    expect(front).to_have_attribute("data-health", "fault", timeout=LIVE_TIMEOUT_MS)
    expect(front.locator(".ring-fault")).to_have_count(1)
    expect(front).to_have_attribute("aria-label", re.compile(re.escape("60% Fault (5xx)")))
    fill = front.locator(".node-name").evaluate("node => getComputedStyle(node).fill")
    assert fill == "rgb(177, 39, 12)", fill
    console.screenshot("map-back-down")


def _chain_documents(count: int) -> list[str]:
    """A 3-level fan-out of `count` services (one trace per leaf), as real segment documents."""
    now = time.time()
    documents = []
    mids = [f"mid-{i}" for i in range(5)]
    leaves = [f"leaf-{i}" for i in range(count - len(mids) - 1)]
    rng = random.Random(3)
    for index, leaf in enumerate(leaves):
        trace_id = f"1-{int(now):08x}-{rng.getrandbits(96):024x}"
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(5)]
        mid = mids[index % len(mids)]
        start = now - 5
        documents.append(
            {
                "trace_id": trace_id,
                "id": ids[0],
                "name": "gateway",
                "start_time": start,
                "end_time": start + 0.05,
                "http": {
                    "request": {"method": "GET", "url": f"http://gw/{leaf}"},
                    "response": {"status": 200},
                },
                "subsegments": [
                    {
                        "id": ids[1],
                        "name": mid,
                        "start_time": start + 0.001,
                        "end_time": start + 0.04,
                        "namespace": "remote",
                        "http": {
                            "request": {"method": "GET", "url": f"http://{mid}/"},
                            "response": {"status": 200},
                        },
                    }
                ],
            }
        )
        documents.append(
            {
                "trace_id": trace_id,
                "id": ids[2],
                "parent_id": ids[1],
                "name": mid,
                "start_time": start + 0.002,
                "end_time": start + 0.039,
                "http": {
                    "request": {"method": "GET", "url": f"http://{mid}/"},
                    "response": {"status": 200},
                },
                "subsegments": [
                    {
                        "id": ids[3],
                        "name": leaf,
                        "start_time": start + 0.003,
                        "end_time": start + 0.02,
                        "namespace": "remote",
                        "http": {
                            "request": {"method": "GET", "url": f"http://{leaf}/"},
                            "response": {"status": 200},
                        },
                    }
                ],
            }
        )
    return [json.dumps(d) for d in documents]


def test_map_lays_out_forty_services_left_to_right_without_overlap(
    collector: Collector, console: ConsolePage
) -> None:
    status, answer = api(
        collector, "TraceSegments", {"TraceSegmentDocuments": _chain_documents(40)}
    )
    assert status == 200 and answer["UnprocessedTraceSegments"] == []
    page = console.open("#/map")
    nodes = page.locator("g.node")
    expect(nodes).to_have_count(41)  # 40 services + the client
    page.get_by_role("button", name="Fit map to view").click()
    boxes = page.evaluate("""() => [...document.querySelectorAll('g.node')].map(g => {
        const r = g.querySelector('.node-body').getBoundingClientRect();
        return {name: g.dataset.name, client: g.classList.contains('client'),
                x: r.x, y: r.y, w: r.width, h: r.height};
    })""")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{a['name']} overlaps {b['name']}"
    x = {(b["name"], b["client"]): b["x"] for b in boxes}
    assert x[("gateway", True)] < x[("gateway", False)] < x[("mid-0", False)] < x[("leaf-0", False)]
    console.screenshot("map-forty-services")
