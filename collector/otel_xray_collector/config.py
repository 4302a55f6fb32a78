"""Collector settings: one dataclass, filled from the command line or by code."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from otel_xray.wire import DEFAULT_HOST, DEFAULT_PORT, Endpoint, parse_endpoint

DEFAULT_UDP = str(Endpoint(DEFAULT_HOST, DEFAULT_PORT))
DEFAULT_TCP = DEFAULT_UDP
DEFAULT_OTLP = "127.0.0.1:4317"
DEFAULT_OTLP_HTTP = "127.0.0.1:4318"
FORWARD_PROTOCOLS = ("segments", "otlp", "auto")
#: GetTraceSegmentDestination's destinations (botocore's ``TraceSegmentDestination``): AWS
#: answers CloudWatchLogs while Transaction Search is on, and ``auto`` forwarding then uses OTLP.
XRAY_DESTINATION = "XRay"
CLOUDWATCH_LOGS = "CloudWatchLogs"
TRACE_SEGMENT_DESTINATIONS = (XRAY_DESTINATION, CLOUDWATCH_LOGS)


def default_db_path() -> str:
    """``<user data dir>/otel-xray-collector/xray.db`` (platformdirs), created on first use."""
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("otel-xray-collector", appauthor=False), "xray.db")


def parse_address(value: str, default_port: int = 2000) -> tuple[str, int]:
    """A listen address in the library's address grammar (:func:`otel_xray.wire.parse_endpoint`):
    ``host:port``, ``[v6]:port``, ``:port`` or a bare ``port`` (host 127.0.0.1), a host alone
    (``default_port``); port 0 picks a free port."""
    endpoint = parse_endpoint(value, default_port=default_port, allow_any_port=True)
    return endpoint.host, endpoint.port


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def format_address(address: tuple[str, int]) -> str:
    return str(Endpoint(address[0], address[1]))


@dataclass
class CollectorConfig:
    """Everything ``Collector`` needs. ``None`` for ``otlp`` disables the OTLP receiver."""

    udp: str | None = DEFAULT_UDP  # None: no UDP receiver (an API/console replica)
    tcp: str = DEFAULT_TCP
    otlp: str | None = DEFAULT_OTLP
    otlp_http: str | None = DEFAULT_OTLP_HTTP  # None: no OTLP/HTTP listener (/v1/traces stays
    # on the API port)
    db: str | None = None  # None: the user data dir; ":memory:" for a throwaway store
    forward_endpoint: str | None = None  # "aws" = the regional AWS endpoint
    # segments: PutTraceSegments; otlp: X-Ray's OTLP endpoint; auto: GetTraceSegmentDestination
    forward_protocol: str = "segments"
    region: str | None = None
    telemetry_interval: float | None = 60.0  # PutTelemetryRecords period (s); None = off
    resource_arn: str | None = None  # sent in PutTelemetryRecords, as the daemon's -a
    sampling_rules: str | None = None
    # None: not given, the store's setting applies (store/resources.py: Retention, 72 h and
    # 1024 MiB when none); a value is recorded in the store for every collector using it
    retention_hours: float | None = None
    max_db_mb: float | None = None
    store: bool = True
    buffer_mb: int = 64
    durable: bool = False  # synchronous=FULL: also survive power loss, slower commits
    max_waiting_documents: int = 100_000  # acknowledged submissions in flight before 429
    static_root: str | None = None  # the console's files; None = the packaged console
    # UDP receive + validation in a child process (POSIX), so it runs beside the writer on
    # another core; False keeps it on a thread of this process.
    receiver_process: bool = True
    log_level: str = "info"
    #: Host names the HTTP listeners answer to besides IP literals and localhost
    #: (``--allow-host``; ``"*"`` = any, for a proxy that checks names itself).
    allow_hosts: tuple[str, ...] = ()

    def db_path(self) -> str:
        return self.db if self.db is not None else default_db_path()

    def telemetry_identity(self) -> dict[str, str]:
        """Who sends the telemetry records, as the daemon says it: ``AWS_INSTANCE_ID``,
        ``AWS_HOSTNAME`` (else this host's name) and ``--resource-arn``; empty when unknown.
        The daemon also asks the EC2 metadata service; the collector does not, so it never
        probes a network it was not told about."""
        import socket

        return {
            "EC2InstanceId": os.environ.get("AWS_INSTANCE_ID", ""),
            "Hostname": os.environ.get("AWS_HOSTNAME") or socket.gethostname(),
            "ResourceARN": self.resource_arn or "",
        }
