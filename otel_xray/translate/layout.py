"""Plans per attribute-key layout: the part of a translation that depends only on which keys a
span has, worked out once and reused.

An instrumentation sets the same attribute keys, in the same order, on every span of one kind
it makes, so which blocks can apply, which keys can name a subsegment and which keys are left
over for metadata repeat span after span. Caching them per layout (the tuple of keys) leaves
the per-span path with value reads only.

A few keys are used up or not depending on their value: an address key that holds a hostname
stays in metadata, the ``db.*`` keys feed a block only for an SQL system, AWS SDK keys only on
AWS SDK spans, ``http.status_text`` only when it is the failure's explanation. The translator
reports those per-span facts as a bit mask (``Consumed``) and the leftover keys are cached per
mask, so even the value-dependent cases cost one small-int dict lookup after the first span.
"""

from __future__ import annotations

from otel_xray.attributes import ANNOTATIONS_ATTRIBUTE, SAMPLING_RULE_ATTRIBUTE, USER_ATTRIBUTE
from otel_xray.translate.annotations import has_metadata_namespaces
from otel_xray.translate.aws import consumed_aws_keys, has_aws_keys, has_sdk_only_keys
from otel_xray.translate.http import HttpPlan, http_keys, ip_only_keys
from otel_xray.translate.names import name_candidates
from otel_xray.translate.sql import consumed_sql_keys, has_db_system

_LAYOUT_CACHE_LIMIT = 1024


class Consumed:
    """Bits of the per-span mask that says which value-dependent keys a span used up."""

    AWS = 1  # the resource is on AWS, so the aws block took the span's AWS keys
    AWS_SDK = 2  # ... and the span is an AWS SDK call, so it took the SDK-only keys too
    SQL = 4  # the db.* keys made an sql block
    STATUS_TEXT = 8  # http.status_text became the cause
    IP_FIRST = 16  # first bit for the address keys (Layout.http_ip_keys) holding an IP


class Layout:
    """What the translator needs to know about one tuple of attribute keys.

    ``http`` is the key set the http block reads (None: not an HTTP span). ``http_ip_keys``
    are those of its keys taken only when they hold an IP address, each with its bit in an
    ``http_plans`` index; ``http_by_ip`` is the key set the block takes for each combination of
    them (indexed by the ``Consumed.IP_FIRST`` bits), and ``http_plans[2 * ip_bits + is_server]``
    the block's plan for each set and span kind.
    ``namespaces``: some key is an ``aws.xray.metadata.<ns>`` attribute. ``plain``: no key asks
    for annotations or metadata namespaces, so, unless the options index attributes, the
    leftovers are plain metadata.
    """

    __slots__ = (
        "keys",
        "marked",
        "aws_sdk_possible",
        "local_service",
        "name_candidates",
        "http",
        "http_ip_keys",
        "http_by_ip",
        "http_plans",
        "aws",
        "aws_sdk_keys",
        "sql",
        "user",
        "sampling_rule",
        "remote_service",
        "namespaces",
        "plain",
        "leftovers",
    )

    def __init__(self, keys: tuple[str, ...]) -> None:
        present = frozenset(keys)
        self.keys = keys
        self.marked = "aws.span.kind" in present
        self.aws_sdk_possible = "rpc.system" in present
        self.local_service = "aws.local.service" in present
        self.name_candidates = name_candidates(present)
        self.http = http_keys(present)
        self.http_ip_keys: tuple[tuple[str, int], ...] = ()
        self.http_by_ip: tuple[frozenset[str], ...] = ()
        self.http_plans: tuple[HttpPlan, ...] = ()
        if self.http is not None:
            ip_keys = ip_only_keys(self.http)
            # (key, its bit in an http_plans index: bit 0 there is "server span").
            self.http_ip_keys = tuple((key, 2 << bit) for bit, key in enumerate(ip_keys))
            self.http_by_ip = tuple(
                self.http.difference(
                    key for bit, key in enumerate(ip_keys) if not mask & (1 << bit)
                )
                for mask in range(1 << len(ip_keys))
            )
            self.http_plans = tuple(
                HttpPlan(http, is_server, present)
                for http in self.http_by_ip
                for is_server in (False, True)
            )
        self.aws = has_aws_keys(present)
        self.aws_sdk_keys = has_sdk_only_keys(present)
        self.sql = has_db_system(present)
        self.user = USER_ATTRIBUTE in present
        self.sampling_rule = SAMPLING_RULE_ATTRIBUTE in present
        self.remote_service = "aws.remote.service" in present
        self.namespaces = has_metadata_namespaces(keys)
        self.plain = ANNOTATIONS_ATTRIBUTE not in present and not self.namespaces
        # Consumed mask -> leftover keys; read directly by the translator, filled by leftover().
        self.leftovers: dict[int, tuple[str, ...]] = {}

    def leftover(self, consumed: int) -> tuple[str, ...]:
        """The keys no block took, in span order, for the ``Consumed`` mask of one span."""
        found = self.leftovers.get(consumed)
        if found is None:
            found = self.leftovers[consumed] = self._leftover_keys(consumed)
        return found

    def _leftover_keys(self, consumed: int) -> tuple[str, ...]:
        # The rule name goes to the segment's aws.xray and never to metadata: on a
        # subsegment it is only our sampler's marker.
        taken = {USER_ATTRIBUTE, SAMPLING_RULE_ATTRIBUTE}
        if self.http is not None:
            taken.update(self.http_by_ip[consumed // Consumed.IP_FIRST])
        if consumed & Consumed.AWS:
            taken.update(consumed_aws_keys(self.keys, bool(consumed & Consumed.AWS_SDK)))
        if consumed & Consumed.SQL:
            taken.update(consumed_sql_keys(self.keys))
        if consumed & Consumed.STATUS_TEXT:
            taken.add("http.status_text")
        return tuple(key for key in self.keys if key not in taken)


# Read directly (``LAYOUT_CACHE.get``) on the per-span path; filled through ``layout_of``.
LAYOUT_CACHE: dict[tuple[str, ...], Layout] = {}


def layout_of(keys: tuple[str, ...]) -> Layout:
    """The cached plan for ``keys`` (bounded: an unbounded variety of layouts resets it)."""
    layout = LAYOUT_CACHE.get(keys)
    if layout is None:
        layout = Layout(keys)
        if len(LAYOUT_CACHE) >= _LAYOUT_CACHE_LIMIT:
            LAYOUT_CACHE.clear()
        LAYOUT_CACHE[keys] = layout
    return layout
