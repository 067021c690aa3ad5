"""The time-series sink: riverguard topics → InfluxDB, and recent history read back with Flux."""

from typing import TYPE_CHECKING

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from sink.errors import HistoryError, InfluxRejected, InfluxUnavailable, SinkError
    from sink.history import HistoryPoint, history_query, parse_since, recent_history
    from sink.influx import InfluxWriter
    from sink.line import Point
    from sink.points import (
        detection_points,
        incident_point,
        notification_point,
        reading_lines,
        reading_points,
        record_lines,
        record_points,
    )
    from sink.service import SinkProcessor, sink_config, sink_topics

__all__ = [
    "HistoryError",
    "HistoryPoint",
    "InfluxRejected",
    "InfluxUnavailable",
    "InfluxWriter",
    "Point",
    "SinkError",
    "SinkProcessor",
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
    "sink_config",
    "sink_topics",
]

__getattr__ = lazy_exports(__name__, __file__)
