"""The group picker beside the time range, in a real browser against a real collector: picking a
group scopes the service map and the trace list to the traces matching its filter expression."""

from __future__ import annotations

import time

from otel_xray_collector.app import Collector
from playwright.sync_api import expect

from ..support.segments import UdpSender, http_block, segment
from .conftest import ConsolePage
from .console_traffic import api

MARKUP_NAME = '<img src=x onerror="window.__pwned=1">'[:32]


def test_group_picker_filters_the_map_and_the_traces(
    collector: Collector, console: ConsolePage
) -> None:
    shop = segment("shop", http=http_block("http://shop/cart", status=500), fault=True)
    blog = segment("blog", http=http_block("http://blog/post"))
    UdpSender(collector.udp_address).send([shop, blog])
    assert collector.wait_for_datagrams(2)
    assert (
        api(collector, "CreateGroup", {"GroupName": "failing", "FilterExpression": "fault"})[0]
        == 200
    )
    nobody = {"GroupName": MARKUP_NAME, "FilterExpression": 'service("nobody")'}
    assert api(collector, "CreateGroup", nobody)[0] == 200

    page = console.open("#/map")
    nodes = page.locator("g.node:not(.client)")
    expect(nodes).to_have_count(2)
    picker = page.get_by_test_id("group-picker")
    expect(picker).to_have_value("Default")
    # Group names are data: shown as text, never parsed as markup.
    expect(picker.locator("option")).to_have_text(["Default", MARKUP_NAME, "failing"])

    picker.select_option("failing")
    expect(nodes).to_have_count(1)
    expect(page.locator('g.node[data-name="shop"]:not(.client)')).to_have_count(1)
    assert "groupName=failing" in page.url  # the choice is part of the shareable link
    console.screenshot("map-group-failing")

    # The traces view keeps the group: only the failing trace is listed.
    page.locator('.nav-link[data-view="traces"]').click()
    expect(page.locator("tr[data-trace-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-trace-id="{shop["trace_id"]}"]')).to_have_count(1)
    expect(picker).to_have_value("failing")

    # A bad filter under a group: the error's position is in the text the user typed.
    bad = 'service("shop" AND'
    now = time.time()
    status, answer = api(
        collector,
        "TraceSummaries",
        {"StartTime": now - 900, "EndTime": now + 5, "FilterExpression": bad},
    )
    assert status == 400 and "position" in answer["message"]
    page.get_by_label("Filter expression").fill(bad)
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("filter-error")).to_have_text(answer["message"])
    page.get_by_label("Filter expression").fill("")
    page.get_by_test_id("filter-apply").click()
    expect(page.locator("tr[data-trace-id]")).to_have_count(1)

    picker.select_option("Default")
    expect(page.locator("tr[data-trace-id]")).to_have_count(2)

    # A group no stored trace matches: the map says so, naming the group as text.
    page.locator('.nav-link[data-view="map"]').click()
    expect(nodes).to_have_count(2)  # the map is shown before the group changes (else a busy
    # browser may apply the pick to the traces view it is leaving)
    picker.select_option(MARKUP_NAME)
    expect(page.locator(".map-empty")).to_be_visible()
    expect(page.locator(".map-empty h2")).to_have_text(
        f"No traces of the group {MARKUP_NAME} in this time range"
    )
    assert page.evaluate("window.__pwned") is None
