"""Per-span cost of the awsxray exporter against its peers, on the same realistic spans.

Prints ONE JSON line. Spans: 600 requests as Flask + requests record them (one SERVER span with
the WSGI/Flask attributes and two CLIENT spans with the requests attributes each, every request
with its own URLs), exported in BatchSpanProcessor-sized batches (512). Medians of REPEAT
samples, taken round-robin (see ``race``):

* ``ours_ns_per_span``: ``XRayUdpSpanExporter.export`` (translate + encode + embed + one
  ``sendto`` per datagram), embedding on (the default); ``ours_no_embed_*`` off. The daemon
  stand-in is another process, as the real daemon is (a reader thread in this process competed
  for the GIL and was counted as exporter time), and reads between samples: the exporter pays
  the kernel's send and loopback delivery, not the wake-up of an idle reader, which depends on
  the scheduler and the VM rather than on the exporter. ``ours_reader_waiting_*`` is the same
  with the reader blocked in ``recv`` all along (the wake-ups included). Every datagram sent is
  counted on arrival, so a drop would fail the run;
* ``translate_ns_per_span``: ``span_to_documents`` alone; ``sendto_ns_per_datagram``: a bare
  ``sendto`` of a request-sized datagram; ``glue_ns_per_span``: what the exporter adds around
  the translator, the encoder and ``sendto`` (trace grouping, framing, bookkeeping);
* ``otlp_ns_per_span``: the official OTLP encoder on the same spans (``encode_spans`` +
  ``SerializeToString``), the work an OTLP exporter does before its network call;
* ``sdk_lifecycle_ns_per_span``: the SDK creating the same spans (start_span with the same
  attributes + end) with a no-op span processor: the cost the application already pays;
* ``encode_*_ns_per_doc``: encoding the translated documents with orjson vs the stdlib.

The spans are frozen out of the cyclic GC before measuring, so no peer pays for the young
collections that would otherwise walk the just-made spans (whoever ran first did, ~3 µs/span).

Targets: ``ours_vs_sdk_lifecycle`` <= 0.2 and ``otlp_vs_ours`` >= 4.
"""

from __future__ import annotations

import gc
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind  # noqa: E402

from otel_xray import encode, wire  # noqa: E402
from otel_xray.exporter import XRayUdpSpanExporter  # noqa: E402
from otel_xray.translate import DEFAULT_OPTIONS, span_to_documents  # noqa: E402
from otel_xray.wire import HEADER  # noqa: E402

REQUESTS = 600
BATCH = 512
REPEAT = 15

RESOURCE = Resource.create(
    {
        "service.name": "front",
        "service.version": "1.4.2",
        "cloud.provider": "aws",
        "cloud.platform": "aws_ec2",
        "cloud.region": "eu-west-1",
        "cloud.availability_zone": "eu-west-1a",
        "host.id": "i-0123456789abcdef0",
        "host.type": "m5.large",
    }
)


def server_attributes(i: int) -> dict[str, Any]:
    return {
        "http.method": "GET",
        "http.server_name": "127.0.0.1",
        "http.scheme": "http",
        "net.host.name": "front.internal",
        "net.host.port": 8080,
        "http.host": "front.internal:8080",
        "http.target": f"/orders/{i}?expand=items",
        "net.peer.ip": "10.0.3.17",
        "net.peer.port": 52344,
        "http.user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "http.flavor": "1.1",
        "http.route": "/orders/<int:order_id>",
        "http.status_code": 200,
    }


def client_attributes(i: int, j: int) -> dict[str, Any]:
    return {
        "http.method": "GET",
        "http.url": f"http://inventory.internal:8081/items/{i}-{j}?fields=stock",
        "http.status_code": 200 if j else 503,
        "http.user_agent": "python-requests/2.31.0",
    }


