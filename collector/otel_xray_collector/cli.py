"""``otel-xray-collector``: run the collector until SIGTERM/SIGINT.

Prints exactly one JSON line to stdout once every listener is bound (tools and tests read the
real ports from it when asked for port 0); everything else is logged to stderr. A start-up
problem is one line on stderr and exit code 2 (bad argument) or 1 (runtime failure): see
``startup``.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

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
from .startup import BAD_ARGUMENT, RUNTIME_FAILURE, StartupError, describe
from .store.resources import Retention

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


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_ARGUMENT, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        default=None,
        metavar="N",
        help="keep traces N hours (by the time in their id on PostgreSQL, by last update on "
        "SQLite); 0 = keep. Recorded in the store for every collector using it; when not "
        f"given, the store's setting applies (default {Retention.retention_hours:g})",
    )
    parser.add_argument(
        "--max-db-mb",
        type=float,
        default=None,
        metavar="N",
        help="delete the oldest traces when the store grows past N MiB; 0 = no limit. "
        f"Recorded in the store like --retention-hours (default {Retention.max_db_mb:g})",
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
        raise StartupError("--no-store", "needs --forward-endpoint")
    if args.forward_protocol != "segments" and not args.forward_endpoint:
        raise StartupError("--forward-protocol", "needs --forward-endpoint")
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
    try:
        config = config_from_args(args)
    except StartupError as exc:
        sys.stderr.write(exc.line() + "\n")
        return exc.code
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
    failure = _start(collector)
    if failure is not None:
        line, code = failure
        sys.stderr.write(line + "\n")
        return code
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


def _start(collector: Collector) -> tuple[str, int] | None:
    """Start ``collector``; on failure the one line to print and the exit code.

    What the components log while starting is held back: on success it is written as usual, on
    failure it is dropped (at ``--log-level debug`` it is written, with the traceback), so a
    start-up problem is exactly one line.
    """
    root = logging.getLogger()
    direct = list(root.handlers)
    held = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1)
    for handler in direct:
        root.removeHandler(handler)
    root.addHandler(held)
    failure: tuple[str, int] | None = None
    try:
        collector.start()
    except StartupError as exc:
        logging.getLogger("otel_xray_collector").debug("start-up failed", exc_info=True)
        failure = exc.line(), exc.code
    except Exception as exc:  # a failure nobody classified: still one line, no traceback
        logging.getLogger("otel_xray_collector").debug("start-up failed", exc_info=True)
        failure = f"otel-xray-collector: cannot start: {describe(exc)}", RUNTIME_FAILURE
    finally:
        root.removeHandler(held)
        for handler in direct:
            root.addHandler(handler)
        if failure is None or root.isEnabledFor(logging.DEBUG):
            for record in held.buffer:
                root.handle(record)
        held.buffer.clear()
        held.close()
    return failure


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
