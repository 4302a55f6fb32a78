"""Repository folder of the otel-xray-collector distribution (a package only so tests get unique module names)."""
