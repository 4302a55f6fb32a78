"""Where the X-Ray daemon listens, and how documents are framed for it.

The daemon (and every drop-in for it: the CloudWatch agent, the OpenTelemetry Collector's
``awsxray`` receiver, ``otel-xray-collector``) takes one segment document per UDP datagram,
prefixed by a JSON header line, and serves the sampling API over HTTP on a TCP address.
``AWS_XRAY_DAEMON_ADDRESS`` names both addresses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# The transport (resolver, sockets, rate-limited logging) lives in otel_xray.transport; its
# names stay importable from here.
from otel_xray.transport import (
    ERROR_REFRESH_INTERVAL_S,
    REFRESH_INTERVAL_S,
    AddressResolver,
    Destination,
    RateLimitedLog,
    Resolve,
    Sender,
    SendOutcome,
    SocketAddress,
    Spawn,
    UdpTransport,
    numeric_destination,
    resolve_udp,
)

DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2000

#: Header line the daemon requires before each document (the Python SDK's exact bytes).
HEADER = b'{"format":"json","version":1}\n'

#: Largest UDP payload over IPv4 (65,535 - 8 UDP - 20 IP); the daemon reads 64 KiB.
MAX_DATAGRAM_BYTES = 65_507


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DaemonAddress:
    """The daemon's UDP (segments) and TCP (sampling API) endpoints."""

    udp: Endpoint
    tcp: Endpoint

    @property
    def sampling_url(self) -> str:
        """Base URL of the daemon's sampling proxy (``POST {url}/GetSamplingRules``)."""
        return f"http://{self.tcp}"

    @classmethod
    def default(cls) -> DaemonAddress:
        endpoint = Endpoint(DEFAULT_HOST, DEFAULT_PORT)
        return cls(udp=endpoint, tcp=endpoint)

    @classmethod
    def parse(cls, value: str, source: str = DAEMON_ADDRESS_ENV) -> DaemonAddress:
        """Parse every form the X-Ray SDKs accept, plus bracketed IPv6.

        ``host:port`` (both protocols), ``tcp:host:port udp:host:port`` (either order, any
        whitespace), ``[::1]:2000``. Raises ``ValueError`` naming ``source`` so a typo in the
        environment points at the variable, not at a stack trace.
        """
        text = value.strip()
        if not text:
            raise ValueError(
                f"{source} is empty; expected host:port or 'tcp:host:port udp:host:port'"
            )
        tokens = text.split()
        try:
            if len(tokens) == 1:
                endpoint = _parse_endpoint(tokens[0])
                return cls(udp=endpoint, tcp=endpoint)
            if len(tokens) == 2:
                found: dict[str, Endpoint] = {}
                for token in tokens:
                    proto, sep, rest = token.partition(":")
                    proto = proto.lower()
                    if not sep or proto not in ("tcp", "udp") or proto in found:
                        raise ValueError(f"token {token!r} is not tcp:host:port or udp:host:port")
                    found[proto] = _parse_endpoint(rest)
                return cls(udp=found["udp"], tcp=found["tcp"])
            raise ValueError("too many tokens")
        except ValueError as exc:
            raise ValueError(
                f"Invalid {source}={value!r}: {exc}. Expected host:port, [ipv6]:port or "
                "'tcp:host:port udp:host:port'"
            ) from None

    @classmethod
    def resolve(
        cls, value: str | None = None, environ: Mapping[str, str] | None = None
    ) -> DaemonAddress:
        """The explicit value, else ``AWS_XRAY_DAEMON_ADDRESS``, else the default address."""
        if value is not None:
            return cls.parse(value, source="daemon_address")
        env = os.environ if environ is None else environ
        from_env = env.get(DAEMON_ADDRESS_ENV)
        if from_env is None or not from_env.strip():
            return cls.default()
        return cls.parse(from_env)


def _parse_endpoint(text: str) -> Endpoint:
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r} is not [ipv6]:port")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r} has no port")
        if ":" in host:
            raise ValueError(f"{text!r}: write IPv6 addresses as [addr]:port")
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} has an invalid port")
    return Endpoint(host, int(port_text))


__all__ = [
    "DAEMON_ADDRESS_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ERROR_REFRESH_INTERVAL_S",
    "HEADER",
    "MAX_DATAGRAM_BYTES",
    "REFRESH_INTERVAL_S",
    "AddressResolver",
    "DaemonAddress",
    "Destination",
    "Endpoint",
    "RateLimitedLog",
    "Resolve",
    "SendOutcome",
    "Sender",
    "SocketAddress",
    "Spawn",
    "UdpTransport",
    "numeric_destination",
    "resolve_udp",
]
