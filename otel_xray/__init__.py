"""otel-xray: OpenTelemetry for AWS X-Ray users.

Spans become X-Ray segment documents sent to the X-Ray daemon over UDP, with the
``X-Amzn-Trace-Id`` propagator, X-Ray sampling rules and AWS resource detectors. Names are
imported lazily so that loading one entry point (say the propagator) does not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "XRayUdpSpanExporter": "otel_xray.exporter",
    "XRaySpanProcessor": "otel_xray.processor",
    "XRayPropagator": "otel_xray.propagator",
    "XRayLambdaPropagator": "otel_xray.propagator",
    "XRayLocalSampler": "otel_xray.sampling",
    "XRayRemoteSampler": "otel_xray.sampling",
    "configure": "otel_xray.provider",
    "put_annotation": "otel_xray.recorder",
    "put_metadata": "otel_xray.recorder",
    "set_user": "otel_xray.recorder",
    "TranslateOptions": "otel_xray.translate",
    "span_to_documents": "otel_xray.translate",
    "DaemonAddress": "otel_xray.wire",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # names for type checkers and IDEs; imported lazily at run time below
    from otel_xray.exporter import XRayUdpSpanExporter  # noqa: F401
    from otel_xray.processor import XRaySpanProcessor  # noqa: F401
    from otel_xray.propagator import XRayLambdaPropagator, XRayPropagator  # noqa: F401
    from otel_xray.provider import configure  # noqa: F401
    from otel_xray.recorder import put_annotation, put_metadata, set_user  # noqa: F401
    from otel_xray.sampling import XRayLocalSampler, XRayRemoteSampler  # noqa: F401
    from otel_xray.translate import TranslateOptions, span_to_documents  # noqa: F401
    from otel_xray.wire import DaemonAddress  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_xray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
