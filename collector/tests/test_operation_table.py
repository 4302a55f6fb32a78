"""docs/collector.md's operation table against botocore's X-Ray model and the collector's routes:
every AWS operation is listed with its real path, and "yes"/"partial"/"no" is what the collector
actually serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
from otel_xray_collector.app import Collector

DOC = Path(__file__).resolve().parents[2] / "docs" / "collector.md"
ROW = re.compile(
    r"^\| (?P<name>[A-Za-z]+) \| `(?P<path>/[A-Za-z]+)` \| (?P<support>yes|partial|no) \|"
)


def documented() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            assert match["name"] not in rows, f"{match['name']} listed twice"
            rows[match["name"]] = (match["path"], match["support"])
    return rows


def test_every_xray_operation_is_in_the_table_with_its_path() -> None:
    model: Any = botocore.session.get_session().get_service_model("xray")

    expected = {
        name: model.operation_model(name).http["requestUri"] for name in model.operation_names
    }

    assert {name: path for name, (path, _) in documented().items()} == expected


def test_the_table_says_what_the_collector_serves(collector: Collector) -> None:
    assert collector.operations is not None
    routes = set(collector.operations.routes)

    for name, (path, support) in documented().items():
        assert (path in routes) == (support != "no"), f"{name} ({path}) is documented {support}"
