"""Service "front": the entry point. Each ``/order/<item>`` request makes three HTTP calls to
back, one SQL query and one DynamoDB call, as in the classic X-Ray tutorial.

No tracing code: run it under ``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument``. Without
tracing it is an ordinary Flask app.
"""

from __future__ import annotations

import os
import sqlite3

import boto3
import requests
from flask import Flask, jsonify

BACK_URL = os.environ.get("BACK_URL", "http://127.0.0.1:5001")
TABLE = os.environ.get("ORDERS_TABLE", "orders")
DB_PATH = os.environ.get("FRONT_DB", ":memory:")

app = Flask("front")
http = requests.Session()
dynamodb = boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION", "us-east-1"))


def _label(item: str) -> str | None:
    """The catalog lookup. Cursor calls are what the DB-API instrumentation traces (the
    ``Connection.execute`` shortcut is not), so the query shows up as an SQL subsegment."""
    db = sqlite3.connect(DB_PATH)
    try:
        cursor = db.cursor()
        cursor.execute("CREATE TABLE IF NOT EXISTS catalog (item TEXT PRIMARY KEY, label TEXT)")
        cursor.executemany(
            "INSERT OR IGNORE INTO catalog VALUES (?, ?)",
            [("apple", "Apple"), ("pear", "Pear"), ("plum", "Plum")],
        )
        cursor.execute("SELECT label FROM catalog WHERE item = ?", (item,))
        row = cursor.fetchone()
        return str(row[0]) if row else None
    finally:
        db.close()


@app.get("/healthcheck")
def healthcheck():  # type: ignore[no-untyped-def]
    return "ok"


@app.get("/order/<item>")
def order(item: str):  # type: ignore[no-untyped-def]
    label = _label(item)
    # Three downstream calls; a dead back makes requests raise, Flask answers 500 and the trace
    # shows the connection error on the failing subsegment.
    price = http.get(f"{BACK_URL}/price/{item}", timeout=5).json()
    stock = http.get(f"{BACK_URL}/stock/{item}", timeout=5).json()
    shipping = http.get(f"{BACK_URL}/shipping/{item}", timeout=5).json()
    dynamodb.put_item(
        TableName=TABLE,
        Item={"item": {"S": item}, "price": {"N": str(price.get("price", 0))}},
    )
    return jsonify(item=item, label=label, price=price, stock=stock, shipping=shipping), (
        200 if label else 404
    )


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), threaded=True)
