"""Hostile HTTP against the collector's API port, over raw sockets (issue 15, cases 1-5, 7, 8).

Each case was a 5xx, an unbounded read or an open door before the HTTP layer moved to waitress;
each is a 4xx (or a refused connection) now, and the next good request is still answered.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from otel_xray_collector.api.server import ApiServer
from otel_xray_collector.app import Collector
from otel_xray_collector.startup import StartupError

from .conftest import make_config, xray_client_for
from .support.segments import segment

NOW = time.time()


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(address: tuple[str, int], raw: bytes, timeout: float = 10.0) -> Response:
    """Send ``raw`` as is, read one response (the server closes or sends Content-Length)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(raw)
        return read_response(sock)


def read_response(sock: socket.socket) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Response(status, headers, body)


def request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    fields = {"Host": host, "Connection": "close"}
    if body or method == "POST":
        fields["Content-Length"] = str(len(body))
    fields.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(collector: Collector) -> tuple[str, int]:
    return collector.tcp_address


def stored_ids(collector: Collector) -> set[str]:
    assert collector.wait_for_datagrams(0, timeout=10)
    client = xray_client_for(collector.endpoint_url)
    summaries = client.get_trace_summaries(StartTime=NOW - 600, EndTime=NOW + 600)
    return {summary["Id"] for summary in summaries["TraceSummaries"]}


def put_body(*documents: dict[str, Any]) -> bytes:
    return json.dumps({"TraceSegmentDocuments": [json.dumps(d) for d in documents]}).encode()


# -- case 1: cross-site access (DNS rebinding, CSRF) -----------------------------------------


def test_a_foreign_host_header_is_refused_for_reads_and_writes(
    collector: Collector, api: tuple[str, int]
) -> None:
    document = segment("rebinding", start=NOW - 5)
    for host in ("attacker.example", f"attacker.example:{api[1]}"):
        write = exchange(api, request("POST", "/TraceSegments", put_body(document), JSON, host))
        assert write.status == 403
        assert write.json()["__type"] == "AccessDeniedException"
        read = exchange(api, request("GET", "/status", host=host))
        assert read.status == 403
        console = exchange(api, request("GET", "/", host=host))
        assert console.status == 403
    assert document["trace_id"] not in stored_ids(collector)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "LOCALHOST:2000", "[::1]", "[::1]:2000", "10.1.2.3:2000"],
)
def test_loopback_names_and_ip_literals_are_answered(api: tuple[str, int], host: str) -> None:
    assert exchange(api, request("GET", "/health", host=host)).status == 200


def test_allow_host_adds_names(tmp_path: Path) -> None:
    config = make_config(tmp_path / "x.db", otlp=None, allow_hosts=("xray-service.default",))
    with Collector(config) as collector:
        allowed = request("GET", "/health", host="xray-service.default:2000")
        assert exchange(collector.tcp_address, allowed).status == 200
        other = request("GET", "/health", host="other.default:2000")
        assert exchange(collector.tcp_address, other).status == 403


