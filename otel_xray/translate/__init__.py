"""Pure translation of finished OpenTelemetry spans into X-Ray segment documents.

No I/O here: the exporter (and the collector's OTLP receiver) call ``span_to_documents`` and
decide what to do with the dicts.
"""

from otel_xray.translate.options import DEFAULT_OPTIONS, TranslateOptions
from otel_xray.translate.segment import span_to_documents

__all__ = ["DEFAULT_OPTIONS", "TranslateOptions", "span_to_documents"]
