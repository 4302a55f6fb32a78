"""The X-Ray documentation's example local rules file (a health check sampled never, everything
else one per second plus all), in both format versions; shared by library and collector tests."""

from __future__ import annotations

from typing import Any

HEALTHCHECK_RULE_V1: dict[str, Any] = {
    "description": "Healthy check",
    "service_name": "*",
    "http_method": "GET",
    "url_path": "/healthcheck",
    "fixed_target": 0,
    "rate": 0,
}
HEALTHCHECK_RULE_V2: dict[str, Any] = {
    "description": "Healthy check",
    "host": "*",
    "http_method": "GET",
    "url_path": "/healthcheck",
    "fixed_target": 0,
    "rate": 0,
}
HEALTHCHECK_V1: dict[str, Any] = {
    "version": 1,
    "rules": [HEALTHCHECK_RULE_V1],
    "default": {"fixed_target": 1, "rate": 1},
}
HEALTHCHECK_V2: dict[str, Any] = {
    "version": 2,
    "rules": [HEALTHCHECK_RULE_V2],
    "default": {"fixed_target": 1, "rate": 1},
}
