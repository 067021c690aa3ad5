"""Streaming detectors: river-based spike detection, sensor health, event logic, checkpoints, replay.

The pure core is :class:`StationDetector` (readings in, detections out; built from instrument
health, regulatory checks, spike scoring and event logic) and :class:`DetectorStack` (one
detector per station, checkpoints as versioned plain data). The Kafka service (:mod:`detectors.service`) and the
replay/backtest command (:mod:`detectors.replay`) drive the same core.
"""

from typing import TYPE_CHECKING

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from detectors.config import DetectorConfig, Persistence
    from detectors.errors import DetectorError, ReplayError, StateError
    from detectors.events import EventLatch, event_id
    from detectors.stack import DetectorStack, EventClock
    from detectors.station import StationDetector

__all__ = [
    "DetectorConfig",
    "DetectorError",
    "DetectorStack",
    "EventClock",
    "EventLatch",
    "Persistence",
    "ReplayError",
    "StateError",
    "StationDetector",
    "event_id",
]

__getattr__ = lazy_exports(__name__, __file__)
