"""``otel-xray-collector``: run the collector until SIGTERM/SIGINT.

Prints exactly one JSON line to stdout once every listener is bound (tools and tests read the
real ports from it when asked for port 0); everything else is logged to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from . import __version__
from .app import Collector
from .config import (
    DEFAULT_OTLP,
    DEFAULT_OTLP_HTTP,
    DEFAULT_TCP,
    DEFAULT_UDP,
    FORWARD_PROTOCOLS,
    CollectorConfig,
    parse_address,
)

_LEVELS = {
    "dev": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "prod": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _address(value: str) -> str:
    try:
        parse_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _address_or_off(value: str) -> str | None:
    """A listener address, or None for ``off`` (argparse reports a bad one, exit code 2)."""
    return None if value.strip().lower() in ("off", "none", "") else _address(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-xray-collector",
        description="X-Ray daemon-compatible collector with a local store, API and console.",
    )
    parser.add_argument(
        "--udp",
        default=DEFAULT_UDP,
        type=_address_or_off,
        metavar="HOST:PORT",
        help="UDP address for segment documents, or 'off' (default %(default)s)",
    )
    parser.add_argument(
        "--ingest",
        default="on",
        choices=("on", "off"),
        help="'off': an API/console replica over a shared store: no UDP, OTLP/gRPC or "
        "OTLP/HTTP listener (the X-Ray API's PutTraceSegments and /v1/traces on the --tcp "
        "port still write) (default %(default)s)",
    )
    parser.add_argument(
        "--tcp",
        default=DEFAULT_TCP,
        type=_address,
        metavar="HOST:PORT",
        help="HTTP address for the X-Ray API, sampling and console (default %(default)s)",
    )
    parser.add_argument(
        "--otlp",
        default=DEFAULT_OTLP,
        type=_address_or_off,
        metavar="HOST:PORT",
        help="OTLP/gRPC address, or 'off' (default %(default)s)",
    )
    parser.add_argument(
        "--otlp-http",
        default=DEFAULT_OTLP_HTTP,
        type=_address_or_off,
        metavar="HOST:PORT",
        help="OTLP/HTTP address (POST /v1/traces, also served on the --tcp port), "
        "or 'off' (default %(default)s)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the HTTP listeners answer to besides IP addresses and localhost "
        "(DNS-rebinding protection); repeat for several, '*' for any (behind a proxy)",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH|URL",
        help="SQLite file (default: the user data dir; ':memory:' keeps nothing after exit), or "
        "a postgresql:// URL: a PostgreSQL store shared by several collectors (libpq URL, "
        "PG* environment variables apply; needs otel-xray-collector[postgres])",
    )
    parser.add_argument(
        "--forward-endpoint",
        default=None,
        metavar="URL",
        help="also forward every accepted document with PutTraceSegments to "
        "this X-Ray endpoint ('aws' = the regional AWS endpoint)",
    )
    parser.add_argument(
        "--forward-protocol",
        default="segments",
        choices=FORWARD_PROTOCOLS,
        help="how to forward: 'segments' (PutTraceSegments, like the daemon), 'otlp' (X-Ray's "
        "OTLP endpoint, needs CloudWatch Transaction Search), 'auto' (otlp when "
        "GetTraceSegmentDestination says CloudWatchLogs) (default %(default)s)",
    )
    parser.add_argument("--region", default=None, help="AWS region for forwarding")
    parser.add_argument(
        "--telemetry-interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between PutTelemetryRecords calls when forwarding; 0 = off "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--resource-arn",
        default=None,
        metavar="ARN",
        help="the ResourceARN sent with PutTelemetryRecords (like the daemon's -a)",
    )
    parser.add_argument(
        "--sampling-rules",
        default=None,
        metavar="PATH",
        help="sampling rules file served to SDKs (default: X-Ray's default rule)",
    )
    parser.add_argument(
        "--retention-hours",
        type=float,
        default=72.0,
        metavar="N",
        help="delete traces not updated for N hours; 0 = keep (default %(default)s)",
    )
    parser.add_argument(
        "--max-db-mb",
        type=float,
        default=1024.0,
        metavar="N",
        help="delete the oldest traces when the store grows past N MiB; "
        "0 = no limit (default %(default)s)",
    )
    parser.add_argument(
        "--buffer-mb",
        type=int,
        default=64,
        metavar="N",
        help="memory for datagrams waiting to be written; the oldest are "
        "dropped beyond it (default %(default)s)",
    )
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="forward only: keep nothing locally (read APIs answer an error)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="fsync every commit (synchronous=FULL): also survive power loss",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=sorted(_LEVELS),
        help="log verbosity on stderr (default %(default)s)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def config_from_args(args: argparse.Namespace) -> CollectorConfig:
    if args.no_store and not args.forward_endpoint:
        raise SystemExit("otel-xray-collector: --no-store needs --forward-endpoint")
    if args.forward_protocol != "segments" and not args.forward_endpoint:
        raise SystemExit("otel-xray-collector: --forward-protocol needs --forward-endpoint")
    ingest = args.ingest == "on"
    return CollectorConfig(
        udp=args.udp if ingest else None,
        tcp=args.tcp,
        otlp=args.otlp if ingest else None,
        otlp_http=args.otlp_http if ingest else None,
        db=args.db,
        forward_endpoint=args.forward_endpoint,
        forward_protocol=args.forward_protocol,
        region=args.region,
        telemetry_interval=args.telemetry_interval or None,
        resource_arn=args.resource_arn,
        sampling_rules=args.sampling_rules,
        retention_hours=args.retention_hours,
        max_db_mb=args.max_db_mb,
        store=not args.no_store,
        buffer_mb=args.buffer_mb,
        durable=args.durable,
        log_level=args.log_level,
        allow_hosts=tuple(args.allow_host),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    logging.basicConfig(
        level=_LEVELS[config.log_level],
        stream=sys.stderr,
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # Shorter GIL switch interval: threads waiting on I/O (the frame reader, HTTP handlers, or
    # the in-process UDP thread when there is no receiver process) get the GIL back sooner
    # while the ingest thread is busy (measured with the UDP thread: about 1.5x more documents
    # written under a flood).
    sys.setswitchinterval(0.001)
    collector = Collector(config)
    try:
        collector.start()
    except (OSError, ValueError) as exc:  # a taken port; a bad --sampling-rules file
        logging.getLogger("otel_xray_collector").error("cannot start: %s", exc)
        return 1
    try:
        sys.stdout.write(json.dumps(collector.listening_event()) + "\n")
        sys.stdout.flush()
        logging.getLogger("otel_xray_collector").info(
            "otel-xray-collector %s listening: %s", __version__, collector.listening_event()
        )
        while not stop.wait(1.0):
            pass
    finally:
        logging.getLogger("otel_xray_collector").info("shutting down")
        collector.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
