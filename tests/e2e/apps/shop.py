"""A small Flask service that calls a backend with requests: the e2e tests' application.

Run as a script (``python shop.py``) it serves on 127.0.0.1:0, prints its port on stdout and
exits cleanly (atexit handlers run, so tracing flushes) when ``GET /quit`` is called. The backend
and a URL that refuses connections come from ``BACKEND_URL`` and ``CLOSED_URL``. With
``SHOP_TRACER=xray-sdk`` it instruments itself with the AWS X-Ray SDK instead of OpenTelemetry,
so both can be compared on identical traffic; with ``SHOP_TRACER=configure`` it calls
``otel_xray.configure("shop")`` with every default and the official Flask and requests
instrumentations (run it plainly then, not under ``opentelemetry-instrument``).

``SHOP_SIGTERM=before`` or ``after`` installs the application's own SIGTERM handler before or
after ``configure()``: it says so on stderr and exits with status 143 through ``SystemExit``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import requests
from flask import Flask


def create_app(backend_url: str, closed_url: str) -> Flask:
    app = Flask("shop")

    @app.route("/orders")
    def orders() -> tuple[str, int]:
        response = requests.get(f"{backend_url}/items?page=1", timeout=10)
        return f"backend said {response.status_code}", 200

    @app.route("/broken")
    def broken() -> tuple[str, int]:
        try:
            requests.get(closed_url, timeout=10)
        except requests.ConnectionError as exc:
            return f"backend unreachable: {type(exc).__name__}", 502
        return "unexpected success", 200

    return app


def app_sigterm_handler(signum: int, frame: object) -> None:
    print("app SIGTERM handler ran", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def main() -> None:
    from werkzeug.serving import make_server

    tracer = os.environ.get("SHOP_TRACER")
    app_handler = os.environ.get("SHOP_SIGTERM")
    if app_handler == "before":
        signal.signal(signal.SIGTERM, app_sigterm_handler)
    app = create_app(os.environ["BACKEND_URL"], os.environ["CLOSED_URL"])
    if tracer == "configure":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        from otel_xray import configure

        configure("shop")
        FlaskInstrumentor().instrument_app(app)
        RequestsInstrumentor().instrument()
    if app_handler == "after":
        signal.signal(signal.SIGTERM, app_sigterm_handler)
    if tracer == "xray-sdk":
        from aws_xray_sdk.core import patch, xray_recorder
        from aws_xray_sdk.ext.flask.middleware import XRayMiddleware

        xray_recorder.configure(service="shop", sampling=False, context_missing="LOG_ERROR")
        patch(("requests",))
        XRayMiddleware(app, xray_recorder)

    server = make_server("127.0.0.1", 0, app)

    @app.route("/quit")
    def quit_() -> str:
        threading.Thread(target=server.shutdown).start()
        return "bye"

    print(server.server_port, flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
