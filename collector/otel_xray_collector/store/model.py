"""One trace, assembled from its stored documents: the segment tree and its service graph.

Documents of a trace arrive in any order (independent subsegments before their parent,
in-progress before complete), so nothing is derived at arrival; the store re-assembles the
whole trace whenever it changes. Pure functions over decoded documents, no I/O.

Graph rules follow daemon-and-api.md §5: a node per segment ``(name, origin, account)``, a
``client`` node in front of each root segment, an edge per downstream call; a call whose id
is the ``parent_id`` of another segment links to that segment's node, any other ``aws`` /
``remote`` / traced-http call creates an inferred node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .codec import NodeKey, edge_key, node_key_text
from .stats import Stats, bucket_of


@dataclass
class Call:
    """A downstream call made by a segment: the subsegment and what it reached."""

    subsegment: dict[str, Any]
    owner: dict[str, Any]
    target: NodeKey
    inferred: dict[str, Any] | None = None  # the inferred segment when nothing traced the callee


@dataclass
class Trace:
    trace_id: str
    segments: list[dict[str, Any]]
    orphans: list[dict[str, Any]]
    calls: list[Call] = field(default_factory=list)
    node_of: dict[int, NodeKey] = field(default_factory=dict)  # id(segment) -> node key

    @property
    def inferred_segments(self) -> list[dict[str, Any]]:
        return [call.inferred for call in self.calls if call.inferred is not None]

    def root(self) -> dict[str, Any] | None:
        roots = [s for s in self.segments if not s.get("parent_id")]
        if not roots:
            return None
        return min(roots, key=lambda s: s.get("start_time", 0.0))

    def node_key(self, segment: dict[str, Any]) -> NodeKey:
        return self.node_of[id(segment)]


def is_complete(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("end_time"), (int, float)) and doc.get("in_progress") is not True


def segment_node_key(segment: dict[str, Any]) -> NodeKey:
    aws = segment.get("aws")
    account = aws.get("account_id") if isinstance(aws, dict) else None
    origin = segment.get("origin")
    return (
        str(segment.get("name")),
        origin if isinstance(origin, str) and origin else None,
        account if isinstance(account, str) and account else None,
    )


def assemble(trace_id: str, docs: list[dict[str, Any]]) -> Trace:
    """Fold independent subsegments into their parents and resolve the calls between services.

    ``docs`` are freshly decoded and owned by the caller; they are modified in place.
    """
    segments = [d for d in docs if d.get("type") != "subsegment"]
    pending = [d for d in docs if d.get("type") == "subsegment"]
    # id -> (subsegment, owning segment, the list that holds it)
    index: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for segment in segments:
        by_id[str(segment.get("id"))] = segment
        _index_children(segment, segment, index)
    progress = True
    while pending and progress:
        progress = False
        still: list[dict[str, Any]] = []
        for sub in pending:
            parent_id = sub.get("parent_id")
            if parent_id in by_id:
                owner = by_id[parent_id]
                parent: dict[str, Any] = owner
            elif parent_id in index:
                parent, owner, _ = index[parent_id]
            else:
                still.append(sub)
                continue
            progress = True
            _attach(sub, parent, owner, index)
        pending = still
    trace = Trace(trace_id, segments, pending)
    for segment in segments:
        trace.node_of[id(segment)] = segment_node_key(segment)
    _resolve_calls(trace, index)
    return trace


def _index_children(
    node: dict[str, Any],
    owner: dict[str, Any],
    index: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]],
) -> None:
    children = node.get("subsegments")
    if not isinstance(children, list):
        return
    for child in children:
        if isinstance(child, dict) and isinstance(child.get("id"), str):
            index[child["id"]] = (child, owner, children)
            _index_children(child, owner, index)


def _attach(
    sub: dict[str, Any],
    parent: dict[str, Any],
    owner: dict[str, Any],
    index: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]],
) -> None:
    """Put an independent subsegment under its parent; a complete copy beats an in-progress one."""
    children = parent.get("subsegments")
    if not isinstance(children, list):
        children = []
        parent["subsegments"] = children
    existing = index.get(sub["id"])
    if existing is not None:
        old, _, holder = existing
        if is_complete(old) and not is_complete(sub):
            return
        holder[:] = [c for c in holder if c is not old]
    for key in ("type", "trace_id", "parent_id"):
        sub.pop(key, None)
    children.append(sub)
    index[sub["id"]] = (sub, owner, children)
    _index_children(sub, owner, index)


def _is_call(sub: dict[str, Any]) -> bool:
    namespace = sub.get("namespace")
    if namespace in ("aws", "remote"):
        return True
    http = sub.get("http")
    return bool(sub.get("traced")) and isinstance(http, dict) and "request" in http


def _walk_calls(node: dict[str, Any], found: list[dict[str, Any]]) -> None:
    """Collect call subsegments; a call's own children are the client's internals, not calls."""
    children = node.get("subsegments")
    if not isinstance(children, list):
        return
    for child in children:
        if not isinstance(child, dict):
            continue
        if _is_call(child):
            found.append(child)
        else:
            _walk_calls(child, found)


def _resolve_calls(
    trace: Trace, index: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]
) -> None:
    callees: dict[str, list[dict[str, Any]]] = {}
    for segment in trace.segments:
        parent_id = segment.get("parent_id")
        if isinstance(parent_id, str) and parent_id in index:
            callees.setdefault(parent_id, []).append(segment)
    seen: set[str] = set()
    for parent_id, targets in callees.items():
        sub, owner, _ = index[parent_id]
        seen.add(parent_id)
        for target in targets:
            if target is not owner:
                trace.calls.append(Call(sub, owner, trace.node_key(target)))
    for segment in trace.segments:
        found: list[dict[str, Any]] = []
        _walk_calls(segment, found)
        for sub in found:
            if sub.get("id") in seen:
                continue
            inferred = _inferred_segment(trace.trace_id, sub)
            trace.calls.append(Call(sub, segment, segment_node_key(inferred), inferred))


def _inferred_segment(trace_id: str, sub: dict[str, Any]) -> dict[str, Any]:
    name, node_type = inferred_identity(sub)
    digest = hashlib.blake2b(str(sub.get("id")).encode(), digest_size=8).hexdigest()
    doc: dict[str, Any] = {
        "id": digest,
        "name": name,
        "trace_id": trace_id,
        "parent_id": sub.get("id"),
        "start_time": sub.get("start_time"),
        "origin": node_type,
        "inferred": True,
    }
    if is_complete(sub):
        doc["end_time"] = sub["end_time"]
    else:
        doc["in_progress"] = True
    for key in ("http", "aws", "sql", "fault", "error", "throttle", "cause"):
        if key in sub:
            doc[key] = sub[key]
    return doc


def object_at(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is an object, else an empty one: SDKs send odd shapes."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def inferred_identity(sub: dict[str, Any]) -> tuple[str, str]:
    """(name, type) of the node an untraced call reached."""
    name = str(sub.get("name"))
    aws = object_at(sub, "aws")
    if sub.get("namespace") == "aws":
        table = aws.get("table_name")
        if isinstance(table, str) and table:
            return table, "AWS::DynamoDB::Table"
        queue_url = aws.get("queue_url")
        if isinstance(queue_url, str) and queue_url:
            return queue_url.rstrip("/").rsplit("/", 1)[-1], "AWS::SQS::Queue"
        bucket = aws.get("bucket_name")
        if isinstance(bucket, str) and bucket:
            return bucket, "AWS::S3::Bucket"
        return name, "AWS::" + name.replace(" ", "")
    if isinstance(sub.get("sql"), dict):
        return name, "Database::SQL"
    return name, "remote"


# -- graph contributions ------------------------------------------------------------------

CLIENT = "client"
NODE, EDGE, INFERRED_NODE = 0, 1, 2


def contributions(trace: Trace, duration: float | None) -> dict[tuple[int, int, str], Stats]:
    """Per (bucket, kind, key) statistics this trace adds to the service graph."""
    out: dict[tuple[int, int, str], Stats] = {}

    def stats_for(kind: int, key: str, when: float) -> Stats:
        slot = (bucket_of(when), kind, key)
        stats = out.get(slot)
        if stats is None:
            stats = out[slot] = Stats()
        return stats

    def record(kind: int, key: str, doc: dict[str, Any], with_duration: bool) -> None:
        start = doc.get("start_time")
        if not isinstance(start, (int, float)):
            return
        if is_complete(doc):
            end = float(doc["end_time"])
            stats_for(kind, key, end).add_request(
                doc, float(start), end, duration if with_duration else None
            )
        else:
            stats_for(kind, key, float(start)).touch(float(start), None)

    for segment in trace.segments:
        key = trace.node_key(segment)
        record(NODE, node_key_text(key), segment, True)
        if not segment.get("parent_id"):
            # The client node itself carries no statistics: it is drawn from this edge.
            record(EDGE, edge_key((key[0], CLIENT, None), key), segment, False)
    for call in trace.calls:
        source = trace.node_key(call.owner)
        if call.inferred is not None:
            record(INFERRED_NODE, node_key_text(call.target), call.inferred, True)
        record(EDGE, edge_key(source, call.target), call.subsegment, False)
    return out
