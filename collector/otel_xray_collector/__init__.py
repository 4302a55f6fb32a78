"""otel-xray-collector: a daemon-compatible X-Ray collector with a local console."""

__version__ = "0.1.0"
