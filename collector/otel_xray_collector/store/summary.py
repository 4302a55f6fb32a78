"""Trace summaries (the GetTraceSummaries shape) and the facts filter expressions test.

Both are computed once per trace change at ingest, stored as blobs beside the trace row, so a
query reads a page of rows instead of re-assembling traces.
"""

from __future__ import annotations

from typing import Any, Literal

from .codec import NodeKey
from .facts import EdgeFacts, HttpFacts, NodeFacts, OutcomeFacts, TraceFacts
from .model import Trace, is_complete, object_at
from .stats import classify


def service_id(key: NodeKey) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": key[0], "Names": [key[0]]}
    if key[2]:
        out["AccountId"] = key[2]
    if key[1]:
        out["Type"] = key[1]
    return out


def _elapsed(doc: dict[str, Any]) -> float | None:
    if not is_complete(doc):
        return None
    start = doc.get("start_time")
    if not isinstance(start, (int, float)):
        return None
    return max(0.0, float(doc["end_time"]) - float(start))


_HTTP_REQUEST_FIELDS: tuple[
    tuple[Literal["HttpURL", "HttpMethod", "UserAgent", "ClientIp"], str], ...
] = (
    ("HttpURL", "url"),
    ("HttpMethod", "method"),
    ("UserAgent", "user_agent"),
    ("ClientIp", "client_ip"),
)


def http_fields(doc: dict[str, Any]) -> HttpFacts:
    http = doc.get("http")
    if not isinstance(http, dict):
        return {}
    request = object_at(http, "request")
    response = object_at(http, "response")
    out: HttpFacts = {}
    for api_key, key in _HTTP_REQUEST_FIELDS:
        value = request.get(key)
        if isinstance(value, str):
            out[api_key] = value
    status = response.get("status")
    if type(status) is int:
        out["HttpStatus"] = status
    return out


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    children = node.get("subsegments")
    if isinstance(children, list):
        for child in children:
            if isinstance(child, dict):
                out.extend(_walk(child))
    return out


def _annotation_value(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, (int, float)):
        return {"NumberValue": value}
    if isinstance(value, str):
        return {"StringValue": value}
    return None


def _node_fact(
    key: NodeKey, doc: dict[str, Any], flags: tuple[bool, bool, bool], root: bool, inferred: bool
) -> NodeFacts:
    fault, error, throttle = flags
    fact: NodeFacts = {
        "n": key[0],
        "t": key[1],
        "a": key[2],
        "root": root,
        "inferred": inferred,
        "fault": fault,
        "error": error,
        "throttle": throttle,
        "ok": not (fault or error or throttle),
        "rt": _elapsed(doc),
        "partial": not is_complete(doc),
    }
    http = http_fields(doc)
    if http:
        fact["http"] = http
    return fact


def _collect_annotations(
    node: dict[str, Any],
    key: NodeKey,
    into: dict[str, dict[Any, tuple[dict[str, Any], dict[NodeKey, None]]]],
) -> None:
    found = node.get("annotations")
    if isinstance(found, dict):
        for name, value in found.items():
            api_value = _annotation_value(value)
            if api_value is not None:
                marker = (type(value).__name__, value)
                entry = into.setdefault(str(name), {}).setdefault(marker, (api_value, {}))
                entry[1][key] = None
    children = node.get("subsegments")
    if isinstance(children, list):
        for child in children:
            if isinstance(child, dict):
                _collect_annotations(child, key, into)


def _time_range(node: dict[str, Any], bounds: list[float | None]) -> None:
    start = node.get("start_time")
    if isinstance(start, (int, float)) and (bounds[0] is None or start < bounds[0]):
        bounds[0] = float(start)
    end = node.get("end_time")
    if (
        isinstance(end, (int, float))
        and node.get("in_progress") is not True
        and (bounds[1] is None or end > bounds[1])
    ):
        bounds[1] = float(end)
    children = node.get("subsegments")
    if isinstance(children, list):
        for child in children:
            if isinstance(child, dict):
                _time_range(child, bounds)


