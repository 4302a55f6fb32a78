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
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource, ResourceDetector

from otel_xray.config import detector_timeout, explicit_or_env

logger = logging.getLogger("otel_xray.detectors")

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = dict[str, AttributeValue]

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


def read_text(path: str, limit: int = 1 << 20) -> str | None:
    """A small local file's text, or None when it is absent or unreadable (both mean "not here")."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


class AwsResourceDetector(ResourceDetector):
    """Base class: subclasses implement ``_detect`` and may raise; ``detect`` never does."""

    def __init__(
        self,
        raise_on_error: bool = False,
        *,
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # raise_on_error is accepted for interface compatibility only: see the module docstring.
        super().__init__(raise_on_error=raise_on_error)
        self._timeout = timeout
        self._environ = environ

    @property
    def env(self) -> Mapping[str, str]:
        """The variables this detector reads: its ``environ``, else the process's, read when it
        detects (``configure(environ=...)`` passes one mapping to every detector)."""
        return os.environ if self._environ is None else self._environ

    def env_or(self, explicit: str | None, name: str, default: str) -> str:
        """A constructor argument first (tests, code), then the variable, then the default."""
        return explicit_or_env(explicit, name, default, self.env)

    def detect(self) -> Resource:
        deadline = Deadline(
            detector_timeout(self._timeout, DEFAULT_TIMEOUT, _MAX_TIMEOUT, self.env)
        )
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
