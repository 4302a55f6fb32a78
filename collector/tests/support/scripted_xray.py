"""A tiny X-Ray ``PutTraceSegments`` endpoint on 127.0.0.1 that answers from a script.

moto always says yes; this one says what a test needs (429, 5xx, partial answers, a hang) and
records every request as it arrived on the wire, signature headers included.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from collector.tests.support.loopback_http import LoopbackHTTP


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"UnprocessedTraceSegments": []})
    hold: bool = False  # wait for ScriptedXRay.release() before answering

    @staticmethod
    def error(status: int, error_type: str, message: str = "scripted") -> Reply:
        return Reply(status, {"__type": error_type, "message": message})

    @staticmethod
    def unprocessed(*entries: tuple[str | None, str]) -> Reply:
        return Reply(
            200,
            {
                "UnprocessedTraceSegments": [
                    {**({"Id": seg_id} if seg_id else {}), "ErrorCode": code, "Message": "scripted"}
                    for seg_id, code in entries
                ]
            },
        )


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def documents(self) -> list[str]:
        return list(self.body["TraceSegmentDocuments"])


class ScriptedXRay:
    def __init__(self, *script: Reply, default: Reply = Reply()) -> None:
        self._script = list(script)
        self._default = default
        self._cond = threading.Condition()
        self._released = threading.Event()
        self.requests: list[Received] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = backend._record(Received(self.path, dict(self.headers.items()), body))
                if reply.hold:
                    backend._released.wait(30)
                payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                if reply.status >= 400:
                    self.send_header("x-amzn-ErrorType", str(reply.body.get("__type", "")))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._http = LoopbackHTTP(Handler)
        self.url = self._http.url

    def _record(self, received: Received) -> Reply:
        with self._cond:
            self.requests.append(received)
            reply = self._script.pop(0) if self._script else self._default
            self._cond.notify_all()
        return reply

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def release(self) -> None:
        self._released.set()

    def documents(self) -> list[str]:
        with self._cond:
            return [doc for request in self.requests for doc in request.documents]

    def close(self) -> None:
        self.release()
        self._http.close()
