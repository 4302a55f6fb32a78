"""The collector process as one object: wires ingest, store, API, OTLP and forwarding.

``Collector(config).start()`` binds everything (port 0 = ephemeral; the bound addresses are
properties), ``stop()`` shuts down in reverse order so nothing accepted is left unwritten:
listeners close first, then the ingest thread writes and indexes what is queued, then the
forwarder drains, then the database closes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, startup
from .api.destination import SegmentDestination
from .api.groups import GroupService
from .api.operations import XRayOperations
from .api.otlp_http import TRACES_PATH, OtlpHttpRoute
from .api.sampling import SamplingService
from .api.security import BrowserPolicy
from .api.server import MAX_BODY_BYTES, ApiServer
from .config import CollectorConfig, format_address, is_loopback, parse_address
from .console import STATIC_ROOT
from .ingest.otlp import DEFAULT_MAX_MESSAGE_BYTES, TraceExport
from .ingest.pipeline import IngestPipeline
from .ingest.udp import UdpReceiver
from .ingest.udp_process import UdpReceiverProcess
from .ingest.validate import Rejected
from .store.open import open_store
from .store.protocol import Store

if TYPE_CHECKING:
    from .forward.xray import Forwarder

_logger = logging.getLogger("otel_xray_collector")


class Collector:
    def __init__(self, config: CollectorConfig | None = None) -> None:
        self.config = config or CollectorConfig()
        self._started_at: float | None = None
        self._store: Store | None = None
        self._forwarder: Forwarder | None = None
        self._otlp: Any = None
        self._otlp_http: ApiServer | None = None
        self._otlp_http_export: TraceExport | None = None
        self._udp: UdpReceiver | UdpReceiverProcess | None = None
        self._api: ApiServer | None = None
        self._sampling: Any = None
        self.pipeline: IngestPipeline | None = None
        self.operations: XRayOperations | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Collector:
        """Bind and start everything; a second call on a running collector does nothing, so
        ``with Collector(config).start() as c`` does not bind a second set of listeners."""
        if self._started_at is not None:
            return self
        config = self.config
        try:
            if config.store:
                with startup.argument(
                    "--db",
                    startup.redacted(config.db_path()),
                    doing="cannot open the store",
                    catch=(OSError, sqlite3.Error),
                ):
                    self._store = open_store(config.db_path(), durable=config.durable)
                    # the retention flags given are the store's setting from now on
                    self._store.record_retention(config.retention_hours, config.max_db_mb)
            if config.forward_endpoint:
                from .forward.xray import Forwarder  # botocore: imported only when forwarding

                endpoint = None if config.forward_endpoint == "aws" else config.forward_endpoint
                with startup.argument("--forward-endpoint", config.forward_endpoint):
                    self._forwarder = Forwarder(
                        endpoint,
                        config.region,
                        protocol=config.forward_protocol,
                        telemetry_interval=config.telemetry_interval,
                        telemetry_identity=config.telemetry_identity(),
                        local_counts=self._local_counts,
                    )
                self._forwarder.start()
            self.pipeline = IngestPipeline(
                self._store,
                self._forwarder,
                buffer_bytes=config.buffer_mb * 1024 * 1024,
                max_waiting_documents=config.max_waiting_documents,
            )
            self.pipeline.start()
            with startup.argument("--sampling-rules", config.sampling_rules):
                self._sampling = SamplingService(config.sampling_rules, store=self._store)
            self.operations = XRayOperations(
                self.pipeline,
                self._store,
                self._sampling,
                GroupService(self._store),
                SegmentDestination(self._store),
            )
            if config.udp is not None:
                with startup.listener(startup.UDP_INGEST, "--udp", config.udp):
                    self._start_udp(config.udp)
            with startup.listener(startup.HTTP_API, "--tcp", config.tcp):
                tcp_host, tcp_port = startup.listen_address(config.tcp, 2000)
                static = Path(config.static_root) if config.static_root else STATIC_ROOT
                policy = BrowserPolicy.from_names(config.allow_hosts)
                self._otlp_http_export = TraceExport(self._submit_otlp, transport="OTLP/HTTP")
                self._api = ApiServer(
                    tcp_host,
                    tcp_port,
                    self.operations.routes,
                    self.status,
                    static,
                    policy=policy,
                    raw_routes={TRACES_PATH: OtlpHttpRoute(self._otlp_http_export, MAX_BODY_BYTES)},
                )
                self._api.start()
            if config.otlp_http:
                with startup.listener(startup.OTLP_HTTP, "--otlp-http", config.otlp_http):
                    otlp_http_host, otlp_http_port = startup.listen_address(config.otlp_http, 4318)
                    self._otlp_http = ApiServer(
                        otlp_http_host,
                        otlp_http_port,
                        {},
                        None,
                        None,
                        policy=policy,
                        raw_routes={TRACES_PATH: OtlpHttpRoute(self._otlp_http_export)},
                        max_body_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                        name="--otlp-http",
                    )
                    self._otlp_http.start()
            if config.otlp:
                from .ingest.otlp import OtlpReceiver

                with startup.listener(startup.OTLP_GRPC, "--otlp", config.otlp):
                    otlp_host, otlp_port = startup.listen_address(config.otlp, 4317)
                    startup.probe_tcp_port(otlp_host, otlp_port)  # gRPC would only log it
                    self._otlp = OtlpReceiver(otlp_host, otlp_port, self._submit_otlp)
                    self._otlp.start()
        except BaseException:
            self.stop()
            raise
        self._started_at = time.time()
        self._log_exposure()
        return self

    def _start_udp(self, address: str) -> None:
        assert self.pipeline is not None
        udp_host, udp_port = startup.listen_address(address, 2000)
        if self.config.receiver_process and os.name == "posix":
            receiver = UdpReceiverProcess(
                udp_host, udp_port, self.pipeline.put_frame, self.config.buffer_mb * 1024 * 1024
            )
            self.pipeline.attach_receiver(receiver)
            self._udp = receiver
        else:
            self._udp = UdpReceiver(udp_host, udp_port, self.pipeline.put_datagrams)
        self._udp.start()

    def _log_exposure(self) -> None:
        """Say what another machine can reach when a listener was bound beyond loopback."""
        exposed = {
            "HTTP (X-Ray API: every stored trace; sampling; console; OTLP/HTTP)": (
                self.tcp_address
            ),
        }
        if self._udp is not None:
            exposed["UDP segments"] = self._udp.address
        if self.otlp_address is not None:
            exposed["OTLP/gRPC"] = self.otlp_address
        if self.otlp_http_address is not None:
            exposed["OTLP/HTTP"] = self.otlp_http_address
        for what, address in exposed.items():
            if not is_loopback(address[0]):
                _logger.warning(
                    "listening beyond loopback on %s: %s is reachable from other machines",
                    format_address(address),
                    what,
                )

    def _submit_otlp(self, documents: list[dict[str, Any]]) -> list[Rejected]:
        """OTLP documents are acknowledged (the gRPC reply) only after they are committed; the
        refused ones go back to the receiver, which reports them as a partial success."""
        assert self.pipeline is not None
        return self.pipeline.put_dicts(documents)

    def stop(self) -> None:
        if self._otlp is not None:
            self._otlp.stop()
            self._otlp = None
        if self._otlp_http is not None:
            self._otlp_http.stop()
            self._otlp_http = None
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._udp is not None:
            self._udp.stop()
            self._udp = None
        if self.pipeline is not None:
            self.pipeline.stop()
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._started_at = None

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def udp_address(self) -> tuple[str, int]:
        assert self._udp is not None, "collector not started"
        return self._udp.address

    @property
    def tcp_address(self) -> tuple[str, int]:
        assert self._api is not None, "collector not started"
        return self._api.address

    @property
    def otlp_address(self) -> tuple[str, int] | None:
        if self._otlp is None:
            return None
        host, _ = parse_address(self.config.otlp or "", 4317)
        return host, int(self._otlp.port)

    @property
    def otlp_http_address(self) -> tuple[str, int] | None:
        """The OTLP/HTTP listener's address (``/v1/traces`` is also on ``tcp_address``)."""
        return self._otlp_http.address if self._otlp_http is not None else None

    @property
    def endpoint_url(self) -> str:
        return "http://" + format_address(self.tcp_address)

    def listening_event(self) -> dict[str, Any]:
        """The one machine-readable startup line the CLI prints (tests parse it for ports)."""
        otlp = self.otlp_address
        otlp_http = self.otlp_http_address
        return {
            "event": "listening",
            "udp": format_address(self._udp.address) if self._udp is not None else None,
            "tcp": format_address(self.tcp_address),
            "otlp": format_address(otlp) if otlp else None,
            "otlp_http": format_address(otlp_http) if otlp_http else None,
            "db": self._store.status()["path"] if self._store is not None else None,
            "forward": self._forwarder.endpoint_url if self._forwarder is not None else None,
            "pid": os.getpid(),
        }

    # -- observation -------------------------------------------------------------------------

    def wait_for_datagrams(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` datagrams were processed and everything stored is indexed."""
        assert self.pipeline is not None
        return self.pipeline.wait_processed(count, timeout)

    def _local_counts(self) -> dict[str, int]:
        """Datagrams refused or dropped before forwarding, for PutTelemetryRecords."""
        if self.pipeline is None:
            return {}
        counters = self.pipeline.counters()
        return {"rejected": counters["rejected_total"], "spillover": counters["spillover"]}

    @property
    def forwarder(self) -> Forwarder | None:
        """The forwarder to AWS X-Ray (``flush()``, ``counters()``...), None when not
        forwarding or stopped."""
        return self._forwarder

    def status(self) -> dict[str, Any]:
        """Counters of every component (the ``GET /status`` body)."""
        ingest = self.pipeline.counters() if self.pipeline is not None else {}
        udp = self._udp
        out: dict[str, Any] = {
            "version": __version__,
            "uptime_seconds": round(time.time() - self._started_at, 3) if self._started_at else 0,
            "received": (udp.received if udp is not None else 0),
            "stored": ingest.get("accepted", 0),
            "rejected": ingest.get("rejected", {}),
            "spillover": ingest.get("spillover", 0),
            "udp": {
                "address": format_address(udp.address) if udp is not None else None,
                "datagrams_received": udp.received if udp is not None else 0,
                "bytes_received": udp.bytes_received if udp is not None else 0,
                # the receiver process (None: receiving on a thread of this process)
                "receiver_pid": getattr(udp, "pid", None),
                "receiver_restarts": getattr(udp, "restarts", 0),
                # ADOT's OTLP-over-UDP datagrams (T1S stored, T1U counted only)
                "otlp": ingest.get("otlp_udp", {}),
            },
            "ingest": ingest,
            "store": self._store.status() if self._store is not None else None,
            # API requests answered 503 because the store could not answer
            "store_unreachable": self._api.app.store_unreachable if self._api else 0,
            "otlp": self._otlp.counters() if self._otlp is not None else None,
            "otlp_http": self._otlp_http_export.counters() if self._otlp_http_export else None,
            "forwarder": self._forwarder.counters() if self._forwarder is not None else None,
            "sampling": self._sampling.statistics() if self._sampling is not None else None,
            "telemetry_records": list(self.operations.telemetry) if self.operations else [],
        }
        return out
