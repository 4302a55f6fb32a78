"""Text encodings of graph keys and stored blobs (stable, so aggregate rows can be found again)."""

from __future__ import annotations

from typing import Any

from otel_xray.wire import dumps, loads

NodeKey = tuple[str, str | None, str | None]  # (name, type, account id)


def node_key_text(key: NodeKey) -> str:
    return dumps(list(key)).decode()


def edge_key(source: NodeKey, target: NodeKey) -> str:
    return dumps([list(source), list(target)]).decode()


def parse_node_key(text: str) -> NodeKey:
    name, node_type, account = loads(text)
    return (name, node_type, account)


def parse_edge_key(text: str) -> tuple[NodeKey, NodeKey]:
    source, target = loads(text)
    return (source[0], source[1], source[2]), (target[0], target[1], target[2])


def encode(value: Any) -> bytes:
    return dumps(value)


def decode(blob: bytes | str) -> Any:
    return loads(blob)
