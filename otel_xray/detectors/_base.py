"""What every otel-xray detector shares: a time budget, silence off-platform, no exceptions.

Detectors run once at start-up, inside application code that did not ask to wait for AWS. So a
detector gets one wall-clock budget for everything it does (``Deadline``), says nothing above
DEBUG when the platform is simply not there, and turns every failure into an empty resource,
whatever ``raise_on_error`` says: a missing metadata service must never stop an application.
"""

from __future__ import annotations

import logging
import os
import time
from abc import abstractmethod
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource, ResourceDetector

logger = logging.getLogger("otel_xray.detectors")

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = dict[str, AttributeValue]

TIMEOUT_ENV = "OTEL_XRAY_DETECTOR_TIMEOUT"
DEFAULT_TIMEOUT = 1.0
_MAX_TIMEOUT = 30.0


class DeadlineExceeded(Exception):
    """The detector's time budget ran out before it could finish."""


class Deadline:
    """One wall-clock budget shared by all the I/O a detector does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def timeout(self, cap: float) -> float:
        """A per-operation timeout no longer than ``cap`` nor than what is left of the budget."""
        left = self.remaining()
        if left <= 0.0:
            raise DeadlineExceeded(f"time budget of {self.seconds:g}s used up")
        return min(cap, left)


def resolve_timeout(explicit: float | None) -> float:
    """The budget: constructor argument, else ``OTEL_XRAY_DETECTOR_TIMEOUT``, else 1 second."""
    if explicit is not None:
        value = float(explicit)
    else:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT
        try:
            value = float(raw)
        except ValueError:
            logger.debug("ignoring %s=%r: not a number of seconds", TIMEOUT_ENV, raw)
            return DEFAULT_TIMEOUT
    if not value > 0.0:
        return DEFAULT_TIMEOUT
    return min(value, _MAX_TIMEOUT)


def env_or(explicit: str | None, name: str, default: str) -> str:
    """Constructor argument first (tests, code), then the environment, then the default."""
    if explicit is not None:
        return explicit
    value = os.environ.get(name, "").strip()
    return value or default


def read_text(path: str, limit: int = 1 << 20) -> str | None:
    """A small local file's text, or None when it is absent or unreadable (both mean "not here")."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


class AwsResourceDetector(ResourceDetector):
    """Base class: subclasses implement ``_detect`` and may raise; ``detect`` never does."""

    def __init__(self, raise_on_error: bool = False, *, timeout: float | None = None) -> None:
        # raise_on_error is accepted for interface compatibility only: see the module docstring.
        super().__init__(raise_on_error=raise_on_error)
        self._timeout = timeout

    def detect(self) -> Resource:
        deadline = Deadline(resolve_timeout(self._timeout))
        name = type(self).__name__
        try:
            attributes = self._detect(deadline)
        except Exception as exc:  # noqa: BLE001 - a detector must never break start-up
            logger.debug("%s: nothing detected (%s: %s)", name, type(exc).__name__, exc)
            return Resource.get_empty()
        spent = deadline.seconds - deadline.remaining()
        if not attributes:
            logger.debug("%s: not on this platform (%.3fs)", name, spent)
            return Resource.get_empty()
        logger.debug("%s: detected %d attributes in %.3fs", name, len(attributes), spent)
        return Resource(attributes)

    @abstractmethod
    def _detect(self, deadline: Deadline) -> Attributes:
        """Attributes for this platform, or an empty dict when not running on it."""
