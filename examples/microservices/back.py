"""Service "back": the downstream that front calls three times per request.

No tracing code: run it under ``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument``.
"""

from __future__ import annotations

import os
import random
import time

from flask import Flask, jsonify

app = Flask("back")

PRICES = {"apple": 1.25, "pear": 0.9, "plum": 2.4}


@app.get("/healthcheck")
def healthcheck():  # type: ignore[no-untyped-def]
    return "ok"


@app.get("/price/<item>")
def price(item: str):  # type: ignore[no-untyped-def]
    time.sleep(random.uniform(0.002, 0.01))  # a little work, so the timeline shows something
    if item not in PRICES:
        return jsonify(error=f"no such item: {item}"), 404
    return jsonify(item=item, price=PRICES[item])


@app.get("/stock/<item>")
def stock(item: str):  # type: ignore[no-untyped-def]
    time.sleep(random.uniform(0.001, 0.005))
    return jsonify(item=item, stock=random.randint(0, 40))


@app.get("/shipping/<item>")
def shipping(item: str):  # type: ignore[no-untyped-def]
    time.sleep(random.uniform(0.001, 0.02))
    return jsonify(item=item, days=random.randint(1, 5))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5001")), threaded=True)
