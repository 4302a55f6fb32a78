"""The classic two-service scenario, as a context manager the demo and the tests share.

It starts, all on 127.0.0.1: the collector (embedded default: SQLite under the work dir), moto's
server standing in for DynamoDB, and the services back and front, each under
``OTEL_PYTHON_DISTRO=awsxray opentelemetry-instrument`` with no tracing code of their own. It
stops everything it started, child processes included, whatever happens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "sampling-rules.json"
ITEMS = ("apple", "pear", "plum", "apple", "pear", "kiwi")  # kiwi is unknown: a 404 from back
TABLE = "orders"
REGION = "us-east-1"
#: Set in every process the scenario starts, so a test can prove none is left behind.
RUN_MARKER = "OTEL_XRAY_DEMO_WORKDIR"


def _bin(name: str) -> str:
    """A console script installed next to the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; run `make demo` (it installs everything)")
    return found


def _port_is_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class DriveResult:
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Scenario:
    """front -> back (x3), front -> SQLite, front -> DynamoDB (moto), spans -> the collector."""

    def __init__(
        self, workdir: Path, *, prefer_default_ports: bool = True, log: TextIO | None = None
    ) -> None:
        self.workdir = workdir
        self.prefer_default_ports = prefer_default_ports
        self.log = log or sys.stderr
        self.collector: subprocess.Popen[bytes] | None = None
        self.addresses: dict[str, str] = {}
        self.services: dict[str, Service] = {}
        self._moto: Any = None
        self.moto_url = ""
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Scenario:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        self._start_collector()
        self._start_moto()
        self.services["back"] = self._start_service("back")
        self.services["front"] = self._start_service(
            "front",
            BACK_URL=self.services["back"].url,
            ORDERS_TABLE=TABLE,
        )

    def stop(self) -> None:
        # A second Ctrl-C while stopping must not abandon the processes still to be stopped.
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
        try:
            self._stop_all()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)

    def _stop_all(self) -> None:
        for name in ("front", "back"):
            service = self.services.pop(name, None)
            if service is not None:
                _stop_process(service.process)
        if self.collector is not None:
            _stop_process(self.collector)
            self.collector = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def point_front_at(self, back_url: str) -> None:
        """Restart front calling ``back_url``. With a host name that does not resolve, its calls
        fail as when a downstream's DNS record is gone ("Name or service not known")."""
        _stop_process(self.services.pop("front").process)
        self.services["front"] = self._start_service(
            "front",
            BACK_URL=back_url,
            ORDERS_TABLE=TABLE,
        )

    def stop_back(self) -> None:
        """Take the downstream away, as when its host dies: front's calls get connection refused."""
        service = self.services.pop("back")
        _stop_process(service.process)

    # -- parts -------------------------------------------------------------------------------
    def _start_collector(self) -> None:
        port = 2000 if self.prefer_default_ports and _port_is_free(2000) else 0
        db = self.workdir / "xray.db"
        command = [
            _bin("otel-xray-collector"),
            "--udp",
            f"127.0.0.1:{port}",
            "--tcp",
            f"127.0.0.1:{port}",
            "--otlp",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--db",
            str(db),
            "--sampling-rules",
            str(RULES_FILE),
        ]
        with (self.workdir / "collector.log").open("wb") as log_file:
            self.collector = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
                env={**os.environ, RUN_MARKER: str(self.workdir)},
            )
        assert self.collector.stdout is not None
        line = self.collector.stdout.readline()  # the collector's one machine-readable line
        if not line:
            raise RuntimeError(f"the collector did not start; see {self.workdir / 'collector.log'}")
        event = json.loads(line)
        self.addresses = {key: event[key] for key in ("udp", "tcp", "otlp") if key in event}

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "item", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "item", "AttributeType": "S"}],
        )

    def _service_env(self, name: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
        env.update(
            PORT=str(port),
            **{RUN_MARKER: str(self.workdir)},
            PYTHONUNBUFFERED="1",
            # The whole tracing setup: the distro, a service name, where the daemon is, and the
            # sampling rules file that drops health checks.
            OTEL_PYTHON_DISTRO="awsxray",
            OTEL_SERVICE_NAME=name,
            AWS_XRAY_DAEMON_ADDRESS=f"udp:{self.addresses['udp']} tcp:{self.addresses['tcp']}",
            OTEL_TRACES_SAMPLER="awsxray_local",
            OTEL_TRACES_SAMPLER_ARG=str(RULES_FILE),
            OTEL_BSP_SCHEDULE_DELAY="200",
            # boto3 against moto, with throwaway credentials.
            AWS_ENDPOINT_URL_DYNAMODB=self.moto_url,
            AWS_ACCESS_KEY_ID="demo",
            AWS_SECRET_ACCESS_KEY="demo",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            # No EC2 metadata probe (169.254.169.254): everything stays on loopback.
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env

    def _start_service(self, name: str, **extra_env: str) -> Service:
        # The port is picked here and bound by the service moments later: when another process
        # took it in between, the service exits ("Address already in use") and starts again on
        # another port.
        attempts = 5
        for attempt in range(1, attempts + 1):
            port = _free_tcp_port()
            env = self._service_env(name, port)
            env.update(extra_env)
            log_path = self.workdir / f"{name}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [_bin("opentelemetry-instrument"), sys.executable, str(HERE / f"{name}.py")],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            service = Service(name, port, process, log_path)
            try:
                _wait_until_serving(service)
                return service
            except ServiceExited:
                _stop_process(process)
                port_taken = "Address already in use" in log_path.read_text(errors="replace")
                if attempt == attempts or not port_taken:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- traffic -----------------------------------------------------------------------------
    def drive(
        self,
        count: int,
        *,
        label: str = "traffic",
        progress: Callable[[str, int, int, DriveResult], None] | None = None,
    ) -> DriveResult:
        """``count`` orders on front, each preceded by a health check (which sampling drops)."""
        front = self.services["front"].url
        result = DriveResult()
        for index in range(count):
            _get(f"{front}/healthcheck")
            status = _get(f"{front}/order/{ITEMS[index % len(ITEMS)]}")
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status < 500:
                result.ok += 1
            else:
                result.failed += 1
            if progress is not None:
                progress(label, index + 1, count, result)
        return result

    # -- reading back through the collector's X-Ray API --------------------------------------
    def xray(self) -> Any:
        import boto3

        return boto3.client(
            "xray",
            endpoint_url=f"http://{self.addresses['tcp']}",
            region_name=REGION,
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
        )

    def wait_for_traces(
        self, minimum: int, *, filter_expression: str | None = None, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Poll GetTraceSummaries until ``minimum`` traces are in (spans arrive asynchronously)."""
        client = self.xray()
        deadline = time.monotonic() + timeout
        while True:
            summaries = list(self.trace_summaries(client, filter_expression))
            if len(summaries) >= minimum or time.monotonic() > deadline:
                return summaries
            time.sleep(0.2)

    def trace_summaries(
        self, client: Any = None, filter_expression: str | None = None
    ) -> Iterator[dict[str, Any]]:
        client = client or self.xray()
        kwargs: dict[str, Any] = {"StartTime": self.started_at - 60, "EndTime": time.time() + 60}
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        for page in client.get_paginator("get_trace_summaries").paginate(**kwargs):
            yield from page.get("TraceSummaries", [])

    def service_graph(self) -> dict[str, Any]:
        client = self.xray()
        return dict(
            client.get_service_graph(StartTime=self.started_at - 60, EndTime=time.time() + 60)
        )


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


class ServiceExited(RuntimeError):
    """A service process ended before it served."""


def _wait_until_serving(service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise ServiceExited(
                f"{service.name} exited with {service.process.returncode}; see {service.log_path}"
            )
        try:
            with urllib.request.urlopen(f"{service.url}/healthcheck", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"{service.name} did not start within {timeout}s; see {service.log_path}")


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGINT first so the SDK's atexit hook flushes the last spans, then insist."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if process.stdout is not None:
        process.stdout.close()
    # Reap anything the process left in its group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
