"""The X-Ray daemon's wire format, written once for the exporter and for the collector.

Everything both halves of the project must agree on lives here and only here: the header line
before each document, the size limits, the JSON codec, the trace and segment id formats, the
grammar of a daemon (or listener) address, the sampling-rule record of ``GetSamplingRules``,
and the rules a segment document must satisfy. The exporter writes what these rules accept;
``otel-xray-collector`` imports this module to read and check it (it never keeps a copy).

Pure values and functions only: no environment, no sockets, no threads (those are
``otel_xray.config`` and ``otel_xray.transport``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

try:  # orjson is optional in the library: several times faster on segment-shaped documents.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the no-orjson test in a subprocess
    _orjson = None  # type: ignore[assignment]

# ------------------------------------------------------------------------------------------
# Framing and sizes

#: Header line the daemon requires before each document (the X-Ray SDK for Python's bytes).
HEADER = b'{"format":"json","version":1}\n'
#: The same header as SDKs that pretty-print it send it (accepted by a byte compare, too).
SPACED_HEADER = b'{"format": "json", "version": 1}\n'

#: Largest UDP payload over IPv4 (65,535 - 8 UDP - 20 IP); the daemon reads 64 KiB.
MAX_DATAGRAM_BYTES = 65_507
#: Largest document body that fits in one datagram with the header line (what the exporter
#: sends at most).
BODY_BUDGET = MAX_DATAGRAM_BYTES - len(HEADER)
#: Largest document the daemon (and the collector) accepts; PutTraceSegments' limit too.
MAX_DOCUMENT_BYTES = 64 * 1024
#: Longest segment or subsegment ``name`` X-Ray accepts, in characters.
MAX_NAME_CHARS = 200


def header_ok(header: Any) -> bool:
    """Whether a decoded header line says JSON version 1 (SDKs differ only in spacing)."""
    if not isinstance(header, dict):
        return False
    fmt = header.get("format")
    version = header.get("version")
    return isinstance(fmt, str) and fmt.lower() == "json" and type(version) is int and version == 1


# ------------------------------------------------------------------------------------------
# JSON codec: compact UTF-8, orjson when installed, the standard library otherwise

_json_compact = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
).encode

#: What each surrogate code point (U+D800-U+DFFF, which UTF-8 cannot encode) becomes.
REPLACEMENT_CHARACTER = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps_json(document: Any) -> bytes:
    """Compact strict UTF-8 JSON with the standard library (the fallback when orjson is absent
    or refuses a document); surrogates become U+FFFD, NaN/Infinity ``null``.

    A lone surrogate (a file name decoded with ``surrogateescape``, half of a pair cut by a
    careless slice) cannot be written in UTF-8, and the ``\\udcff`` escape JSON would allow is
    refused by the daemon's and the collector's decoders, so each one becomes U+FFFD.
    """
    try:
        text = _json_compact(document)
    except ValueError:  # NaN/Infinity are not JSON; the daemon would reject the whole document
        return dumps_json(_finite(document))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # With ensure_ascii=False surrogates can only sit inside string literals (keys, values,
        # default=str output alike), so replacing them in the text replaces them in the strings.
        return _SURROGATE.sub(REPLACEMENT_CHARACTER, text).encode("utf-8")


def dumps_orjson(document: Any) -> bytes:
    """orjson; :func:`dumps_json` for what orjson refuses (ints over 64 bits, lone surrogates)."""
    try:
        return _orjson.dumps(document, default=str)
    except TypeError:
        return dumps_json(document)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


#: Encode any JSON-shaped value; never fails on NaN, huge ints or lone surrogates.
dumps: Callable[[Any], bytes] = dumps_orjson if _orjson is not None else dumps_json
#: Decode JSON text or bytes; raises :data:`JSONDecodeError` (a ``ValueError``).
loads: Callable[[bytes | str], Any] = _orjson.loads if _orjson is not None else json.loads
JSONDecodeError: type[ValueError] = (
    _orjson.JSONDecodeError if _orjson is not None else json.JSONDecodeError
)
ENCODER_NAME = "orjson" if _orjson is not None else "json"

# ------------------------------------------------------------------------------------------
# Ids: a segment id is 16 hex digits; a trace id is ``1-<8 hex: epoch seconds>-<24 hex>``

HEX_DIGITS = "0123456789abcdefABCDEF"
SEGMENT_ID_FORMAT = "16 hex digits"
TRACE_ID_FORMAT = "1-<8 hex>-<24 hex>"
_TRACE_ID = re.compile(r"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}").fullmatch
_LOW_96_BITS = (1 << 96) - 1


def is_segment_id(value: Any) -> bool:
    """16 hex digits. ``str.strip`` with a character set beats a regex on this hot path."""
    return type(value) is str and len(value) == 16 and not value.strip(HEX_DIGITS)


def is_trace_id(value: Any) -> bool:
    """``1-<8 hex>-<24 hex>``."""
    return type(value) is str and _TRACE_ID(value) is not None


def format_segment_id(span_id: int) -> str:
    """The 64-bit OTel span id as a segment id."""
    return hex(span_id)[2:].zfill(16)  # = f"{:016x}", measured faster


def format_trace_id(trace_id: int) -> str:
    """The 128-bit OTel trace id as an X-Ray trace id (its high 32 bits are the epoch)."""
    # %-formatting measured faster than f-strings here; this runs for every span.
    return "1-%08x-%024x" % (trace_id >> 96, trace_id & _LOW_96_BITS)  # noqa: UP031


def parse_trace_id(text: str) -> int:
    """An X-Ray trace id as the 128-bit OTel id; 0 when ``text`` is not one (never raises)."""
    if len(text) != 35 or _TRACE_ID(text) is None:
        return 0
    return int(text[2:10] + text[11:], 16)


# ------------------------------------------------------------------------------------------
# Addresses: one grammar for where the daemon is and where the collector listens
#
#   address  := endpoint | "tcp:" endpoint " " "udp:" endpoint   (either order, any whitespace)
#   endpoint := host ":" port | "[" ipv6 "]" ":" port | ":" port | port
#
# ``:port`` and a bare ``port`` mean host 127.0.0.1. Listeners (``allow_any_port``) may also
# use port 0 (any free port) and may leave the port out when a default port is given.

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2000
ADDRESS_FORMS = "host:port, [ipv6]:port or 'tcp:host:port udp:host:port'"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(
    text: str, *, default_port: int | None = None, allow_any_port: bool = False
) -> Endpoint:
    """One ``endpoint`` of the grammar above; ``ValueError`` says what is wrong with it."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.isdigit():
        host, port_text = DEFAULT_HOST, text
    elif text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
        elif ":" in host:
            raise ValueError(f"{text!r}: write IPv6 addresses as [addr]:port")
        elif not host:
            host = DEFAULT_HOST
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r} has no port")
        return Endpoint(host, default_port)
    if not port_text.isdigit() or not (0 if allow_any_port else 1) <= int(port_text) <= 65535:
        raise ValueError(f"invalid port {port_text!r} in {text!r}")
    return Endpoint(host, int(port_text))


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
    def parse(cls, value: str, source: str = "daemon address") -> DaemonAddress:
        """Every form the X-Ray SDKs accept, plus bracketed IPv6 (the grammar above).

        Raises ``ValueError`` naming ``source`` (the variable or argument the value came from),
        so a typo points at where it was written, not at a stack trace.
        """
        text = value.strip()
        if not text:
            raise ValueError(f"{source} is empty; expected {ADDRESS_FORMS}")
        tokens = text.split()
        try:
            if len(tokens) == 1:
                endpoint = parse_endpoint(tokens[0])
                return cls(udp=endpoint, tcp=endpoint)
            if len(tokens) == 2:
                found: dict[str, Endpoint] = {}
                for token in tokens:
                    proto, sep, rest = token.partition(":")
                    proto = proto.lower()
                    if not sep or proto not in ("tcp", "udp") or proto in found:
                        raise ValueError(f"token {token!r} is not tcp:host:port or udp:host:port")
                    found[proto] = parse_endpoint(rest)
                return cls(udp=found["udp"], tcp=found["tcp"])
            raise ValueError("too many tokens")
        except ValueError as exc:
            raise ValueError(
                f"Invalid {source}={value!r}: {exc}. Expected {ADDRESS_FORMS}"
            ) from None


