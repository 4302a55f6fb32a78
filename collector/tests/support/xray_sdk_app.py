"""A small app traced with the real aws-xray-sdk, run as a subprocess by the end-to-end test.

Run in its own process so the SDK's global recorder never touches the test process. Prints
one JSON line: the ids it created and how many datagrams the SDK emitted.
"""

from __future__ import annotations

import json
import sys
import threading

from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter


class CountingEmitter(UDPEmitter):
    """The SDK's own UDP emitter; it only counts the datagrams it sends."""

    sent = 0

    def _send_data(self, data: str) -> None:
        CountingEmitter.sent += 1
        super()._send_data(data)


def main() -> None:
    address = sys.argv[1]
    xray_recorder.configure(
        service="checkout",
        sampling=False,
        context_missing="LOG_ERROR",
        streaming_threshold=2,
        daemon_address=address,
        emitter=CountingEmitter(address),
        plugins=(),
    )
    root = xray_recorder.begin_segment("checkout")
    root.put_http_meta("url", "http://shop.example/cart")
    root.put_http_meta("method", "POST")
    root.put_http_meta("user_agent", "pytest")
    root.put_http_meta("client_ip", "127.0.0.1")
    root.put_annotation("tier", "gold")
    root.set_user("alice")

    payments = xray_recorder.begin_subsegment("payments.example", namespace="remote")
    payments.put_http_meta("url", "http://payments.example/pay")
    payments.put_http_meta("method", "POST")
    payments.put_http_meta("status", 503)
    xray_recorder.end_subsegment()

    database = xray_recorder.begin_subsegment("orders@db.example", namespace="remote")
    database.set_sql(
        {
            "url": "postgresql://db.example:5432/orders",
            "database_type": "PostgreSQL",
            "sanitized_query": "SELECT 1",
        }
    )
    xray_recorder.end_subsegment()

    inventory_call = xray_recorder.begin_subsegment("inventory", namespace="remote")
    inventory_call.put_http_meta("url", "http://inventory.example/items")
    inventory_call.put_http_meta("method", "GET")
    ids: dict[str, str] = {}

    def downstream() -> None:  # another service, joined through the trace header values
        segment = xray_recorder.begin_segment(
            "inventory", traceid=root.trace_id, parent_id=inventory_call.id, sampling=1
        )
        segment.put_http_meta("url", "http://inventory.example/items")
        segment.put_http_meta("status", 404)
        ids["inventory"] = segment.id
        xray_recorder.end_segment()

    worker = threading.Thread(target=downstream)
    worker.start()
    worker.join()
    inventory_call.put_http_meta("status", 404)
    xray_recorder.end_subsegment()

    charge = xray_recorder.begin_subsegment("charge")
    try:
        raise ValueError("card declined")
    except ValueError as error:
        charge.add_exception(error, [])
    xray_recorder.end_subsegment()

    for index in range(3):
        xray_recorder.begin_subsegment(f"step-{index}")
        xray_recorder.end_subsegment()

    root.put_http_meta("status", 502)
    xray_recorder.end_segment()
    print(
        json.dumps(
            {
                "trace_id": root.trace_id,
                "root": root.id,
                "payments": payments.id,
                "database": database.id,
                "inventory_call": inventory_call.id,
                "inventory": ids["inventory"],
                "charge": charge.id,
                "datagrams": CountingEmitter.sent,
            }
        )
    )


if __name__ == "__main__":
    main()
