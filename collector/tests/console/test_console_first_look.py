"""What a user sees first in the trace views (issue 10): whole names in the timeline, whole
rows that open a trace, and a failed call's panel that leads with the application's frames."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from otel_xray_collector.app import Collector
from playwright.sync_api import Browser, expect

from ..support.segments import UdpSender, http_block, new_id, segment
from .conftest import ConsolePage, make_console
from .console_scenario import Shop
from .console_traffic import send_traffic

LONG_NAME = "reconcile_ledger_" + "and_recompute_every_balance_" * 5  # 162 (X-Ray: <= 200)


def _demo_like_trace(collector: Collector) -> str:
    """front -> compute_price -> sqlite (and DynamoDB, a call, a really long name), as the demo's
    front records them, sent as real datagrams."""
    start = time.time() - 2
    doc = segment("front", start=start, duration=0.05)
    doc["http"] = http_block("http://127.0.0.1:8080/order/apple?quantity=3&currency=EUR")

    def sub(name: str, offset: float, **fields: object) -> dict[str, object]:
        return {
            "name": name,
            "id": new_id(),
            "start_time": start + offset,
            "end_time": start + offset + 0.004,
            **fields,
        }

    sqlite = sub("sqlite", 0.012, namespace="remote", sql={"database_type": "sqlite"})
    price = sub("compute_price", 0.010, subsegments=[sqlite])
    dynamo = sub("DynamoDB", 0.020, namespace="aws", aws={"operation": "PutItem"})
    call = sub(
        "127.0.0.1",
        0.030,
        namespace="remote",
        http=http_block("http://127.0.0.1:8081/price/apple?long=" + "x" * 80),
    )
    doc["subsegments"] = [price, dynamo, call, sub(LONG_NAME, 0.040)]
    sender = UdpSender(collector.udp_address)
    try:
        sender.send([doc])
    finally:
        sender.close()
    assert collector.wait_for_datagrams(1)
    return str(doc["trace_id"])


@pytest.fixture(params=[1440, 1920], ids=["1440px", "1920px"])
def wide_console(
    browser: Browser,
    collector: Collector,
    request: pytest.FixtureRequest,
    hashchange_delay_ms: int,
) -> Iterator[ConsolePage]:
    yield from make_console(browser, collector, request, request.param, 900, hashchange_delay_ms)


def test_timeline_shows_ordinary_names_whole_and_cuts_only_a_really_long_one(
    collector: Collector, wide_console: ConsolePage
) -> None:
    trace_id = _demo_like_trace(collector)
    page = wide_console.open(f"#/trace/{trace_id}")
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator('.tl-row[data-name="compute_price"]')).to_have_count(1)
    for name in ("front", "compute_price", "sqlite", "DynamoDB", "127.0.0.1"):
        titles = timeline.locator(f'.tl-row[data-name="{name}"] .tl-title')  # and inferred ones
        assert titles.count() >= 1
        for title in titles.all():
            expect(title).to_have_text(name)
            whole = title.evaluate("e => e.scrollWidth <= e.clientWidth")
            assert whole, f"{name!r} is cut at {wide_console.page.viewport_size}"
            assert title.get_attribute("title") is None  # no tooltip for a whole name
    long_title = timeline.locator(".tl-row .tl-title").filter(has_text="reconcile_ledger_")
    assert long_title.evaluate("e => e.scrollWidth > e.clientWidth")  # really long: cut...
    expect(long_title).to_have_attribute("title", LONG_NAME)  # ...with the whole name on hover
    wide_console.screenshot("timeline-names")


def test_a_click_anywhere_on_a_trace_row_opens_the_trace(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    send_traffic(shop, collector, ["/checkout"])
    page = console.open("#/traces")
    row = page.locator("tr[data-trace-id]")
    expect(row).to_have_count(1)
    trace_id = row.get_attribute("data-trace-id")
    row.locator(".url-cell").click()  # not the id link: the URL at the other end of the row
    expect(page).to_have_url(re.compile(rf"#/trace/{re.escape(str(trace_id))}$"))
    expect(page.get_by_test_id("timeline").locator('.tl-row[data-name="front"]')).to_have_count(1)


def test_a_failed_call_opens_on_the_exception_with_the_applications_frame(
    shop: Shop, collector: Collector, console: ConsolePage
) -> None:
    shop.back.stop()
    assert send_traffic(shop, collector, ["/checkout"]) == [500]
    page = console.open("#/traces")
    page.locator("tr[data-trace-id] a").first.click()
    details = page.get_by_test_id("entry-details")
    expect(details.get_by_role("tab", selected=True)).to_have_text("Exceptions")
    first = details.get_by_test_id("exception").first
    expect(first).to_contain_text("ConnectionError")
    # front's route (console_scenario.py, checkout) is the first exception's own frame...
    own = first.locator(".stack li.frame-app")
    expect(own).to_have_count(1)
    expect(own).to_contain_text("checkout")
    expect(own).to_contain_text("console_scenario.py")
    # ...recorded on front, while the panel is the failed call's, whose chain follows.
    expect(details.locator(".exc-origin").first).to_contain_text("Raised in your code")
    expect(details.locator(".exc-origin").first.get_by_role("button")).to_have_text("front")
    assert details.get_by_test_id("exception").count() > 1
    console.screenshot("failed-call-app-frame", full_page=True)
