"""Repository folder of the otel-xray-collector distribution.

A package only so tests get unique module names.
"""
