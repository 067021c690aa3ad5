"""The time-series sink: riverguard topics → InfluxDB, and recent history read back with Flux."""

from typing import TYPE_CHECKING

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from riverguard.sink.errors import HistoryError, InfluxRejected, InfluxUnavailable, SinkError
    from riverguard.sink.history import HistoryPoint, history_query, parse_since, recent_history
    from riverguard.sink.influx import InfluxWriter
    from riverguard.sink.line import Point
    from riverguard.sink.points import (
        detection_points,
        incident_point,
        notification_point,
        reading_lines,
        reading_points,
        record_lines,
        record_points,
    )
    from riverguard.sink.service import Sink, serve_sink, sink_topics

__all__ = [
    "HistoryError",
    "HistoryPoint",
    "InfluxRejected",
    "InfluxUnavailable",
    "InfluxWriter",
    "Point",
    "Sink",
    "SinkError",
    "detection_points",
    "history_query",
    "incident_point",
    "notification_point",
    "parse_since",
    "reading_lines",
    "reading_points",
    "recent_history",
    "record_lines",
    "record_points",
    "serve_sink",
    "sink_topics",
]

__getattr__ = lazy_exports(__name__, __file__)
