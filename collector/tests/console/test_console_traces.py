"""Trace list, grouping, filter box and trace detail in a real browser against a real collector."""

from __future__ import annotations

import re
import time

from otel_xray_collector.app import Collector
from playwright.sync_api import expect

from .conftest import ConsolePage
from .console_scenario import Shop
from .console_traffic import api, send_traffic


def test_traces_are_grouped_by_url_with_counts(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 3 + ["/health"] * 2)
    page = console.open("#/traces")

    groups = page.get_by_test_id("groups-table").locator("tbody tr[data-group]")
    expect(groups).to_have_count(2)
    checkout = groups.filter(has_text="/checkout")
    health = groups.filter(has_text="/health")
    expect(checkout).to_have_attribute("data-group", f"{shop.front.url}/checkout")
    expect(checkout).to_have_attribute("data-count", "3")
    expect(checkout.locator("td").nth(1)).to_have_text("60%")
    expect(health).to_have_attribute("data-count", "2")
    expect(health.locator("td").nth(1)).to_have_text("40%")
    expect(page.locator("tr[data-trace-id]")).to_have_count(5)
    console.screenshot("traces-by-url")

    # Selecting a group lists only its traces; grouping by HTTP method regroups the same page.
    checkout.get_by_role("button").click()
    expect(page.locator("tr[data-trace-id]")).to_have_count(3)
    expect(page.locator("#traces-title")).to_contain_text("(3)")
    page.get_by_test_id("group-by").select_option("method")
    expect(page.get_by_test_id("groups-table").locator("tbody tr[data-group]")).to_have_count(1)
    expect(page.locator('tr[data-group="GET"]')).to_have_attribute("data-count", "5")


def test_filter_box_narrows_the_list_and_shows_the_api_error_inline(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 3 + ["/health"] * 2)
    page = console.open("#/traces")
    expect(page.locator("tr[data-trace-id]")).to_have_count(5)

    page.get_by_label("Filter expression").fill('http.url CONTAINS "/health"')
    page.get_by_label("Filter expression").press("Enter")
    expect(page.locator("tr[data-trace-id]")).to_have_count(2)
    expect(page.get_by_test_id("groups-table").locator("tbody tr[data-group]")).to_have_count(1)
    expect(page.get_by_test_id("filter-error")).to_be_hidden()

    bad = 'service("front" AND'
    now = time.time()
    status, answer = api(
        collector,
        "TraceSummaries",
        {"StartTime": now - 900, "EndTime": now + 5, "FilterExpression": bad},
    )
    assert status == 400 and answer["__type"] == "InvalidRequestException"
    page.get_by_label("Filter expression").fill(bad)
    page.get_by_test_id("filter-apply").click()
    error = page.get_by_test_id("filter-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(answer["message"])
    expect(page.get_by_label("Filter expression")).to_have_attribute("aria-invalid", "true")
    console.screenshot("filter-error")


def test_trace_detail_shows_the_downstream_connection_refused_exception(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"])
    shop.back.stop()
    assert send_traffic(shop, collector, ["/checkout"]) == [500]
    page = console.open("#/traces")
    failed = page.locator("tr[data-trace-id].status-row-fault")
    expect(failed).to_have_count(1)
    expect(failed.locator(".badge")).to_have_text("500")
    failed.get_by_role("link").click()

    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator('.tl-row[data-name="front"][data-status="fault"]')).to_have_count(1)
    # front's HTTP call to back is faulted too, and nested under front's segment.
    call = timeline.locator('.tl-row.kind-subsegment[data-status="fault"]').filter(has_text="GET")
    expect(call.first).to_be_visible()
    assert int(call.first.get_attribute("aria-level")) > 1
    # The root cause (the failed call) opens on its exception, with the message and the frames.
    details = page.get_by_test_id("entry-details")
    expect(details.get_by_role("tab", selected=True)).to_have_text("Exceptions")
    exception = details.get_by_test_id("exception").first
    expect(exception).to_contain_text("ConnectionError")
    expect(exception.locator(".exc-message")).to_contain_text(
        re.compile("Connection refused|Errno 111")
    )
    expect(exception.locator(".stack li").first).to_be_visible()
    expect(page.locator(".exception-banner")).to_contain_text("ConnectionError")
    console.screenshot("trace-exception", full_page=True)

    # Any entry opens on click; the raw document is one tab away.
    timeline.locator('.tl-row[data-name="front"]').first.click()
    details.get_by_role("tab", name="Raw data").click()
    expect(details.locator("pre.json")).to_contain_text('"name": "front"')


def test_trace_timeline_nests_the_downstream_segment_under_the_call(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"])
    page = console.open("#/traces")
    page.locator("tr[data-trace-id] a").first.click()
    back = page.locator('.tl-row.kind-segment[data-name="back"]')
    expect(back).to_have_count(1)
    front_level = int(
        page.locator('.tl-row.kind-segment[data-name="front"]').get_attribute("aria-level")
    )
    assert int(back.get_attribute("aria-level")) > front_level + 1  # under front's HTTP call
    expect(page.locator('.tl-row[data-status="fault"]')).to_have_count(0)
    # Keyboard: arrow keys walk rows, Left collapses the root and hides the nested rows.
    root = page.locator('.tl-row.kind-segment[data-name="front"]')
    root.click()
    root.press("ArrowLeft")
    expect(root).to_have_attribute("aria-expanded", "false")
    expect(back).to_have_count(0)
    console.screenshot("trace-timeline")
