"""A small Flask service that calls a backend with requests: the e2e tests' application.

Run as a script (``python shop.py``) it serves on 127.0.0.1:0, prints its port on stdout and
exits cleanly (atexit handlers run, so tracing flushes) when ``GET /quit`` is called. The backend
and a URL that refuses connections come from ``BACKEND_URL`` and ``CLOSED_URL``. With
``SHOP_TRACER=xray-sdk`` it instruments itself with the AWS X-Ray SDK instead of OpenTelemetry,
so both can be compared on identical traffic.
"""

from __future__ import annotations

import os
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


def main() -> None:
    from werkzeug.serving import make_server

    app = create_app(os.environ["BACKEND_URL"], os.environ["CLOSED_URL"])
    if os.environ.get("SHOP_TRACER") == "xray-sdk":
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
