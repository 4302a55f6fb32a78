"""Browser fixtures for the console tests: Debian's Chromium driven by Playwright.

The browser is started once per session (it takes about a second); each test gets a fresh
context (no shared storage) and a page that fails the test on any uncaught JavaScript error.
Screenshots go to ``test-output/console/<test name>/`` at the repository root (gitignored; a
``tmp_path`` would be pruned by later pytest runs before anyone looks); their paths are printed.
"""

from __future__ import annotations

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
    browser: Browser, collector: Collector, request: pytest.FixtureRequest, width: int, height: int
) -> Iterator[ConsolePage]:
    out_dir = OUTPUT_ROOT / request.node.name
    out_dir.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    console = ConsolePage(context.new_page(), collector.endpoint_url, out_dir)
    try:
        yield console
        assert not console.errors, f"JavaScript errors on the page: {console.errors}"
    finally:
        context.close()


@pytest.fixture
def console(
    browser: Browser, collector: Collector, request: pytest.FixtureRequest
) -> Iterator[ConsolePage]:
    """The console at 1280x800."""
    yield from make_console(browser, collector, request, 1280, 800)


@pytest.fixture
def narrow_console(
    browser: Browser, collector: Collector, request: pytest.FixtureRequest
) -> Iterator[ConsolePage]:
    """The console in a phone-sized window."""
    yield from make_console(browser, collector, request, 400, 800)
