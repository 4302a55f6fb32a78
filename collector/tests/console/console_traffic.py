"""Helpers shared by the console tests: sending traffic and writing documents directly."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from otel_xray_collector.app import Collector

from .console_scenario import Shop

# Live polling runs every 5 s; a DOM change driven by it may take one poll plus the fetch.
LIVE_TIMEOUT_MS = 15_000


def send_traffic(shop: Shop, collector: Collector, paths: list[str]) -> list[int]:
    """Call front for each path and wait until the collector has stored every datagram."""
    statuses = [shop.get(path) for path in paths]
    assert collector.wait_for_datagrams(shop.wait_exported())
    return statuses


def api(collector: Collector, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST to the collector's X-Ray API the way the console does."""
    request = urllib.request.Request(
        f"{collector.endpoint_url}/{operation}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