# ------------------------------------------------------------------------------------------
# The sampling-rule record (GetSamplingRules' SamplingRuleRecords[].SamplingRule)

DEFAULT_RULE_NAME = "Default"
DEFAULT_RULE_PRIORITY = 10000
MAX_RULE_NAME = 32
_MATCHER_KEYS = (
    ("service_name", "ServiceName"),
    ("service_type", "ServiceType"),
    ("host", "Host"),
    ("http_method", "HTTPMethod"),
    ("url_path", "URLPath"),
    ("resource_arn", "ResourceARN"),
)


@dataclass(frozen=True)
class SamplingRule:
    """One centralized sampling rule, as X-Ray's sampling API describes it.

    The library's remote sampler reads it (:meth:`parse`); the collector's sampling API writes
    it (:meth:`record`). Matchers default to ``*``; ``Version`` is always 1, and the record
    always has a non-empty ``ServiceType``, ``ResourceARN`` and ``Attributes``: the X-Ray SDKs
    silently ignore rules without them.
    """

    name: str
    priority: int
    fixed_rate: float
    reservoir_size: int
    service_name: str = "*"
    service_type: str = "*"
    host: str = "*"
    http_method: str = "*"
    url_path: str = "*"
    resource_arn: str = "*"
    attributes: tuple[tuple[str, str], ...] = ()

    def record(self, rule_arn: str | None = None) -> dict[str, Any]:
        """The ``SamplingRule`` object of a ``SamplingRuleRecords`` entry."""
        out: dict[str, Any] = {"RuleName": self.name}
        if rule_arn is not None:
            out["RuleARN"] = rule_arn
        out.update(
            {
                "ResourceARN": self.resource_arn,
                "Priority": self.priority,
                "FixedRate": self.fixed_rate,
                "ReservoirSize": self.reservoir_size,
                "ServiceName": self.service_name,
                "ServiceType": self.service_type,
                "Host": self.host,
                "HTTPMethod": self.http_method,
                "URLPath": self.url_path,
                "Version": 1,
                "Attributes": dict(self.attributes),
            }
        )
        return out

    @classmethod
    def parse(cls, record: Any) -> SamplingRule:
        """One ``SamplingRuleRecords`` entry; ``ValueError`` says why it is unusable."""
        if not isinstance(record, Mapping) or not isinstance(record.get("SamplingRule"), Mapping):
            raise ValueError("record has no SamplingRule object")
        rule = record["SamplingRule"]
        name = rule.get("RuleName")
        if not isinstance(name, str) or not name:
            raise ValueError("RuleName missing")
        version = rule.get("Version", 1)
        if version != 1:
            raise ValueError(f"rule {name}: Version {version!r} is not supported")
        priority = _number(rule, "Priority", name)
        fixed_rate = _number(rule, "FixedRate", name)
        reservoir = _number(rule, "ReservoirSize", name)
        if not 0 <= fixed_rate <= 1 or reservoir < 0:
            raise ValueError(f"rule {name}: FixedRate/ReservoirSize out of range")
        matchers = {field: _pattern(rule, key, name) for field, key in _MATCHER_KEYS}
        raw_attributes = rule.get("Attributes") or {}
        if not isinstance(raw_attributes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_attributes.items()
        ):
            raise ValueError(f"rule {name}: Attributes is not a map of strings")
        return cls(
            name=name,
            priority=int(priority),
            fixed_rate=float(fixed_rate),
            reservoir_size=int(reservoir),
            attributes=tuple(sorted(raw_attributes.items())),
            **matchers,
        )


