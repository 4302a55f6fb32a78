"""Everything a document takes from the span's Resource, computed once per Resource.

All spans of a TracerProvider share one Resource object, so the origin, the resource half of
the ``aws`` block, ``service``, the ``otel.resource.*`` metadata and annotations and the segment
name are derived on first sight and reused; the per-span path only copies what it extends.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource

import otel_xray
from otel_xray.translate.annotations import resource_annotations_and_metadata
from otel_xray.translate.options import TranslateOptions
from otel_xray.translate.origin import (
    beanstalk_block,
    cloudwatch_logs,
    ec2_block,
    ecs_block,
    eks_block,
    is_aws,
    origin,
    service_block,
)

SDK_NAME = "otel-xray for Python"
RESOURCE_PREFIX = "otel.resource."
_CACHE_LIMIT = 64


class ResourceInfo:
    """Read-only facts about one (Resource, TranslateOptions) pair."""

    __slots__ = (
        "resource",
        "options",
        "aws",
        "origin",
        "service",
        "service_name",
        "segment_name",
        "language",
        "metadata",
        "annotations",
        "is_aws",
        "plain_options",
    )

    def __init__(self, resource: Resource, options: TranslateOptions) -> None:
        attrs: Mapping[str, Any] = resource.attributes
        self.resource = resource
        self.options = options
        # No attribute is indexed, so whatever no block takes is plain metadata.
        self.plain_options = not (options.indexed_attributes or options.index_all_attributes)
        self.is_aws = is_aws(attrs)
        self.aws: dict[str, Any] | None = None
        self.origin: str | None = None
        if self.is_aws:
            ec2, ecs, eks, beanstalk = (
                ec2_block(attrs),
                ecs_block(attrs),
                eks_block(attrs),
                beanstalk_block(attrs),
            )
            self.origin = origin(attrs, ec2, ecs, eks, beanstalk)
            block: dict[str, Any] = {}
            account = attrs.get("cloud.account.id") or attrs.get("cloud.account_id")
            if isinstance(account, str) and account:
                block["account_id"] = account
            for key, value in (
                ("ec2", ec2),
                ("ecs", ecs),
                ("eks", eks),
                ("elastic_beanstalk", beanstalk),
            ):
                if value is not None:
                    block[key] = value
            logs = cloudwatch_logs(attrs, options.log_group_names)
            if logs:
                block["cloudwatch_logs"] = logs
            block["xray"] = _xray_block(attrs, options)
            self.aws = block
        self.service = service_block(attrs)
        name = attrs.get("service.name")
        self.service_name: str | None = str(name) if name not in (None, "") else None
        # The segment name unless the span names its service (``aws.local.service``).
        self.segment_name = options.tracing_name or self.service_name
        language = attrs.get("telemetry.sdk.language")
        self.language = language if isinstance(language, str) else ""
        self.annotations, self.metadata = resource_annotations_and_metadata(
            {RESOURCE_PREFIX + key: value for key, value in attrs.items()}, options
        )


def _xray_block(attrs: Mapping[str, Any], options: TranslateOptions) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if options.sdk_from_resource:
        name = attrs.get("telemetry.sdk.name")
        language = attrs.get("telemetry.sdk.language")
        if name:
            block["sdk"] = f"{name} for {language}" if language else str(name)
        version = attrs.get("telemetry.sdk.version")
        if version:
            block["sdk_version"] = str(version)
    else:
        block["sdk"] = SDK_NAME
        block["sdk_version"] = otel_xray.__version__
    block["auto_instrumentation"] = bool(
        attrs.get("telemetry.auto.version") or attrs.get("telemetry.distro.version")
    )
    return block


_lock = threading.Lock()
_cache: dict[tuple[int, int], ResourceInfo] = {}
_last: ResourceInfo | None = None


def resource_info(resource: Resource, options: TranslateOptions) -> ResourceInfo:
    """The cached facts for ``resource``; keyed by identity, holding a reference so the id
    cannot be reused while cached."""
    global _last
    last = _last
    if last is not None and last.resource is resource and last.options is options:
        return last
    key = (id(resource), id(options))
    info = _cache.get(key)
    if info is None or info.resource is not resource or info.options is not options:
        info = ResourceInfo(resource, options)
        with _lock:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[key] = info
    _last = info
    return info
