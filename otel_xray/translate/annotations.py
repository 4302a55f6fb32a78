"""What is left of the attributes after the blocks: annotations (indexed) and metadata.

Attributes are metadata unless asked for as annotations, by ``indexed_attributes``, by
``index_all_attributes`` or by the span's own ``aws.xray.annotations`` list (what
``otel_xray.put_annotation`` writes). ``aws.xray.metadata.<namespace>`` attributes hold a JSON
object for that metadata namespace (what ``otel_xray.put_metadata`` writes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from otel_xray.attributes import ANNOTATIONS_ATTRIBUTE, METADATA_ATTRIBUTE_PREFIX
from otel_xray.translate.names import annotation_key
from otel_xray.translate.options import TranslateOptions

DEFAULT_NAMESPACE = "default"
MAX_ANNOTATION_STRING = 1000  # the schema's limit for an annotation value

_SCALARS = (str, bool, int, float)


def is_annotation_value(value: Any) -> bool:
    return isinstance(value, _SCALARS)


def annotation_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_ANNOTATION_STRING:
        return value[:MAX_ANNOTATION_STRING]
    return value


def metadata_value(value: Any) -> Any:
    """JSON-ready: OTel sequences arrive as tuples, bytes as bytes."""
    if isinstance(value, tuple):
        return [metadata_value(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def has_metadata_namespaces(keys: Iterable[str]) -> bool:
    """Whether any key is an ``aws.xray.metadata.<ns>`` attribute (cacheable per key layout)."""
    return any(key.startswith(METADATA_ATTRIBUTE_PREFIX) for key in keys)


def _needs_conversion(attrs: Mapping[str, Any]) -> bool:
    types = set(map(type, attrs.values()))
    return tuple in types or bytes in types or bytearray in types


def resource_annotations_and_metadata(
    prefixed: Mapping[str, Any], options: TranslateOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resource attributes (keys already ``otel.resource.<key>``) split for segments."""
    annotations: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    indexed = options.indexed_attributes
    for key, value in prefixed.items():
        if (options.index_all_attributes or key in indexed) and is_annotation_value(value):
            annotations[annotation_key(key, options.allow_dot)] = annotation_value(value)
        else:
            metadata[key] = metadata_value(value)
    return annotations, metadata


def _put_namespace(metadata: dict[str, dict[str, Any]], key: str, raw: str) -> None:
    namespace = key[len(METADATA_ATTRIBUTE_PREFIX) :]
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    else:
        if parsed is None:
            metadata[namespace] = {}
            return
    if not isinstance(parsed, dict) or not namespace:
        metadata.setdefault(DEFAULT_NAMESPACE, {})[key] = raw
    elif namespace.lower() == DEFAULT_NAMESPACE:
        metadata.setdefault(DEFAULT_NAMESPACE, {}).update(parsed)
    else:
        metadata[namespace] = parsed


def build_annotations_and_metadata(
    attrs: dict[str, Any],
    original: Mapping[str, Any],
    options: TranslateOptions,
    resource_annotations: Mapping[str, Any] | None,
    resource_metadata: Mapping[str, Any] | None,
    namespaces: bool = True,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Consume the rest of ``attrs``. Resource parts are given for segments only;
    ``namespaces`` false promises that no key is an ``aws.xray.metadata.*`` attribute.

    Names in ``indexed_attributes`` that a block consumed (``aws.operation``, ``http.method``,
    ...) are put back first, so asking for one as an annotation always works. An indexed
    attribute whose value is not a scalar (a list, say) stays in metadata rather than vanishing.
    """
    indexed = options.indexed_attributes
    if indexed:
        for name in indexed:
            if name not in attrs and name in original and name != "enduser.id":
                attrs[name] = original[name]
    listed = attrs.pop(ANNOTATIONS_ATTRIBUTE, None)
    if isinstance(listed, (tuple, list)):
        extra = [name for name in listed if isinstance(name, str)]
        if extra:
            indexed = indexed.union(extra)
    elif listed is not None:
        attrs[ANNOTATIONS_ATTRIBUTE] = listed

    allow_dot = options.allow_dot
    index_all = options.index_all_attributes
    annotations: dict[str, Any] = dict(resource_annotations) if resource_annotations else {}
    default: dict[str, Any] = dict(resource_metadata) if resource_metadata else {}
    if not (indexed or index_all or namespaces or _needs_conversion(attrs)):
        # The common case: everything is plain metadata; let dict.update do the copying.
        default.update(attrs)
        return annotations or None, ({DEFAULT_NAMESPACE: default} if default else None)
    metadata: dict[str, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(METADATA_ATTRIBUTE_PREFIX) and isinstance(value, str):
            _put_namespace(metadata, key, value)
        elif (index_all or key in indexed) and isinstance(value, _SCALARS):
            annotations[annotation_key(key, allow_dot)] = annotation_value(value)
        elif type(value) is tuple or type(value) is bytes:
            default[key] = metadata_value(value)
        else:
            default[key] = value
    if default:
        existing = metadata.get(DEFAULT_NAMESPACE)
        if existing:
            default.update(existing)
        metadata[DEFAULT_NAMESPACE] = default
    return annotations or None, metadata or None
