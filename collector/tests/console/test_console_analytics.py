"""Analytics view, and the console's layout in a narrow (phone-sized) window."""

from __future__ import annotations

import re

from otel_xray_collector.app import Collector
from playwright.sync_api import expect

from .conftest import ConsolePage
from .console_scenario import Shop
from .console_traffic import send_traffic


def test_analytics_breaks_traces_down_by_http_status(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 3 + ["/health"])
    shop.back.stop()
    send_traffic(shop, collector, ["/checkout"] * 2)
    page = console.open("#/analytics")

    groups = page.get_by_test_id("analytics-groups").locator("tbody tr[data-group]")
    expect(groups).to_have_count(2)
    expect(page.locator('tr[data-group="200"] td').first).to_have_text("4")
    expect(page.locator('tr[data-group="500"] td').first).to_have_text("2")
    expect(page.get_by_test_id("analytics-histogram").get_by_role("img")).to_have_attribute(
        "aria-label", re.compile(r"^Response time distribution: 6 requests")
    )
    series = page.get_by_test_id("analytics-series").get_by_role("img")
    expect(series).to_have_attribute("aria-label", re.compile(r"6 requests, 2 faults, 0 errors"))

    # Selecting a group highlights it and links to exactly its traces.
    page.locator('tr[data-group="500"]').get_by_role("button").click()
    expect(series).to_have_attribute("aria-label", re.compile(r"for 500: 2 requests, 2 faults"))
    page.get_by_role("link", name="View these traces").click()
    expect(page.get_by_test_id("filter-input")).to_have_value("http.status = 500")
    expect(page.locator("tr[data-trace-id]")).to_have_count(2)
    page.get_by_role("link", name="Analytics").click()
    # The traces view has a "Group by" too: pick in the analytics view's own select, which
    # exists once the console has switched views (a busy browser routes the click late).
    page.get_by_role("region", name="Breakdown").get_by_label("Group by").select_option("url")
    expect(page.locator(f'tr[data-group="{shop.front.url}/checkout"] td').first).to_have_text("5")
    console.screenshot("analytics")


def test_console_fits_a_narrow_window(
    shop: Shop, collector: Collector, narrow_console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout", "/health"])
    page = narrow_console.open("#/map")
    expect(page.locator('g.node[data-name="back"]')).to_have_count(1)
    overflow = "() => document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    narrow_console.screenshot("narrow-map")

    page.get_by_role("link", name="Traces").click()
    expect(page.locator("tr[data-trace-id]")).to_have_count(2)
    assert page.evaluate(overflow) <= 0
    narrow_console.screenshot("narrow-traces", full_page=True)

    page.locator("tr[data-trace-id] a").first.click()
    expect(page.get_by_test_id("timeline").locator(".tl-row.kind-segment").first).to_be_visible()
    assert page.evaluate(overflow) <= 0
    narrow_console.screenshot("narrow-trace", full_page=True)


def test_time_range_and_live_controls(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/health"])
    page = console.open("#/traces")
    expect(page.locator("tr[data-trace-id]")).to_have_count(1)
    picker = page.get_by_test_id("time-range")
    expect(picker).to_have_value("15m")
    picker.select_option("1h")
    expect(page).to_have_url(re.compile(r"range=1h"))
    # The URL changes at once, the console applies it later (hashchange): until then a
    # "custom" pick would be undone by it. Applied, the view links carry the range.
    expect(page.locator('.nav-link[data-view="map"]')).to_have_attribute(
        "href", re.compile(r"range=1h")
    )
    expect(page.locator("tr[data-trace-id]")).to_have_count(1)
    # A custom range that ends before the traffic shows no traces.
    picker.select_option("custom")
    page.get_by_label("Start", exact=True).fill("2020-01-01T00:00")
    page.get_by_label("End", exact=True).fill("2020-01-01T01:00")
    page.get_by_role("form", name="Custom time range").get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"range=custom"))
    expect(page.locator("tr[data-trace-id]")).to_have_count(0)
    expect(page.get_by_test_id("traces-table")).to_contain_text("No traces.")
    live = page.locator("#live")
    live.click()
    expect(live).to_have_attribute("aria-pressed", "false")
    expect(live).to_have_text("Paused")
