"""InfluxDB line protocol, the text both InfluxDB 1.8 and 2.x accept on their write endpoints.

A small typed builder instead of ``influxdb_client.Point``: the sink builds tens of thousands
of points per second and only needs the encoding; the output is byte-for-byte what
``influxdb_client.Point`` produces for the same data (checked in ``tests/unit/test_sink_line.py``).

>>> p = Point("reading").tag("station", "a b").tag("river", "min").field("value", 1.5).field("flag", "N")
>>> p.time(1_704_450_600_000_000_000).to_line_protocol()
'reading,river=min,station=a\\\\ b flag="N",value=1.5 1704450600000000000'
"""

from __future__ import annotations

import functools
import math
from typing import Self

FieldValue = bool | int | float | str

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': r"\""})


class Point:
    """One point: measurement, tags, fields and a nanosecond timestamp."""

    __slots__ = ("_fields", "_tags", "_time_ns", "measurement")

    def __init__(self, measurement: str) -> None:
        if not measurement:
            raise ValueError("a point needs a measurement name")
        self.measurement = measurement
        self._tags: dict[str, str] = {}
        self._fields: dict[str, FieldValue] = {}
        self._time_ns: int | None = None

    def tag(self, key: str, value: str) -> Self:
        """Add a tag; empty values are not representable in line protocol and are refused."""
        if not value:
            raise ValueError(f"tag {key!r} of {self.measurement!r} has an empty value")
        self._tags[key] = value
        return self

    def field(self, key: str, value: FieldValue) -> Self:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"field {key!r} of {self.measurement!r} is not finite: {value}")
        self._fields[key] = value
        return self

    def time(self, nanoseconds: int) -> Self:
        self._time_ns = nanoseconds
        return self

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    @property
    def fields(self) -> dict[str, FieldValue]:
        return dict(self._fields)

    @property
    def time_ns(self) -> int | None:
        return self._time_ns

    def to_line_protocol(self) -> str:
        if not self._fields:
            raise ValueError(f"point of {self.measurement!r} has no fields")
        head = measurement_text(self.measurement)
        tags = "".join(f",{_key(k)}={tag_text(v)}" for k, v in sorted(self._tags.items()))
        fields = ",".join(f"{_key(k)}={field_text(v)}" for k, v in sorted(self._fields.items()))
        stamp = "" if self._time_ns is None else f" {self._time_ns}"
        return f"{head}{tags} {fields}{stamp}"

    def __repr__(self) -> str:
        return f"Point({self.to_line_protocol()!r})"


# Names and tag values repeat in nearly every point (20 stations, a few dozen parameters), so
# their escaped forms are cached; bench/sink.py measured the escaping as the largest CPU cost.
@functools.lru_cache(maxsize=4096)
def measurement_text(name: str) -> str:
    """A measurement name escaped for line protocol."""
    return name.translate(_MEASUREMENT_ESCAPES)


@functools.lru_cache(maxsize=4096)
def _key(key: str) -> str:
    return key.translate(_KEY_ESCAPES)


@functools.lru_cache(maxsize=16384)
def tag_text(value: str) -> str:
    """A tag value escaped for line protocol."""
    escaped = value.translate(_KEY_ESCAPES)
    # a trailing backslash would escape the separator that follows
    return escaped + " " if escaped.endswith("\\") else escaped


def field_text(value: FieldValue) -> str:
    """A field value as line protocol writes it (``1.5``, ``3i``, ``true``, ``"text"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return f'"{value.translate(_STRING_ESCAPES)}"'
