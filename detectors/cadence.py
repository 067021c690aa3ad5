"""How often a station reports, and when it has gone quiet (missing data).

A pause longer than ``gap_intervals`` typical intervals (and at least ``gap_min_s``) is a data
gap, reported when the next reading ends it; :meth:`Cadence.silence` reports it earlier, while
the station is still silent, judged by the event time of its partition (see
:meth:`detectors.station.StationDetector.check_silence`).

>>> from datetime import datetime, timedelta, timezone
>>> from detectors.config import DetectorConfig
>>> cadence, config = Cadence(), DetectorConfig()
>>> t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
>>> [cadence.arrive(t0 + timedelta(minutes=m), config) for m in range(4)]
[None, None, None, None]
>>> gap = cadence.arrive(t0 + timedelta(hours=3), config)
>>> gap.start.hour, gap.seconds, gap.reported
(0, 10620.0, False)
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from detectors.config import DetectorConfig
from detectors.state import CadenceState


class Gap(NamedTuple):
    """A pause in a station's readings: when it began, how long it was, whether its onset was
    already reported while the station was silent."""

    start: datetime
    seconds: float
    reported: bool


class Cadence:
    """The last reading time, the typical interval (an EWM of intervals), and an open silence."""

    __slots__ = ("interval_s", "last_time", "readings", "silent_since")

    def __init__(self) -> None:
        self.last_time: datetime | None = None
        self.interval_s = 0.0
        #: When the open data gap reported by :meth:`silence` began (the last reading before it).
        self.silent_since: datetime | None = None
        self.readings = 0

    def fresh(self, time: datetime) -> bool:
        """False for a reading at or before the last one (re-delivered or out of order)."""
        return self.last_time is None or time > self.last_time

    def arrive(self, time: datetime, config: DetectorConfig) -> Gap | None:
        """Count a new reading at ``time``; the gap it ends, if any (gaps do not teach the interval)."""
        last = self.last_time
        self.last_time = time
        readings = self.readings
        self.readings = readings + 1
        if last is None:
            return None
        gap = (time - last).total_seconds()
        # A gap whose onset silence() already reported only clears, even if it turned out shorter
        # than gap_intervals (the silence rule is the earlier warning).
        reported = self.silent_since is not None
        if reported or (readings >= 3 and gap > max(config.gap_min_s, config.gap_intervals * self.interval_s)):
            self.silent_since = None
            return Gap(last, gap, reported)
        self.interval_s = gap if self.interval_s == 0 else self.interval_s + 0.05 * (gap - self.interval_s)
        return None

    def silence(self, watermark: datetime, config: DetectorConfig) -> Gap | None:
        """The gap open at event time ``watermark``, once, when it has lasted too long."""
        last = self.last_time
        if last is None or self.silent_since is not None or self.readings < 3:
            return None
        silence = (watermark - last).total_seconds()
        if silence <= max(config.silence_min_s, config.silence_intervals * self.interval_s):
            return None
        self.silent_since = last
        return Gap(last, silence, False)

    def snapshot(self) -> CadenceState:
        return CadenceState(last_time=self.last_time, interval_s=self.interval_s, silent_since=self.silent_since)

    @classmethod
    def restore(cls, state: CadenceState, readings: int) -> Cadence:
        cadence = cls()
        cadence.last_time = state.last_time
        cadence.interval_s = state.interval_s
        cadence.silent_since = state.silent_since
        cadence.readings = readings
        return cadence