def _number(rule: Mapping[str, Any], key: str, name: str) -> float:
    value = rule.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"rule {name}: {key} missing or not a number")
    return value


def _pattern(rule: Mapping[str, Any], key: str, name: str) -> str:
    value = rule.get(key, "*")
    if value is None or value == "":
        return "*"
    if not isinstance(value, str):
        raise ValueError(f"rule {name}: {key} is not a string")
    return value


# ------------------------------------------------------------------------------------------
# Segment document rules: one table, run two ways
#
# Each rule names a field, when it must be present, and a test of its value written once as a
# Python expression over ``v``. ``document_ok`` is all the tests compiled into one function
# (the collector's per-datagram hot path: a yes/no, no allocation); ``explain_document`` runs
# the same tests one by one to say which field is wrong. Only the fields a store relies on
# (ids, times, name, type) are checked: every other block is kept as sent, because SDKs in the
# wild put odd things there and users still expect to see those traces.

#: Why a document is refused (these double as counter names in the collector's /status).
MISSING_FIELD = "missing_field"
BAD_FIELD = "invalid_field"


class FieldRule(NamedTuple):
    key: str
    #: Python expression over the document ``d``: True when the field must be present.
    required: str
    #: Python expression over the value ``v`` (not None): True when it is acceptable.
    test: str
    #: What a valid value is, for the explanation (``"id" must be <expected>``).
    expected: str
    #: The explanation when the field is absent but required; default ``missing "<key>"``.
    missing: str = ""


_NUMBER = "(type(v) is float or type(v) is int) and v == v"
_SEGMENT_ID = "type(v) is str and len(v) == 16 and not v.strip(HEX_DIGITS)"
_NAME = "type(v) is str and 0 < len(v) <= MAX_NAME_CHARS"
_SUBSEGMENTS = "type(v) is list and _subsegments_ok(v)"

