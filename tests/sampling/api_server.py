"""A real HTTP server on 127.0.0.1 speaking the daemon's sampling API, steered by the test.

It implements ``POST /GetSamplingRules`` (with ``NextToken`` paging) and ``POST /SamplingTargets``
per the X-Ray API shapes, records every request body, and can be told to answer garbage, fail
with HTTP 500, go away (socket closed: connection refused) and come back on the same port.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_ID = re.compile(r"^[0-9a-f]{24}$")


def sampling_rule(
    name: str,
    *,
    priority: int = 100,
    fixed_rate: float = 0.0,
    reservoir: int = 0,
    service_name: str = "*",
    service_type: str = "*",
    host: str = "*",
    method: str = "*",
    path: str = "*",
    resource_arn: str = "*",
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``SamplingRule`` with every field the API and the SDKs require."""
    return {
        "RuleName": name,
        "RuleARN": f"arn:aws:xray:us-east-1:123456789012:sampling-rule/{name}",
        "ResourceARN": resource_arn,
        "Priority": priority,
        "FixedRate": fixed_rate,
        "ReservoirSize": reservoir,
        "ServiceName": service_name,
        "ServiceType": service_type,
        "Host": host,
        "HTTPMethod": method,
        "URLPath": path,
        "Version": 1,
        "Attributes": attributes or {},
    }


class SamplingApiServer:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        #: RuleName -> target document fields (FixedRate, ReservoirQuota, ReservoirQuotaTTL, ...)
        self.targets: dict[str, dict[str, Any]] = {}
        self.last_rule_modification = 1.0
        self.page_size = 100
        #: "ok", "garbage" (200 with an HTML body) or "error" (HTTP 500)
        self.mode = "ok"
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="sampling-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Go away: later connections are refused until ``start()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

    # -- what the test inspects ----------------------------------------------------------

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._cond:
            return [body for p, body in self.requests if p == path]

    def statistics(self) -> list[dict[str, Any]]:
        """Every statistics document received, in order."""
        return [
            doc
            for body in self.bodies("/SamplingTargets")
            for doc in body["SamplingStatisticsDocuments"]
        ]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(1 for p, _ in self.requests if p == path) >= count, timeout
            )
        assert ok, f"expected {count} {path} requests, got {self.requests!r}"
        return self.bodies(path)

    # -- the API -------------------------------------------------------------------------

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/GetSamplingRules":
            start = int(body.get("NextToken") or 0)
            page = self.rules[start : start + self.page_size]
            response: dict[str, Any] = {
                "SamplingRuleRecords": [
                    {"SamplingRule": rule, "CreatedAt": 0.0, "ModifiedAt": 1.0} for rule in page
                ]
            }
            if start + self.page_size < len(self.rules):
                response["NextToken"] = str(start + self.page_size)
            return 200, response
        if path == "/SamplingTargets":
            documents = body.get("SamplingStatisticsDocuments")
            if not isinstance(documents, list) or not 1 <= len(documents) <= 25:
                return 400, {"__type": "InvalidRequestException", "message": "1..25 documents"}
            for doc in documents:
                keys = {"RuleName", "ClientID", "Timestamp", "RequestCount", "SampledCount"}
                if not keys <= doc.keys() or not CLIENT_ID.match(doc["ClientID"]):
                    return 400, {"__type": "InvalidRequestException", "message": repr(doc)}
                if not isinstance(doc["Timestamp"], int):
                    return 400, {"__type": "InvalidRequestException", "message": "Timestamp"}
            names = {doc["RuleName"] for doc in documents}
            return 200, {
                "SamplingTargetDocuments": [
                    {"RuleName": name, **target}
                    for name, target in self.targets.items()
                    if name in names
                ],
                "LastRuleModification": self.last_rule_modification,
                "UnprocessedStatistics": [],
            }
        return 404, {"__type": "UnknownOperationException", "message": path}


def _handler_for(api: SamplingApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with api._cond:
                api.requests.append((self.path, body))
                api._cond.notify_all()
            if api.mode == "garbage":
                self._send(200, b"<html>not the sampling API</html>", "text/html")
                return
            if api.mode == "error":
                self._send(500, b'{"message": "internal"}', "application/json")
                return
            status, payload = api.answer(self.path, body)
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
