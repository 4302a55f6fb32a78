"""Real HTTP(S) servers on 127.0.0.1 standing in for IMDS, ECS task metadata and the Kubernetes API.

Each server records the requests it saw (method, path, headers) so tests can say what the
detector asked, and answers from plain dicts the test fills in.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


Reply = tuple[int, Any]  # (status, body: dict -> JSON, str -> text)
Route = Callable[[SeenRequest], Reply | None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        seen = SeenRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        with self.server.lock:
            self.server.seen.append(seen)
        reply = self.server.route(seen)
        if reply is None:  # stay silent: accept, read, never answer (until released)
            self.server.release.wait(30)
            return
        status, body = reply
        payload = (json.dumps(body) if isinstance(body, dict) else str(body)).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if isinstance(body, dict) else "text/plain"
        )
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = _handle  # noqa: N815 - stdlib naming


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.seen: list[SeenRequest] = []
        self.lock = threading.Lock()
        self.release = threading.Event()


class RunningServer:
    """A started server; ``url`` is its base URL. Close it with ``close()``."""

    def __init__(self, route: Route, tls: ssl.SSLContext | None = None) -> None:
        self._server = _Server(route)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        host, port = self._server.server_address[:2]
        self.port = int(port)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def seen(self) -> list[SeenRequest]:
        with self._server.lock:
            return list(self._server.seen)

    def close(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class RefusedPort:
    """A TCP port on 127.0.0.1 that is bound but not listening: connections are refused.

    Holding the bound socket for the test's duration means nobody else can take the port.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.https_url = f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------------- IMDS

IDENTITY_DOCUMENT = {
    "accountId": "123456789012",
    "architecture": "x86_64",
    "availabilityZone": "us-west-2b",
    "imageId": "ami-5fb8c835",
    "instanceId": "i-1234567890abcdef0",
    "instanceType": "t2.micro",
    "pendingTime": "2016-11-19T16:32:11Z",
    "privateIp": "10.158.112.84",
    "region": "us-west-2",
    "version": "2017-09-30",
}
HOSTNAME = "ip-10-158-112-84.us-west-2.compute.internal"
IMDS_TOKEN = "AQAEAFakeTokenForTests=="


@dataclass
class ImdsBehaviour:
    """How the fake IMDS answers: v2 required (default), v1 only, or silent on PUT /token."""

    token_status: int = 200  # 403/404/405 = refuses tokens (IMDSv1-only service)
    token_silent: bool = False  # accept PUT /token but never answer (hop-limit symptom)
    require_token: bool = True  # 401 on metadata GETs without the right token
    hostname_status: int = 200
    identity: dict[str, Any] = field(default_factory=lambda: dict(IDENTITY_DOCUMENT))


def imds_route(behaviour: ImdsBehaviour) -> Route:
    def route(req: SeenRequest) -> Reply | None:
        if req.path == "/latest/api/token":
            if req.method != "PUT":
                return 405, "method not allowed"
            if behaviour.token_silent:
                return None
            if behaviour.token_status != 200:
                return behaviour.token_status, "no tokens here"
            if "x-aws-ec2-metadata-token-ttl-seconds" not in req.headers:
                return 400, "missing ttl"
            return 200, IMDS_TOKEN
        if req.method != "GET":
            return 405, "method not allowed"
        if behaviour.require_token and req.headers.get("x-aws-ec2-metadata-token") != IMDS_TOKEN:
            return 401, "unauthorized"
        if req.path == "/latest/dynamic/instance-identity/document":
            return 200, behaviour.identity
        if req.path == "/latest/meta-data/hostname":
            return behaviour.hostname_status, HOSTNAME if behaviour.hostname_status == 200 else "x"
        return 404, "not found"

    return route


# --------------------------------------------------------------------------- ECS

ECS_DOCKER_ID = "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66"
ECS_TASK_ARN = "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c"
ECS_CONTAINER_ARN = (
    "arn:aws:ecs:us-west-2:111122223333:container/0206b271-b33f-47ab-86c6-a0ba208a70a9"
)


def ecs_container_document(with_docker_id: bool = True, awslogs: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "Name": "curl",
        "DockerName": "ecs-curltest-24-curl-cca48e8dcadd97805600",
        "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
        "ImageID": "sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553",
        "Labels": {"com.amazonaws.ecs.cluster": "default"},
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "Type": "NORMAL",
        "ContainerARN": ECS_CONTAINER_ARN,
        "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.2.106"]}],
    }
    if with_docker_id:
        document["DockerId"] = ECS_DOCKER_ID
    if awslogs:
        document["LogDriver"] = "awslogs"
        document["LogOptions"] = {
            "awslogs-create-group": "true",
            "awslogs-group": "/ecs/metadata",
            "awslogs-region": "us-west-2",
            "awslogs-stream": "ecs/curl/8f03e41243824aea923aca126495f665",
        }
    return document


def ecs_task_document(launch_type: str = "EC2", cluster: str = "default") -> dict[str, Any]:
    return {
        "Cluster": cluster,
        "TaskARN": ECS_TASK_ARN,
        "Family": "curltest",
        "Revision": "26",
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "LaunchType": launch_type,
        "AvailabilityZone": "us-west-2d",
        "Containers": [],
    }


def ecs_route(container: dict[str, Any], task: dict[str, Any], prefix: str = "/v4/abc") -> Route:
    def route(req: SeenRequest) -> Reply | None:
        if req.method == "GET" and req.path == prefix:
            return 200, container
        if req.method == "GET" and req.path == f"{prefix}/task":
            return 200, task
        return 404, "not found"

    return route


# --------------------------------------------------------------------------- Kubernetes API


@dataclass
class TlsMaterial:
    ca_pem: bytes
    server_context: ssl.SSLContext


def make_tls(tmp_dir: Path, name: str = "test") -> TlsMaterial:
    """A fresh CA and a server certificate for IP 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} cluster CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = tmp_dir / f"{name}-server.crt"
    key_file = tmp_dir / f"{name}-server.key"
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return TlsMaterial(ca_cert.public_bytes(serialization.Encoding.PEM), context)


def service_account_token(issuer: str) -> str:
    """A JWT-shaped token with the given issuer (unsigned: detectors only read the claims)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "RS256", "kid": "test"}).encode())
    claims = b64(json.dumps({"iss": issuer, "sub": "system:serviceaccount:shop:default"}).encode())
    return f"{header}.{claims}.{b64(b'signature')}"


PLAIN_ISSUER = "https://kubernetes.default.svc.cluster.local"
EKS_ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"


def k8s_route(
    config_maps: dict[tuple[str, str], dict[str, Any]], *, token: str, forbid: bool
) -> Route:
    """Config maps by (namespace, name); 401 without the bearer token; 403 for all if forbid."""

    def route(req: SeenRequest) -> Reply | None:
        if req.headers.get("authorization") != f"Bearer {token}":
            return 401, {"kind": "Status", "status": "Failure", "code": 401}
        if forbid:
            return 403, {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}
        parts = req.path.strip("/").split("/")
        if (
            len(parts) == 6
            and parts[:3] == ["api", "v1", "namespaces"]
            and parts[4] == "configmaps"
        ):
            found = config_maps.get((parts[3], parts[5]))
            if found is not None:
                return 200, found
        return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}

    return route


def config_map(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }
