"""A fast user: a second change made before the console has applied the first.

The URL changes at once; the console applies it when its ``hashchange`` handler runs. Here every
handler runs ``DELAY_MS`` late (the ``hashchange_delay_ms`` fixture), so each pair of changes
below reaches the page while the first is still pending, as it does on a busy machine. Both
changes must end up in the URL and in the rendered view, and the later one must not be undone
when the first is finally applied.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from otel_xray_collector.app import Collector
from playwright.sync_api import expect

from .conftest import ConsolePage
from .console_scenario import Shop
from .console_traffic import send_traffic

# Far longer than two Playwright actions on loopback take, so the second always comes first.
DELAY_MS = 1500
HEALTH = 'http.url CONTAINS "/health"'
CHECKOUT = 'http.url CONTAINS "/checkout"'


def url_with(**params: str) -> re.Pattern[str]:
    """Matches a console URL whose query carries every parameter given, in any order."""
    pairs = [urlencode({key: value}) for key, value in params.items()]
    return re.compile("".join(rf"(?=.*[?&]{re.escape(pair)}(&|$))" for pair in pairs))


@pytest.mark.parametrize("hashchange_delay_ms", [DELAY_MS])
def test_quick_successive_changes_all_reach_the_url_and_the_view(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"] * 3 + ["/health"] * 2)
    page = console.open("#/traces")
    rows = page.locator("tr[data-trace-id]")
    groups = page.get_by_test_id("groups-table").locator("tbody tr[data-group]")
    picker = page.get_by_test_id("time-range")
    group_by = page.get_by_test_id("group-by")
    filter_box = page.get_by_label("Filter expression")
    map_link = page.locator('.nav-link[data-view="map"]')
    expect(rows).to_have_count(5)

    # A time range, then at once a grouping.
    picker.select_option("1h")
    group_by.select_option("method")
    expect(page).to_have_url(url_with(range="1h", group="method"))
    expect(map_link).to_have_attribute("href", re.compile(r"range=1h"))
    expect(groups).to_have_count(1)
    expect(page.locator('tr[data-group="GET"]')).to_have_attribute("data-count", "5")
    expect(picker).to_have_value("1h")

    # A filter, then at once another grouping.
    filter_box.fill(HEALTH)
    filter_box.press("Enter")
    group_by.select_option("status")
    expect(page).to_have_url(url_with(range="1h", group="status", filter=HEALTH))
    expect(rows).to_have_count(2)
    expect(groups).to_have_count(1)
    expect(groups).to_have_attribute("data-count", "2")
    expect(filter_box).to_have_value(HEALTH)

    # A grouping, then at once another filter.
    group_by.select_option("user")
    filter_box.fill(CHECKOUT)
    filter_box.press("Enter")
    expect(page).to_have_url(url_with(range="1h", group="user", filter=CHECKOUT))
    expect(rows).to_have_count(3)
    expect(groups).to_have_attribute("data-count", "3")
    expect(group_by).to_have_value("user")

    # A range, then at once the custom range form: the late "6h" must not close the form.
    picker.select_option("6h")
    picker.select_option("custom")
    expect(map_link).to_have_attribute("href", re.compile(r"range=6h"))
    form = page.get_by_role("form", name="Custom time range")
    expect(form).to_be_visible()
    expect(picker).to_have_value("custom")
    page.get_by_label("Start", exact=True).fill("2020-01-01T00:00")
    page.get_by_label("End", exact=True).fill("2020-01-01T01:00")
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(url_with(range="custom", group="user", filter=CHECKOUT))
    expect(page.get_by_test_id("traces-table")).to_contain_text("No traces.")

    # A link to another view, then at once a range: the range goes to the new view, not the old.
    page.locator('.nav-link[data-view="analytics"]').click()
    picker.select_option("24h")
    expect(page).to_have_url(re.compile(r"#/analytics\?"))
    expect(page).to_have_url(url_with(range="24h"))
    expect(page.get_by_role("heading", name="Analytics", level=1)).to_be_visible()
    expect(map_link).to_have_attribute("href", re.compile(r"range=24h"))
    expect(picker).to_have_value("24h")
    expect(form).to_be_hidden()
