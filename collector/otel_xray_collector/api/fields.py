"""Typed reads of request fields: every wrong type or out-of-range value is a 400.

Handlers read their body through :class:`Fields` instead of ``body.get``: each read states the
type and range it accepts, so a list where a string belongs, ``-1e308`` for a time or an integer
beyond what SQLite stores is answered with X-Ray's ``InvalidRequestException`` naming the field,
never reaches a query and never becomes a 500. New operations use the same reader.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Collection, Mapping
from typing import Any

from .errors import invalid_request

#: Times are epoch seconds between 1970 and the end of year 9999 (what datetime can represent).
MAX_EPOCH_SECONDS = 253_402_300_799.0
#: The largest integer a field may carry: SQLite's INTEGER range (and every count's sane range).
MAX_INTEGER = 2**63 - 1


def parse_timestamp(value: Any, where: str, *, millis: bool = False) -> float:
    """Epoch seconds from a number, a numeric string or ISO-8601 text, within 1970..9999.

    ``millis``: a number beyond year 5138 in seconds is read as milliseconds (Java SDKs' mapper
    sends them in sampling statistics).
    """
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str) and len(value) <= 64:
        try:
            seconds = float(value)
        except ValueError:
            seconds = _iso_seconds(value)
    if seconds is not None and millis and seconds > 1e11:
        seconds /= 1000.0
    if seconds is None or not 0.0 <= seconds <= MAX_EPOCH_SECONDS:  # NaN fails this too
        raise invalid_request(f"{where} must be epoch seconds or an ISO-8601 time (1970-9999)")
    return seconds


def _iso_seconds(text: str) -> float | None:
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None


class Fields:
    """One request body, read field by field with types and ranges.

    A missing field or JSON ``null`` takes the default; ``required=True`` makes it an error.
    """

    def __init__(self, body: Any, where: str = "") -> None:
        if not isinstance(body, Mapping):
            raise invalid_request(f"{where or 'the request body'} must be a JSON object")
        self._body = body
        #: The path of this object in the request ("" for the body), for messages.
        self.where = where
        self._prefix = f"{where}." if where else ""

    def _get(self, name: str, required: bool) -> Any:
        value = self._body.get(name)
        if value is None and required:
            raise invalid_request(f"{self._prefix}{name} is required")
        return value

    def name(self, field: str) -> str:
        return self._prefix + field

    def string(
        self,
        field: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_length: int = 4096,
        min_length: int = 0,
        choices: Collection[str] | None = None,
    ) -> str | None:
        value = self._get(field, required)
        if value is None:
            return default
        if not isinstance(value, str) or not min_length <= len(value) <= max_length:
            raise invalid_request(
                f"{self.name(field)} must be a string of {min_length} to {max_length} characters"
            )
        if choices is not None and value not in choices:
            raise invalid_request(f"{self.name(field)} must be one of {', '.join(choices)}")
        return value

    def integer(
        self,
        field: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int = 0,
        maximum: int = MAX_INTEGER,
    ) -> int | None:
        value = self._get(field, required)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INTEGER:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise invalid_request(
                f"{self.name(field)} must be an integer from {minimum} to {maximum}"
            )
        return int(value)

    def number(
        self,
        field: str,
        *,
        required: bool = False,
        minimum: float = -math.inf,
        maximum: float = math.inf,
    ) -> float | None:
        """A finite JSON number (integer or not) from ``minimum`` to ``maximum``."""
        value = self._get(field, required)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not minimum <= value <= maximum
        ):
            raise invalid_request(
                f"{self.name(field)} must be a number from {minimum:g} to {maximum:g}"
            )
        return float(value)

    def boolean(self, field: str, *, required: bool = False) -> bool | None:
        value = self._get(field, required)
        if value is not None and not isinstance(value, bool):
            raise invalid_request(f"{self.name(field)} must be true or false")
        return value

    def timestamp(self, field: str, *, millis: bool = False) -> float:
        """A required time (see :func:`parse_timestamp`)."""
        return parse_timestamp(self._get(field, True), self.name(field), millis=millis)

    def string_list(
        self,
        field: str,
        *,
        required: bool = False,
        max_items: int = 10_000,
        min_length: int = 0,
        max_length: int | None = 4096,
    ) -> list[str]:
        """``max_length=None``: items bounded only by the body size (documents, say)."""
        value = self._get(field, required)
        if value is None:
            return []
        if (
            not isinstance(value, list)
            or len(value) > max_items
            or not all(
                isinstance(item, str)
                and min_length <= len(item)
                and (max_length is None or len(item) <= max_length)
                for item in value
            )
        ):
            sizes = f"{min_length} to {max_length}" if max_length else f"at least {min_length}"
            raise invalid_request(
                f"{self.name(field)} must be a list of at most {max_items} strings of "
                f"{sizes} characters"
            )
        return value

    def string_map(
        self,
        field: str,
        *,
        max_items: int = 10_000,
        min_length: int = 0,
        max_length: int = 4096,
    ) -> dict[str, str]:
        """A JSON object of strings (keys and values of ``min_length`` to ``max_length``)."""
        value = self._get(field, False)
        if value is None:
            return {}
        if (
            not isinstance(value, Mapping)
            or len(value) > max_items
            or not all(
                isinstance(part, str) and min_length <= len(part) <= max_length
                for pair in value.items()
                for part in pair
            )
        ):
            raise invalid_request(
                f"{self.name(field)} must be a map of at most {max_items} entries, keys and "
                f"values strings of {min_length} to {max_length} characters"
            )
        return dict(value)

    def object(self, field: str, *, required: bool = False) -> Fields | None:
        """A nested JSON object, read with a reader of its own (its messages name the path)."""
        value = self._get(field, required)
        return None if value is None else Fields(value, self.name(field))

    def present(self) -> set[str]:
        """The members given a value (not missing, not ``null``): what an update changes."""
        return {name for name, value in self._body.items() if value is not None}

    def objects(self, field: str, *, required: bool = False, max_items: int = 10_000) -> list[Any]:
        """A list of JSON objects, each to be read with its own ``Fields(item, where)``."""
        value = self._get(field, required)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > max_items:
            raise invalid_request(f"{self.name(field)} must be a list of at most {max_items}")
        return value

    def item(self, field: str, index: int, value: Any) -> Fields:
        return Fields(value, f"{self.name(field)}[{index}]")


__all__ = ["Fields", "MAX_EPOCH_SECONDS", "MAX_INTEGER", "parse_timestamp"]
