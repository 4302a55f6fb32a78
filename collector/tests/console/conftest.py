"""Browser fixtures for the console tests: Debian's Chromium driven by Playwright.

The browser is started once per session (it takes about a second); each test gets a fresh
context (no shared storage) and a page that fails the test on any uncaught JavaScript error.
Run with ``CONSOLE_HASHCHANGE_DELAY_MS=N`` to perturb every test the way a fast user on a busy
machine does: each ``hashchange`` handler runs N ms late, so a second click can come before the
first one is applied (a test can set its own delay through the ``hashchange_delay_ms`` fixture).
Screenshots go to ``test-output/console/<test name>/`` at the repository root (gitignored; a
``tmp_path`` would be pruned by later pytest runs before anyone looks); their paths are printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from otel_xray_collector.app import Collector
from otel_xray_collector.config import CollectorConfig
from playwright.sync_api import Browser, Page, sync_playwright

from .console_scenario import Shop

CHROMIUM = "/usr/bin/chromium"
OUTPUT_ROOT = Path(__file__).resolve().parents[3] / "test-output" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


HASHCHANGE_DELAY_ENV = "CONSOLE_HASHCHANGE_DELAY_MS"
# Wraps window.addEventListener so every "hashchange" listener runs the given ms after the event.
DELAY_HASHCHANGE_SCRIPT = """
(() => {
  const delay = %d;
  const add = window.addEventListener;
  window.addEventListener = function (type, listener, options) {
    if (type !== "hashchange") return add.call(this, type, listener, options);
    const late = (event) => setTimeout(() => {
      if (typeof listener === "function") listener.call(window, event);
      else listener.handleEvent(event);
    }, delay);
    return add.call(this, type, late, options);
  };
})();
"""


@pytest.fixture
def hashchange_delay_ms() -> int:
    """How late the console's hashchange handlers run (0: not delayed); see the module doc."""
    return int(os.environ.get(HASHCHANGE_DELAY_ENV) or 0)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class ConsolePage:
    """A page on the console plus what the test needs around it."""

    def __init__(self, page: Page, base_url: str, out_dir: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.out_dir = out_dir
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        # The collector's Content-Security-Policy: any violation is logged by Chromium as a
        # console error and fails the test like a JavaScript error.
        page.on(
            "console",
            lambda message: (
                self.errors.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )

    def open(self, route: str = "") -> Page:
        self.page.goto(f"{self.base_url}/{route}")
        return self.page

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        path = self.out_dir / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A collector on ephemeral loopback ports with its own SQLite file."""
    instance = Collector(
        CollectorConfig(
            udp="127.0.0.1:0",
            tcp="127.0.0.1:0",
            otlp=None,
            otlp_http=None,
            db=str(tmp_path / "xray.db"),
        )
    ).start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def shop(collector: Collector) -> Iterator[Shop]:
    host, port = collector.udp_address
    services = Shop(f"{host}:{port}")
    try:
        yield services
    finally:
        services.close()


def make_console(
    browser: Browser,
    collector: Collector,
    request: pytest.FixtureRequest,
    width: int,
    height: int,
    hashchange_delay_ms: int,
) -> Iterator[ConsolePage]:
    out_dir = OUTPUT_ROOT / request.node.name
    out_dir.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    if hashchange_delay_ms:
        context.add_init_script(DELAY_HASHCHANGE_SCRIPT % hashchange_delay_ms)
    console = ConsolePage(context.new_page(), collector.endpoint_url, out_dir)
    try:
        yield console
        assert not console.errors, f"JavaScript errors on the page: {console.errors}"
    finally:
        context.close()


@pytest.fixture
def console(
    browser: Browser,
    collector: Collector,
    request: pytest.FixtureRequest,
    hashchange_delay_ms: int,
) -> Iterator[ConsolePage]:
    """The console at 1280x800."""
    yield from make_console(browser, collector, request, 1280, 800, hashchange_delay_ms)


@pytest.fixture
def narrow_console(
    browser: Browser,
    collector: Collector,
    request: pytest.FixtureRequest,
    hashchange_delay_ms: int,
) -> Iterator[ConsolePage]:
    """The console in a phone-sized window."""
    yield from make_console(browser, collector, request, 400, 800, hashchange_delay_ms)