def record(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("bench")
    for i in range(REQUESTS):
        with tracer.start_as_current_span(
            "GET /orders/<int:order_id>", kind=SpanKind.SERVER, attributes=server_attributes(i)
        ):
            for j in range(2):
                with tracer.start_as_current_span(
                    "GET", kind=SpanKind.CLIENT, attributes=client_attributes(i, j)
                ):
                    pass


def make_spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    record(provider)
    provider.shutdown()
    return list(memory.get_finished_spans())


def batches(spans: Sequence[ReadableSpan]) -> list[Sequence[ReadableSpan]]:
    return [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]


class Entrant:
    """One measured thing: ``run`` handles ``items`` items; ``before``/``after`` are untimed."""

    def __init__(
        self,
        run: Callable[[], object],
        items: int,
        before: Callable[[], object] | None = None,
        after: Callable[[], object] | None = None,
    ) -> None:
        self.run = run
        self.items = items
        self.before = before
        self.after = after
        self.samples: list[float] = []

    @property
    def ns_per_item(self) -> float:
        return statistics.median(self.samples)


def race(entrants: dict[str, Entrant], repeat: int = REPEAT) -> None:
    """Sample every entrant once per round, round after round.

    On a shared VM the speed of the machine drifts by tens of percent over seconds; measuring
    one peer after another would fold that drift into the ratios. Interleaved, a slow spell
    costs every peer alike, and the medians compare like with like.
    """
    for _ in range(repeat):
        for entrant in entrants.values():
            if entrant.before is not None:
                entrant.before()
            start = time.perf_counter_ns()
            entrant.run()
            entrant.samples.append((time.perf_counter_ns() - start) / entrant.items)
            if entrant.after is not None:
                entrant.after()


# The daemon stand-in: a process of its own, as the real daemon is, so its receive loop neither
# competes for this interpreter's GIL nor counts as exporter time (an in-process reader thread
# added ~4 µs per span). Commands on stdin:
#   "drain"  read what is queued without blocking, then answer the running total;
#   "follow" read blocking (the daemon's idle state) until a b"pause" datagram, then answer.
# Its receive buffer is large (SO_RCVBUFFORCE as root, else SO_RCVBUF up to rmem_max) so one
# timed run fits in it whole.
_DRAIN_SCRIPT = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# SO_RCVBUFFORCE (33 on Linux, not exported by the socket module) passes rmem_max as root.
for option in ((33,) if sys.platform == "linux" else ()) + (socket.SO_RCVBUF,):
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 64 * 1024 * 1024)
        break
    except OSError:
        pass
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
received = 0
for command in sys.stdin:
    if command.strip() == "follow":
        sock.setblocking(True)
        while sock.recv(70000) != b"pause":
            received += 1
    sock.setblocking(False)
    try:
        while True:
            sock.recv(70000)
            received += 1
    except BlockingIOError:
        pass
    print(received, flush=True)
"""


class Drain:
    """The loopback daemon stand-in (see ``_DRAIN_SCRIPT``)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _DRAIN_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._command(None))
        self.address = f"127.0.0.1:{self.port}"
        self._waker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def _command(self, command: str | None) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        if command is not None:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        return self._process.stdout.readline()

    def drain(self) -> int:
        """Empty the queue; return how many datagrams arrived so far."""
        return int(self._command("drain"))

    def follow(self) -> None:
        """Have the reader wait in ``recv``, as an idle daemon does, until :meth:`pause`."""
        assert self._process.stdin is not None
        self._process.stdin.write("follow\n")
        self._process.stdin.flush()

    def pause(self) -> int:
        self._waker.sendto(b"pause", ("127.0.0.1", self.port))
        return int(self._command(None))

    def close(self) -> None:
        self._waker.close()
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def exporter_entrant(
    spans: list[ReadableSpan], drain: Drain, embed: bool, reader_waiting: bool = False
) -> tuple[Entrant, XRayUdpSpanExporter]:
    """The exporter's cost per span. By default the daemon stand-in reads between timed runs
    only: the exporter then pays what it always pays, the kernel's send and loopback delivery,
    but not waking an idle reader, whose cost depends on the scheduler and the VM (an IPI)
    rather than on the exporter. ``reader_waiting`` keeps the reader blocked in ``recv``."""
    exporter = XRayUdpSpanExporter(drain.address, embed_subsegments=embed)
    groups = batches(spans)

    def run() -> None:
        for group in groups:
            exporter.export(group)

    if reader_waiting:
        return Entrant(run, len(spans), before=drain.follow, after=drain.pause), exporter
    return Entrant(run, len(spans), before=drain.drain), exporter


def sdk_lifecycle_entrant(spans: list[ReadableSpan]) -> Entrant:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SpanProcessor())  # no-op: the SDK's own work only
    tracer = provider.get_tracer("bench")
    prepared = [(s.name, s.kind, dict(s.attributes or {})) for s in spans]

    def run() -> None:
        start_span = tracer.start_span
        for name, kind, attributes in prepared:
            start_span(name, kind=kind, attributes=attributes).end()

    return Entrant(run, len(spans))