def test_cross_origin_and_simple_request_writes_are_refused(
    collector: Collector, api: tuple[str, int]
) -> None:
    document = segment("csrf", start=NOW - 5)
    body = put_body(document)
    host = f"127.0.0.1:{api[1]}"
    refused = [
        # the curl: text/plain from another origin
        {"Content-Type": "text/plain", "Origin": "http://attacker.example"},
        # another port of the same machine is another origin
        {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"},
        {"Content-Type": "application/json", "Origin": "null"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        answer = exchange(api, request("POST", "/TraceSegments", body, headers, host))
        assert answer.status == 403, headers
    # what a page can send without a preflight, even with no Origin at all, is not JSON
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = exchange(api, request("POST", "/TraceSegments", body, headers, host))
        assert answer.status == 415, content_type
        assert answer.json()["__type"] == "UnsupportedMediaTypeException"
    preflight = {"Origin": "http://attacker.example", "Access-Control-Request-Method": "POST"}
    answer = exchange(api, request("OPTIONS", "/TraceSegments", headers=preflight, host=host))
    assert answer.status == 403
    assert not any(name.startswith("access-control-") for name in answer.headers)
    assert document["trace_id"] not in stored_ids(collector)


def test_the_console_origin_and_sdk_content_types_are_accepted(
    collector: Collector, api: tuple[str, int]
) -> None:
    host = f"127.0.0.1:{api[1]}"
    documents = []
    for headers in (
        {"Content-Type": "application/json", "Origin": f"http://{host}"},
        {"Content-Type": "application/json; charset=utf-8", "Sec-Fetch-Site": "same-origin"},
        {"Content-Type": "application/x-amz-json-1.1"},
        {"Content-Type": "application/x-amz-json-1.0"},
    ):
        document = segment("own", start=NOW - 5)
        documents.append(document)
        answer = exchange(api, request("POST", "/TraceSegments", put_body(document), headers, host))
        assert answer.status == 200, headers
    assert {d["trace_id"] for d in documents} <= stored_ids(collector)


# -- cases 2 and 3: body framing -----------------------------------------------------------


@pytest.mark.parametrize(
    "length", ["-1", "-100", "abc", "1e3", "+5", "0x10", "99999999999999999999"]
)
def test_negative_or_garbage_content_length_is_400_without_reading(
    api: tuple[str, int], length: str
) -> None:
    # Nothing follows the headers: a server that reads to end of stream would wait forever.
    raw = (
        f"POST /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection(api, timeout=10) as sock:
        sock.sendall(raw)
        answer = read_response(sock)
    assert answer.status in (400, 413), length
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_body_over_the_limit_is_413_before_it_is_read(api: tuple[str, int]) -> None:
    raw = (
        "POST /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection(api, timeout=10) as sock:
        sock.sendall(raw + b"{" * 1024)  # 50 MiB announced, 1 KiB sent: answered at once
        answer = read_response(sock)
    assert answer.status == 413


def chunked(chunks: bytes) -> bytes:
    return (
        b"POST /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    )


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hex
        b"-1\r\n{}\r\n0\r\n\r\n",  # negative chunk size
        b"2\r\n{}XX0\r\n\r\n",  # missing chunk terminator
        b"2;\x00\r\n{}\r\n0\r\n\r\n",  # control character in an extension
        b"ffffffffffffffffffff\r\n",  # beyond any limit
    ],
)
def test_malformed_chunked_framing_is_4xx(api: tuple[str, int], chunks: bytes) -> None:
    answer = exchange(api, chunked(chunks))
    assert 400 <= answer.status < 500, chunks


def test_chunked_over_the_limit_is_413_and_good_chunked_works(
    collector: Collector, api: tuple[str, int]
) -> None:
    size = 1024 * 1024
    with socket.create_connection(api, timeout=30) as sock:
        sock.sendall(chunked(b""))
        answer = None
        try:
            for _ in range(20):  # 20 MiB offered, the limit is 8
                sock.sendall(f"{size:x}\r\n".encode() + b" " * size + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_response(sock)
    assert answer.status == 413
    document = segment("chunked", start=NOW - 5)
    body = put_body(document)
    good = exchange(api, chunked(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"))
    assert good.status == 200
    assert document["trace_id"] in stored_ids(collector)


def test_unknown_transfer_encoding_is_400_not_501(api: tuple[str, int]) -> None:
    raw = (
        b"POST /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip, chunked, identity\r\n\r\n"
    )
    assert exchange(api, raw).status == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
        b"POST /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
        b"DELETE /TraceSegments HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ],
)
def test_malformed_requests_are_4xx_with_security_headers(api: tuple[str, int], raw: bytes) -> None:
    answer = exchange(api, raw)
    assert 400 <= answer.status < 500, raw[:40]
    assert answer.headers["x-content-type-options"] == "nosniff"


# -- case 4: wrong-typed or out-of-range fields --------------------------------------------


def post_json(api: tuple[str, int], path: str, body: Any) -> Response:
    return exchange(api, request("POST", path, json.dumps(body).encode(), JSON))


WINDOW = {"StartTime": NOW - 60, "EndTime": NOW}
HUGE = [-1e308, -(2**70), 1e308, 2**70, -1, "not a time", [], {}, True]
BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    *[("/TraceSummaries", {**WINDOW, "TimeRangeType": bad}) for bad in ([], {}, 5, "Nope")],
    *[("/TraceSummaries", {**WINDOW, "FilterExpression": bad}) for bad in ([], {}, 5)],
    *[("/TraceSummaries", {**WINDOW, "NextToken": bad}) for bad in ([], {}, 5, "x" * 5000)],
    *[(path, {**WINDOW, "StartTime": bad}) for path in ("/ServiceGraph",) for bad in HUGE],
    *[("/TimeSeriesServiceStatistics", {**WINDOW, "StartTime": bad}) for bad in HUGE],
    *[("/TimeSeriesServiceStatistics", {**WINDOW, "EndTime": bad}) for bad in HUGE],
    *[("/TraceSummaries", {**WINDOW, "EndTime": bad}) for bad in HUGE],
    *[
        ("/TimeSeriesServiceStatistics", {**WINDOW, "Period": bad})
        for bad in (-60, 0, 59, 61, 2**70, 1e308, "60", [], True)
    ],
    *[
        ("/TimeSeriesServiceStatistics", {**WINDOW, "EntitySelectorExpression": bad})
        for bad in ([], {}, 1)
    ],
    *[
        (path, {"TraceIds": bad})
        for path in ("/Traces", "/TraceGraph")
        for bad in (None, "1-abc", [1], [[]], [""], ["x" * 36], ["1-a"] * 1001, {})
    ],
    *[("/Traces", {"TraceIds": ["1-a"], "NextToken": bad}) for bad in (5, "%%%", "e30")],
    *[("/TraceSegments", {"TraceSegmentDocuments": bad}) for bad in (None, "{}", [1], {})],
    *[("/TelemetryRecords", {"TelemetryRecords": bad}) for bad in (None, 5, [1], "x")],
    ("/TelemetryRecords", {"TelemetryRecords": [], "Hostname": []}),
    *[("/GetSamplingRules", {"NextToken": bad}) for bad in (5, [], "x")],
    *[
        ("/SamplingTargets", {"SamplingStatisticsDocuments": bad})
        for bad in (
            None,
            5,
            [5],
            [{"RuleName": "Default", "ClientID": "a" * 24, "Timestamp": -1e308}],
            [{"RuleName": "Default", "ClientID": "a" * 24, "Timestamp": 1, "RequestCount": 1e308}],
            [{"RuleName": [], "ClientID": "a" * 24, "Timestamp": 1}],
        )
    ],
    *[(path, []) for path in ("/TraceSummaries", "/ServiceGraph", "/GetSamplingRules")],
    *[(path, "text") for path in ("/TraceSummaries", "/SamplingTargets")],
]


@pytest.mark.parametrize(("path", "body"), BAD_FIELDS, ids=lambda v: str(v)[:60])
def test_wrong_typed_or_out_of_range_fields_are_invalid_request(
    api: tuple[str, int], path: str, body: Any
) -> None:
    answer = post_json(api, path, body)
    assert answer.status == 400, answer.body[:300]
    assert answer.json()["__type"] == "InvalidRequestException"
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestException"


def test_forged_next_tokens_are_refused(collector: Collector, api: tuple[str, int]) -> None:
    """A token carries a signed position: a well-formed token with another position is a 400."""
    import base64

    for position in (-1, 2**70, [1, 2, 3], "x", [1e308, []]):
        forged = json.dumps({"s": "0" * 32, "p": position}).encode()
        token = base64.urlsafe_b64encode(forged).decode().rstrip("=")
        for path, body in (
            ("/ServiceGraph", {**WINDOW, "NextToken": token}),
            ("/TraceSummaries", {**WINDOW, "NextToken": token}),
            ("/Traces", {"TraceIds": ["1-a"], "NextToken": token}),
        ):
            answer = post_json(api, path, body)
            assert answer.status == 400, (path, position)


# -- case 5: paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 300,
        "/" + "a" * 5000,
        "/js/" + "b" * 256 + ".js",
        "/%00",
        "/%ff%fe",
        "/../../../../etc/passwd",
        "/js/../../app.py",
        "/%2e%2e/__init__.py",
        "//etc/passwd",
        "/index.html/x",
    ],
)
def test_paths_outside_the_console_are_404(api: tuple[str, int], path: str) -> None:
    assert exchange(api, request("GET", path)).status == 404


def test_unknown_post_paths_are_404_whatever_the_body(api: tuple[str, int]) -> None:
    for body in (b"\x00\x01\x02protobuf", b"{", b"{}"):
        answer = exchange(api, request("POST", "/v2/nothing", body, JSON))
        assert answer.status == 404
        assert answer.json()["__type"] == "UnknownOperationException"


# -- case 7: security headers ----------------------------------------------------------------


def test_every_response_carries_the_security_headers(api: tuple[str, int]) -> None:
    answers = [
        exchange(api, request("GET", "/")),
        exchange(api, request("GET", "/js/main.js")),
        exchange(api, request("GET", "/status")),
        exchange(api, request("GET", "/missing")),
        post_json(api, "/ServiceGraph", WINDOW),
        post_json(api, "/ServiceGraph", {}),
        exchange(api, request("GET", "/", host="attacker.example")),
        exchange(api, b"GARBAGE\r\n\r\n"),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp


# -- case 8: bounded connections and timeouts ------------------------------------------------


def test_slow_and_idle_clients_are_cut_off_and_others_are_served(tmp_path: Path) -> None:
    """A request that takes longer than the deadline to arrive is closed; so is an idle one.
    Meanwhile the workers answer everyone else."""
    server = ApiServer("127.0.0.1", 0, {}, lambda: {}, None)
    server._server.request_timeout = 1.0  # the deadline, short for the test
    server._server.adj.channel_timeout = 2.0
    server._server.adj.cleanup_interval = 1
    server.start()
    try:
        slow = socket.create_connection(server.address, timeout=30)
        idle = socket.create_connection(server.address, timeout=30)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
        assert exchange(server.address, request("GET", "/health")).status == 200
        for sock in (slow, idle):
            # closed by the server: recv ends with b"" (a socket timeout would raise instead)
            try:
                while sock.recv(1024):
                    pass
            except ConnectionResetError:
                pass
            sock.close()
    finally:
        server.stop()


def test_connections_beyond_the_limit_wait_and_workers_are_bounded(tmp_path: Path) -> None:
    from otel_xray_collector.api.security import BrowserPolicy
    from otel_xray_collector.api.server import HttpListener
    from otel_xray_collector.api.web import HttpApp

    app = HttpApp({}, lambda: {}, None, BrowserPolicy())
    listener = HttpListener("127.0.0.1", 0, app, name="t", connection_limit=4, threads=2)
    listener.start()
    try:
        held = [socket.create_connection(listener.address, timeout=10) for _ in range(8)]
        # at most the limit accepted (the rest wait in the backlog), no thread per connection
        assert len(listener._server.active_channels) <= 4
        for sock in held[:4]:
            sock.close()
        # the waiting connections are accepted as others close, and answered
        for sock in held[4:]:
            sock.sendall(request("GET", "/health"))
            assert read_response(sock).status == 200
            sock.close()
    finally:
        listener.stop()


# -- listeners: loopback by default, exposure logged, bind errors named ----------------------


def test_binding_beyond_loopback_logs_what_is_exposed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path / "x.db", otlp=None, tcp="0.0.0.0:0", otlp_http="0.0.0.0:0")
    with caplog.at_level(logging.WARNING, logger="otel_xray_collector"):
        with Collector(config):
            pass
    warnings = [r.getMessage() for r in caplog.records if "beyond loopback" in r.getMessage()]
    assert any("every stored trace" in w and "0.0.0.0:" in w for w in warnings), warnings
    assert any("OTLP/HTTP" in w for w in warnings), warnings
    assert not any("UDP" in w for w in warnings)  # still on 127.0.0.1


def test_the_defaults_listen_on_loopback_only() -> None:
    from otel_xray_collector.config import CollectorConfig, is_loopback, parse_address

    config = CollectorConfig()
    for address in (config.udp, config.tcp, config.otlp, config.otlp_http):
        assert address is not None and is_loopback(parse_address(address)[0]), address


def test_a_taken_port_is_one_error_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(tmp_path / "x.db", otlp=None, otlp_http=f"127.0.0.1:{port}")
        with pytest.raises(StartupError) as caught:  # the CLI prints it as one line, exit 1
            Collector(config).start()
    assert caught.value.code == 1
    assert str(caught.value) == (
        f"OTLP HTTP listener (--otlp-http 127.0.0.1:{port}): cannot listen: address already in"
        " use (another process is listening there)"
    )


# -- curl, as the docs show it ----------------------------------------------------------------


def test_curl_reads_with_a_json_content_type_and_is_told_otherwise(
    collector: Collector, xray_client: Any
) -> None:
    import subprocess

    xray_client.put_trace_segments(
        TraceSegmentDocuments=[json.dumps(segment("curl-svc", start=NOW - 5))]
    )
    assert collector.wait_for_datagrams(0, timeout=10)
    body = json.dumps({"StartTime": NOW - 600, "EndTime": NOW + 600})
    url = collector.endpoint_url + "/ServiceGraph"

    def curl(*args: str) -> tuple[int, Any]:
        run = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", *args, "-d", body, url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        text, _, code = run.stdout.rpartition("\n")
        return int(code), json.loads(text)

    status, answer = curl("-H", "Content-Type: application/json")
    assert status == 200
    assert "curl-svc" in {service["Name"] for service in answer["Services"]}
    status, answer = curl()  # curl -d alone sends application/x-www-form-urlencoded
    assert status == 415
    assert "application/json" in answer["message"]
