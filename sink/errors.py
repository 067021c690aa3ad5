"""Exceptions of the InfluxDB sink and the history helper.

::

    RiverguardError
    └── SinkError
        ├── InfluxUnavailable   InfluxDB unreachable, timed out or answered 5xx/429 (transient:
        │                       the sink waits and retries, consuming nothing meanwhile)
        ├── InfluxRejected      InfluxDB refused the data (4xx): the same points would fail again
        └── HistoryError        bad arguments to a history query, or the query failed
"""

from __future__ import annotations

from riverguard.errors import RiverguardError


class SinkError(RiverguardError):
    """Base of the sink's errors."""


class InfluxUnavailable(SinkError):  # noqa: N818 - names the condition, like httpx's TimeoutException
    """InfluxDB cannot take the write right now; retrying later can succeed."""


class InfluxRejected(SinkError):  # noqa: N818
    """InfluxDB answered that the points are invalid (HTTP 4xx other than 408/429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HistoryError(SinkError):
    """A history query could not be built or run."""