#: A document sent on its own: a segment or an independent subsegment.
DOCUMENT_RULES: tuple[FieldRule, ...] = (
    FieldRule("id", "True", _SEGMENT_ID, SEGMENT_ID_FORMAT),
    FieldRule("trace_id", "True", "type(v) is str and _TRACE_ID(v) is not None", TRACE_ID_FORMAT),
    FieldRule("name", "True", _NAME, f"a non-empty string of at most {MAX_NAME_CHARS} characters"),
    FieldRule("start_time", "True", _NUMBER, "a number (epoch seconds)"),
    FieldRule(
        "end_time",
        'd.get("in_progress") is not True',
        _NUMBER,
        "a number (epoch seconds)",
        'needs "end_time" or "in_progress": true',
    ),
    FieldRule(
        "parent_id",
        'd.get("type") == "subsegment"',
        _SEGMENT_ID,
        SEGMENT_ID_FORMAT,
        'an independent subsegment needs "parent_id"',
    ),
    FieldRule("subsegments", "False", _SUBSEGMENTS, "a list of subsegment objects"),
)

#: A subsegment embedded in its parent's ``subsegments`` (no trace or parent id of its own).
EMBEDDED_RULES: tuple[FieldRule, ...] = (
    FieldRule("id", "True", _SEGMENT_ID, SEGMENT_ID_FORMAT),
    FieldRule("name", "True", _NAME, f"a non-empty string of at most {MAX_NAME_CHARS} characters"),
    FieldRule("start_time", "True", _NUMBER, "a number (epoch seconds)"),
    FieldRule("end_time", "False", _NUMBER, "a number (epoch seconds)"),
    FieldRule("subsegments", "False", _SUBSEGMENTS, "a list of subsegment objects"),
)


def _compile_all(name: str, rules: tuple[FieldRule, ...]) -> str:
    """Source of one function that applies every rule, inlined (no call per rule)."""
    lines = [f"def {name}(d):", "    get = d.get"]
    for rule in rules:
        lines.append(f"    v = get({rule.key!r})")
        if rule.required == "True":
            lines.append(f"    if v is None or not ({rule.test}): return False")
        elif rule.required == "False":
            lines.append(f"    if v is not None and not ({rule.test}): return False")
        else:
            lines.append(f"    if v is None:\n        if {rule.required}: return False")
            lines.append(f"    elif not ({rule.test}): return False")
    lines.append("    return True")
    return "\n".join(lines)


_NAMESPACE: dict[str, Any] = {
    "HEX_DIGITS": HEX_DIGITS,
    "MAX_NAME_CHARS": MAX_NAME_CHARS,
    "_TRACE_ID": _TRACE_ID,
}
exec(_compile_all("document_ok", DOCUMENT_RULES), _NAMESPACE)  # our own table, compiled once
exec(_compile_all("_embedded_ok", EMBEDDED_RULES), _NAMESPACE)
exec(
    "def _subsegments_ok(subs):\n"
    "    for s in subs:\n"
    "        if type(s) is not dict or not _embedded_ok(s): return False\n"
    "    return True",
    _NAMESPACE,
)

#: Whether a decoded document satisfies every rule of :data:`DOCUMENT_RULES` (the fast form).
document_ok: Callable[[dict[str, Any]], bool] = _NAMESPACE["document_ok"]


def _checks(rules: tuple[FieldRule, ...]) -> list[tuple[FieldRule, Any, Any]]:
    return [
        (
            rule,
            eval(f"lambda d: {rule.required}", _NAMESPACE),
            eval(f"lambda v: {rule.test}", _NAMESPACE),
        )
        for rule in rules
    ]


_DOCUMENT_CHECKS = _checks(DOCUMENT_RULES)
_EMBEDDED_CHECKS = _checks(EMBEDDED_RULES)


def explain_document(doc: dict[str, Any]) -> tuple[str, str] | None:
    """``(reason, message)`` for the first rule ``doc`` breaks; None when it breaks none."""
    return _explain(doc, _DOCUMENT_CHECKS, "")


def _explain(
    doc: dict[str, Any], checks: list[tuple[FieldRule, Any, Any]], where: str
) -> tuple[str, str] | None:
    for rule, required, test in checks:
        value = doc.get(rule.key)
        path = f"{where}{rule.key}"
        if value is None:
            if required(doc):
                return MISSING_FIELD, rule.missing or f'missing "{path}"'
            continue
        if test(value):
            continue
        if rule.key == "subsegments" and type(value) is list:
            for index, sub in enumerate(value):
                if type(sub) is not dict:
                    return BAD_FIELD, f'"{path}[{index}]" must be an object'
                problem = _explain(sub, _EMBEDDED_CHECKS, f"{path}[{index}].")
                if problem is not None:
                    return problem
        if rule.key == "subsegments":
            return BAD_FIELD, f'"{path}" must be a list'
        return BAD_FIELD, f'"{path}" must be {rule.expected}, got {value!r:.60}'
    return None