def summarize(trace: Trace) -> tuple[dict[str, Any], TraceFacts]:
    """(TraceSummary without Revision, filter facts) for one assembled trace."""
    bounds: list[float | None] = [None, None]
    for doc in trace.segments:
        _time_range(doc, bounds)
    for doc in trace.orphans:
        _time_range(doc, bounds)
    start = bounds[0] if bounds[0] is not None else 0.0
    duration = max(0.0, bounds[1] - start) if bounds[1] is not None else None
    root = trace.root()
    entry = (
        root
        if root is not None
        else (
            min(trace.segments, key=lambda s: s.get("start_time", 0.0)) if trace.segments else None
        )
    )

    nodes: dict[NodeKey, None] = {}
    annotations: dict[str, dict[Any, tuple[dict[str, Any], dict[NodeKey, None]]]] = {}
    users: dict[str, dict[NodeKey, None]] = {}
    arns: dict[str, None] = {}
    instances: dict[str, None] = {}
    zones: dict[str, None] = {}
    node_facts: list[NodeFacts] = []
    partial = root is None or bool(trace.orphans)
    has_throttle = any_fault = any_error = False
    entry_flags = (False, False, False)
    for segment in trace.segments:
        key = trace.node_key(segment)
        nodes[key] = None
        flags = classify(segment)
        if segment is entry:
            entry_flags = flags
        any_fault = any_fault or flags[0]
        any_error = any_error or flags[1]
        has_throttle = has_throttle or flags[2]
        node_facts.append(_node_fact(key, segment, flags, not segment.get("parent_id"), False))
        partial = partial or not is_complete(segment)
        user = segment.get("user")
        if isinstance(user, str) and user:
            users.setdefault(user, {})[key] = None
        arn = segment.get("resource_arn")
        if isinstance(arn, str) and arn:
            arns[arn] = None
        aws = segment.get("aws")
        ec2 = aws.get("ec2") if isinstance(aws, dict) else None
        if isinstance(ec2, dict):
            if isinstance(ec2.get("instance_id"), str):
                instances[ec2["instance_id"]] = None
            if isinstance(ec2.get("availability_zone"), str):
                zones[ec2["availability_zone"]] = None
        _collect_annotations(segment, key, annotations)
    for inferred in trace.inferred_segments:
        key = (str(inferred["name"]), str(inferred["origin"]), None)
        nodes[key] = None
        flags = classify(inferred)
        any_fault = any_fault or flags[0]
        any_error = any_error or flags[1]
        has_throttle = has_throttle or flags[2]
        node_facts.append(_node_fact(key, inferred, flags, False, True))

    http = http_fields(entry) if entry is not None else {}
    summary: dict[str, Any] = {
        "Id": trace.trace_id,
        "StartTime": start,
        "HasFault": entry_flags[0],
        "HasError": entry_flags[1],
        "HasThrottle": has_throttle,
        "IsPartial": partial,
        "Http": http,
        "Annotations": {
            name: [
                {"AnnotationValue": value, "ServiceIds": [service_id(k) for k in keys]}
                for value, keys in distinct.values()
            ]
            for name, distinct in annotations.items()
        },
        "Users": [
            {"UserName": name, "ServiceIds": [service_id(k) for k in keys]}
            for name, keys in users.items()
        ],
        "ServiceIds": [service_id(k) for k in nodes],
        "ResourceARNs": [{"ARN": a} for a in arns],
        "InstanceIds": [{"Id": i} for i in instances],
        "AvailabilityZones": [{"Name": z} for z in zones],
        "FaultRootCauses": root_causes(trace, "fault", entry_flags[0]) if any_fault else [],
        "ErrorRootCauses": root_causes(trace, "error", entry_flags[1]) if any_error else [],
        "ResponseTimeRootCauses": [],
    }
    if duration is not None:
        summary["Duration"] = round(duration, 6)
    response_time = _elapsed(entry) if entry is not None else None
    if response_time is not None:
        summary["ResponseTime"] = round(response_time, 6)
    if entry is not None:
        summary["EntryPoint"] = service_id(trace.node_key(entry))

    edges: list[EdgeFacts] = [
        {"s": list(trace.node_key(c.owner)), "d": list(c.target), **_flags(c.subsegment)}
        for c in trace.calls
    ]
    edges.extend(
        {"s": [s.get("name"), "client", None], "d": list(trace.node_key(s)), **_flags(s)}
        for s in trace.segments
        if not s.get("parent_id")
    )
    facts: TraceFacts = {
        "fault": entry_flags[0],
        "error": entry_flags[1],
        "throttle": has_throttle,
        "ok": not any(entry_flags) and not has_throttle,
        "rt": response_time,
        "duration": duration,
        "partial": partial,
        "inferred": bool(trace.inferred_segments),
        "http": http,
        "name": entry.get("name") if entry is not None else None,
        "nodes": node_facts,
        "edges": edges,
    }
    # optional facts only when present: keeps the stored blob small for plain traces
    if users:
        facts["users"] = list(users)
    if annotations:
        facts["ann"] = {
            name: [v[0][next(iter(v[0]))] for v in distinct.values()]
            for name, distinct in annotations.items()
        }
    if zones:
        facts["az"] = list(zones)
    if instances:
        facts["iid"] = list(instances)
    if arns:
        facts["arn"] = list(arns)
    return summary, facts


def _flags(doc: dict[str, Any]) -> OutcomeFacts:
    fault, error, throttle = classify(doc)
    return {
        "fault": fault,
        "error": error,
        "throttle": throttle,
        "ok": not (fault or error or throttle),
        "rt": _elapsed(doc),
    }


def root_causes(trace: Trace, flag: str, client_impacting: bool) -> list[dict[str, Any]]:
    """Services where a fault (or error) starts: flagged nodes none of whose calls are flagged."""
    position = 0 if flag == "fault" else 1
    flagged_calls: dict[int, bool] = {}
    for call in trace.calls:
        if classify(call.subsegment)[position]:
            flagged_calls[id(call.owner)] = True
    causes: list[dict[str, Any]] = []
    for segment in trace.segments:
        if not classify(segment)[position] or id(segment) in flagged_calls:
            continue
        causes.append(_cause_service(trace.node_key(segment), segment, False))
    for call in trace.calls:
        if call.inferred is not None and classify(call.inferred)[position]:
            causes.append(_cause_service(call.target, call.inferred, True))
    if not causes:
        return []
    return [{"Services": causes, "ClientImpacting": client_impacting}]


def _cause_service(key: NodeKey, doc: dict[str, Any], inferred: bool) -> dict[str, Any]:
    exceptions: list[dict[str, Any]] = []
    for item in _walk(doc):
        cause = item.get("cause")
        if isinstance(cause, dict) and isinstance(cause.get("exceptions"), list):
            for exc in cause["exceptions"][:5]:
                if isinstance(exc, dict):
                    found = {"Name": str(exc.get("type") or "Exception")}
                    if isinstance(exc.get("message"), str):
                        found["Message"] = exc["message"]
                    exceptions.append(found)
    service = service_id(key)
    service["Inferred"] = inferred
    service["EntityPath"] = [{"Name": key[0], "Exceptions": exceptions[:5], "Remote": inferred}]
    return service
