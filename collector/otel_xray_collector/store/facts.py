"""The facts filter expressions test, as the store writes them (``summary.py``) and the API's
filter reads them (``api/filter.py``): one declaration, checked by mypy on the writing side and
by ``collector/tests/test_layering.py`` against every key the filter names.

They are stored as one JSON blob per trace (computed once per trace change at ingest, read for
every trace a GetTraceSummaries page examines), so the keys stay short; each is spelled out
here. Optional keys are present only when the trace has such values.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, get_type_hints


class HttpFacts(TypedDict, total=False):
    """The entry segment's (or one node's) HTTP request, in the X-Ray API's names."""

    HttpURL: str
    HttpMethod: str
    UserAgent: str
    ClientIp: str
    HttpStatus: int


class OutcomeFacts(TypedDict):
    """How a trace, a node or a call ended."""

    fault: bool
    error: bool
    throttle: bool
    #: none of fault, error, throttle
    ok: bool
    #: response time in seconds (end - start); None while in progress
    rt: float | None


class NodeFacts(OutcomeFacts):
    """One service (segment or inferred node) of the trace."""

    #: node name, type (origin) and account id: the service's identity
    n: str
    t: str | None
    a: str | None
    #: a segment without a parent (an entry point)
    root: bool
    inferred: bool
    partial: bool
    http: NotRequired[HttpFacts]


class EdgeFacts(OutcomeFacts):
    """One call between two nodes: source and destination as [name, type, account]."""

    s: list[Any]
    d: list[Any]


class TraceFacts(OutcomeFacts):
    """The whole trace (outcome and response time of its entry point)."""

    duration: float | None
    partial: bool
    inferred: bool
    http: HttpFacts
    name: str | None
    nodes: list[NodeFacts]
    edges: list[EdgeFacts]
    users: NotRequired[list[str]]
    #: annotations: name -> the distinct values seen
    ann: NotRequired[dict[str, list[Any]]]
    #: availability zones, EC2 instance ids, resource ARNs
    az: NotRequired[list[str]]
    iid: NotRequired[list[str]]
    arn: NotRequired[list[str]]


def declared_keys(facts: type) -> frozenset[str]:
    """Every key a facts TypedDict declares (required or not, inherited included)."""
    return frozenset(get_type_hints(facts))