def sendto_entrant(drain: Drain, payload: bytes, count: int) -> Entrant:
    """A bare non-blocking ``sendto`` of a typical datagram: the fixed cost per datagram."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    destination = ("127.0.0.1", drain.port)

    def run() -> None:
        sendto = sock.sendto
        for _ in range(count):
            sendto(payload, destination)

    return Entrant(run, count, before=drain.drain)


def main() -> None:
    spans = make_spans()
    groups = batches(spans)
    documents = [d for span in spans for d in span_to_documents(span, DEFAULT_OPTIONS)]
    # The datagram an embedded request makes: its documents' bytes, one header per segment.
    segments = sum(1 for d in documents if "type" not in d)
    typical = sum(len(encode.dumps(d)) for d in documents) // segments + len(HEADER)
    # The spans were just made, so the cyclic GC's young collections, which every peer's own
    # allocations trigger, would keep walking them (and their attribute dicts) until they got
    # promoted: whoever ran first would pay for it. Frozen, they are old for everyone, and
    # each peer pays only for the collections of what it allocates itself.
    gc.collect()
    gc.freeze()

    def translate_all() -> None:
        for span in spans:
            span_to_documents(span, DEFAULT_OPTIONS)

    def encode_each(dumps: Callable[[Any], bytes]) -> Callable[[], None]:
        def run() -> None:
            for document in documents:  # bodies are not kept, as in the exporter's trace loop
                dumps(document)

        return run

    drain = Drain()
    try:
        ours, embedded = exporter_entrant(spans, drain, embed=True)
        flat, not_embedded = exporter_entrant(spans, drain, embed=False)
        waiting, waited = exporter_entrant(spans, drain, embed=True, reader_waiting=True)
        entrants = {
            "ours": ours,
            "no_embed": flat,
            "reader_waiting": waiting,
            "translate": Entrant(translate_all, len(spans)),
            "encode_orjson": Entrant(encode_each(wire.dumps_orjson), len(documents)),
            "encode_json": Entrant(encode_each(wire.dumps_json), len(documents)),
            "sendto": sendto_entrant(drain, b"x" * typical, 200),
            "otlp": Entrant(
                lambda: [encode_spans(group).SerializeToString() for group in groups], len(spans)
            ),
            "sdk_lifecycle": sdk_lifecycle_entrant(spans),
        }
        race(entrants)
        received = drain.drain()
    finally:
        drain.close()
    exporters = (embedded, not_embedded, waited)
    counters = [exporter.counters for exporter in exporters]
    for exporter in exporters:
        exporter.shutdown()
    sent = sum(c.datagrams_sent for c in counters) + REPEAT * entrants["sendto"].items
    assert received == sent, f"the daemon stand-in received {received} of {sent} datagrams"
    assert not any(c.dropped for c in counters), counters

    cost = {name: entrant.ns_per_item for name, entrant in entrants.items()}
    embed_counters, flat_counters = counters[0], counters[1]
    datagrams_per_span = embed_counters.datagrams_sent / embed_counters.spans_exported
    docs_per_span = len(documents) / len(spans)
    # What the exporter adds around the translator, the encoder and the sendto calls.
    glue = (
        cost["ours"]
        - cost["translate"]
        - cost["encode_orjson"] * docs_per_span
        - cost["sendto"] * datagrams_per_span
    )
    result = {
        "bench": "exporter",
        "spans": len(spans),
        "batch": BATCH,
        "repeat": REPEAT,
        "encoder": wire.ENCODER_NAME,
        "ours_ns_per_span": round(cost["ours"]),
        "ours_no_embed_ns_per_span": round(cost["no_embed"]),
        "ours_reader_waiting_ns_per_span": round(cost["reader_waiting"]),
        "translate_ns_per_span": round(cost["translate"]),
        "sendto_ns_per_datagram": round(cost["sendto"]),
        "glue_ns_per_span": round(glue),
        "otlp_ns_per_span": round(cost["otlp"]),
        "sdk_lifecycle_ns_per_span": round(cost["sdk_lifecycle"]),
        "ours_vs_sdk_lifecycle": round(cost["ours"] / cost["sdk_lifecycle"], 3),
        "translate_vs_sdk_lifecycle": round(cost["translate"] / cost["sdk_lifecycle"], 3),
        "otlp_vs_ours": round(cost["otlp"] / cost["ours"], 2),
        "embed_datagrams_per_span": round(datagrams_per_span, 3),
        "no_embed_datagrams_per_span": round(
            flat_counters.datagrams_sent / flat_counters.spans_exported, 3
        ),
        "no_embed_vs_embed_cost": round(cost["no_embed"] / cost["ours"], 2),
        "embed_bytes_per_span": round(embed_counters.bytes_sent / embed_counters.spans_exported),
        "encode_orjson_ns_per_doc": round(cost["encode_orjson"]),
        "encode_json_ns_per_doc": round(cost["encode_json"]),
        "json_vs_orjson": round(cost["encode_json"] / cost["encode_orjson"], 2),
        "targets": {
            "ours_vs_sdk_lifecycle<=0.2": cost["ours"] / cost["sdk_lifecycle"] <= 0.2,
            "otlp_vs_ours>=4": cost["otlp"] / cost["ours"] >= 4,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
