"""HTTP client for the daemon's sampling proxy: ``/GetSamplingRules`` and ``/SamplingTargets``.

The daemon (or the CloudWatch agent, the OpenTelemetry Collector, ``otel-xray-collector``) signs
and forwards these calls, so they go out unsigned, as plain HTTP, with the standard library.
Proxies from the environment are bypassed: the daemon is local or a sidecar, and routing its
loopback address through a corporate ``HTTP_PROXY`` would only break it. Every failure becomes
a ``SamplingApiError`` with one line a log can carry.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

#: The most rules pages followed per refresh (the X-Ray SDKs read only the first page).
MAX_PAGES = 20
#: Responses larger than this are refused (the real API returns a few KB).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class SamplingApiError(Exception):
    """The sampling API could not be reached or answered something unusable."""


class SamplingApiClient:
    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get_sampling_rules(self) -> list[Any]:
        """All ``SamplingRuleRecords``, following ``NextToken``."""
        records: list[Any] = []
        body: dict[str, Any] = {}
        for _ in range(MAX_PAGES):
            page = self._post("/GetSamplingRules", body)
            page_records = page.get("SamplingRuleRecords")
            if not isinstance(page_records, list):
                raise SamplingApiError("GetSamplingRules: response has no SamplingRuleRecords list")
            records.extend(page_records)
            token = page.get("NextToken")
            if not isinstance(token, str) or not token or token == body.get("NextToken"):
                break
            body = {"NextToken": token}
        return records

    def get_sampling_targets(self, documents: list[dict[str, Any]]) -> dict[str, Any]:
        response = self._post("/SamplingTargets", {"SamplingStatisticsDocuments": documents})
        if not isinstance(response.get("SamplingTargetDocuments", []), list):
            raise SamplingApiError("SamplingTargets: SamplingTargetDocuments is not a list")
        return response

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise SamplingApiError(f"{path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SamplingApiError(f"{path}: {reason}") from None
        if len(payload) > MAX_RESPONSE_BYTES:
            raise SamplingApiError(f"{path}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            decoded = json.loads(payload)
        except ValueError:
            raise SamplingApiError(f"{path}: response is not JSON: {payload[:80]!r}") from None
        if not isinstance(decoded, dict):
            raise SamplingApiError(f"{path}: response is not a JSON object")
        return decoded
