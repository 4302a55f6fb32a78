"""A page from another origin can neither write to nor read from the collector (issue 15).

Real Chromium: an "attacker" page served from a second loopback port tries every request a page
can make without the user's help (simple no-cors POSTs with text/plain and form bodies, a form
submission, CORS reads and writes) and a DNS-rebinding page (another name resolved to 127.0.0.1,
on the collector's own port) tries to read. Nothing is stored, nothing is read. Meanwhile the
console, under its Content-Security-Policy, works and reports no violation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from otel_xray_collector.app import Collector
from playwright.sync_api import Browser, Route, expect

from ..conftest import xray_client_for
from ..support.segments import segment
from .conftest import CHROMIUM, CHROMIUM_ARGS, ConsolePage

NOW = time.time()


def attacker_page(collector_url: str, documents: list[str]) -> bytes:
    """The page: fires every kind of request at the collector, records what it could see."""
    body = json.dumps({"TraceSegmentDocuments": documents})
    script = f"""
    const target = {json.dumps(collector_url)};
    const body = {json.dumps(body)};
    window.results = {{}};
    async function attempt(name, run) {{
      try {{ window.results[name] = await run(); }}
      catch (error) {{ window.results[name] = "blocked: " + error.name; }}
    }}
    async function main() {{
      await attempt("no-cors text/plain write", async () => {{
        const r = await fetch(target + "/TraceSegments", {{method: "POST", mode: "no-cors",
          headers: {{"Content-Type": "text/plain"}}, body}});
        return "opaque:" + r.type;
      }});
      await attempt("no-cors untyped blob write", async () => {{
        const r = await fetch(target + "/TraceSegments", {{method: "POST", mode: "no-cors",
          body: new Blob([body])}});
        return "opaque:" + r.type;
      }});
      await attempt("cors json write", async () => {{
        const r = await fetch(target + "/TraceSegments", {{method: "POST",
          headers: {{"Content-Type": "application/json"}}, body}});
        return "read:" + (await r.text());
      }});
      await attempt("cors status read", async () => {{
        const r = await fetch(target + "/status");
        return "read:" + (await r.text());
      }});
      await attempt("cors summaries read", async () => {{
        const r = await fetch(target + "/TraceSummaries", {{method: "POST",
          headers: {{"Content-Type": "text/plain"}},
          body: JSON.stringify({{StartTime: 0, EndTime: 4000000000}})}});
        return "read:" + (await r.text());
      }});
      const form = document.createElement("form");
      form.method = "POST"; form.enctype = "text/plain"; form.target = "sink";
      form.action = target + "/TraceSegments";
      const input = document.createElement("input");
      input.name = body.slice(0, -2); input.value = body.slice(-2);
      form.append(input); document.body.append(form);
      const sink = document.createElement("iframe"); sink.name = "sink";
      document.body.append(sink);
      const loaded = new Promise((resolve) => sink.addEventListener("load", resolve));
      form.submit();
      await loaded;
      window.results["form write"] = "submitted";
      window.done = true;
    }}
    main();
    """
    return f"<!doctype html><title>attacker</title><body><script>{script}</script>".encode()


class _PageServer:
    """The other origin: one page on its own loopback port."""

    def __init__(self, page: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rebinding_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium resolving ``rebind.test`` to 127.0.0.1, as after a DNS-rebinding attack."""
    args = [
        *CHROMIUM_ARGS,
        "--host-resolver-rules=MAP rebind.test 127.0.0.1",
        # Chromium's own Local Network Access checks would stop these requests before they
        # reach the collector; turned off so the test shows what the *collector* does (older
        # browsers, and other browsers, have no such check).
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
        "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults",
    ]
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=args)
    try:
        yield chromium
    finally:
        chromium.close()


def stored(collector: Collector) -> set[str]:
    assert collector.wait_for_datagrams(0, timeout=10)
    client = xray_client_for(collector.endpoint_url)
    answer = client.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 600)
    return {summary["Id"] for summary in answer["TraceSummaries"]}


def test_a_page_from_another_origin_can_neither_write_nor_read(
    browser: Browser, collector: Collector
) -> None:
    document = segment("from-attacker", start=NOW - 5)
    page_server = _PageServer(attacker_page(collector.endpoint_url, [json.dumps(document)]))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_server.url)
        page.wait_for_function("window.done === true", timeout=20_000)
        results = page.evaluate("window.results")
    finally:
        context.close()
        page_server.close()
    # Sent (no preflight for these), refused by the collector; the answer is unreadable either
    # way (opaque, or a network error under Cross-Origin-Resource-Policy).
    for name in ("no-cors text/plain write", "no-cors untyped blob write"):
        assert results[name] in ("opaque:opaque", "blocked: TypeError"), (name, results[name])
    for name in ("cors json write", "cors status read", "cors summaries read"):
        assert results[name] == "blocked: TypeError", (name, results[name])
    assert results["form write"] == "submitted"
    assert document["trace_id"] not in stored(collector)
    # the same document through a real client is stored: the refusals were the policy
    xray_client_for(collector.endpoint_url).put_trace_segments(
        TraceSegmentDocuments=[json.dumps(document)]
    )
    assert document["trace_id"] in stored(collector)


def test_a_dns_rebinding_page_cannot_read(rebinding_browser: Browser, collector: Collector) -> None:
    """The page is loaded from ``rebind.test:<collector port>`` (the attacker's server before
    the rebinding, played by Playwright), then its same-origin requests reach the collector."""
    port = collector.tcp_address[1]
    origin = f"http://rebind.test:{port}"
    page_html = (
        "<!doctype html><title>rebind</title><script>"
        "window.done = (async () => { const out = {};"
        " for (const [name, init] of [['status', {}], ['summaries', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({StartTime: 0, EndTime: 4000000000})}]]) {"
        " const r = await fetch((name === 'status' ? '/status' : '/TraceSummaries'), init);"
        " out[name] = [r.status, await r.text()]; } return out; })();"
        "</script>"
    )

    def serve_first_page(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=page_html)

    context = rebinding_browser.new_context()
    try:
        page = context.new_page()
        page.route(f"{origin}/", serve_first_page)  # only the page; its fetches go to the network
        page.goto(f"{origin}/")
        results = page.evaluate("window.done")
    finally:
        context.close()
    for name, (status, text) in results.items():
        assert status == 403, (name, status, text)
        assert json.loads(text)["__type"] == "AccessDeniedException"


def test_the_console_works_under_its_csp(console: ConsolePage, collector: Collector) -> None:
    """The console's own origin reads and renders; no CSP violation is reported (the console
    fixture fails the test on any)."""
    xray_client_for(collector.endpoint_url).put_trace_segments(
        TraceSegmentDocuments=[json.dumps(segment("csp-check", start=NOW - 5))]
    )
    assert collector.wait_for_datagrams(0, timeout=10)
    page = console.open("#/traces")
    expect(page.locator("#collector-status")).to_have_attribute("data-state", "up")
    expect(page.locator("tr[data-trace-id]")).to_have_count(1)
    headers = page.request.get(collector.endpoint_url + "/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
