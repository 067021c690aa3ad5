"""All station detectors of one process, and their checkpoints.

A checkpoint is a station detector's state as versioned plain data (:mod:`detectors.state`):
restoring one parses and validates it and never runs code from it. A checkpoint that cannot be
restored — forged, damaged, written by another version — is refused with a log line naming the
station and the reason, and that station starts fresh; the service goes on.

>>> from datetime import datetime, timezone
>>> from riverguard.models import Measurement, Reading, SourceFormat
>>> stack = DetectorStack()
>>> r = Reading(station_id="tuo-a", river="tuo", time=datetime(2024, 5, 1, tzinfo=timezone.utc),
...             values={"pH": Measurement(value=7.9)}, source_format=SourceFormat.JSON)
>>> stack.process(r)
[]
>>> restored = DetectorStack()
>>> restored.restore("tuo-a", stack.checkpoint("tuo-a"))
True
>>> restored.detectors["tuo-a"].readings
1
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from detectors import state as state_format
from detectors.config import DetectorConfig
from detectors.errors import StateError
from detectors.feedback import OperatorVerdict
from detectors.station import StationDetector
from riverguard.models import Detection, DetectionPhase, Reading
from riverguard.stations import Station, StationRegistry

log = logging.getLogger(__name__)


class DetectorStack:
    """Creates a :class:`StationDetector` per station id on its first reading."""

    def __init__(self, config: DetectorConfig | None = None, registry: StationRegistry | None = None) -> None:
        self.config = config or DetectorConfig()
        self.registry = registry
        self.detectors: dict[str, StationDetector] = {}

    def station(self, station_id: str) -> Station | None:
        """The registered station (target class, minimum flow), or ``None`` with a warning."""
        station = self.registry.by_id.get(station_id) if self.registry is not None else None
        if self.registry is not None and station is None:
            log.warning(
                "station %s is not in the station registry: no GB 3838 target class or minimum flow, "
                "so only spikes and instrument health are checked; add it to stations.yaml",
                station_id,
            )
        return station

    def detector(self, station_id: str) -> StationDetector:
        detector = self.detectors.get(station_id)
        if detector is None:
            detector = self.detectors[station_id] = StationDetector(self.station(station_id), self.config)
        return detector

    def process(self, reading: Reading) -> list[Detection]:
        detections = self.detector(reading.station_id).process(reading)
        for detection in detections:
            if detection.kind.is_pollution and detection.phase is DetectionPhase.ONSET:
                self._warn_downstream(detection)
        return detections

    def _warn_downstream(self, detection: Detection) -> None:
        """Tell the stations below this one on its river (those this process holds) what to expect:
        a plume travels downstream, so a rise there in the same parameters is the water."""
        if self.registry is None:
            return
        on_river = [s.station_id for s in self.registry.on_river(detection.river)]
        if detection.station_id not in on_river:
            return
        parameters = tuple(sorted({f.parameter for f in detection.findings}))
        until = detection.time + timedelta(seconds=self.config.upstream_window_s)
        for station_id in on_river[on_river.index(detection.station_id) + 1 :]:
            downstream = self.detectors.get(station_id)
            if downstream is not None:
                downstream.expect(parameters, until, detection.station_id)

    def check_silence(self, watermark: datetime, station_ids: Iterable[str] | None = None) -> list[Detection]:
        """``data_gap`` onsets of the stations (default: all) that are silent at event time ``watermark``
        (see :meth:`StationDetector.check_silence`); one pass over the stations, nothing learned."""
        ids = self.detectors.keys() if station_ids is None else station_ids
        return [d for sid in ids if (det := self.detectors.get(sid)) is not None for d in det.check_silence(watermark)]

    def reconfigure(self, config: DetectorConfig) -> None:
        """New tuning for every current and future detector, keeping what they learned."""
        self.config = config
        for detector in self.detectors.values():
            detector.reconfigure(config)

    def checkpoint(self, station_id: str) -> bytes:
        """The bytes that restore this station's detector exactly."""
        return state_format.encode(self.detectors[station_id].snapshot(station_id))

    def restore(self, station_id: str, state: bytes) -> bool:
        """Replace the station's detector by a checkpoint (the current tuning is kept); False, with
        a warning, when the checkpoint is refused and the station starts fresh instead."""
        try:
            decoded = state_format.decode(state, station_id)
        except StateError as exc:
            self.detectors.pop(station_id, None)
            log.warning("%s; station %s starts fresh: its baselines are re-learned over the next %d readings "
                        "(regulatory limits apply at once), and its next checkpoint replaces the refused one",
                        exc, station_id, self.config.warmup_readings)
            return False
        self.detectors[station_id] = StationDetector.restore(decoded, self.station(station_id), self.config)
        return True

    def learn_verdict(
        self, station_id: str, verdict: str, window_start: datetime, window_end: datetime, label: str | None = None
    ) -> None:
        """A duty officer's verdict on one incident of a station — ``confirmed_pollution``,
        ``instrument_fault``, ``false_alarm`` or ``drill`` — about its detections from
        ``window_start`` to ``window_end``. False alarms and instrument faults make the station's
        pollution evidence weigh less, confirmations more (see :mod:`detectors.feedback`); a later
        verdict with the same ``label`` (the incident) replaces the earlier. Part of the checkpoint.

        >>> from datetime import datetime, timezone
        >>> stack, t = DetectorStack(), datetime(2024, 5, 1, tzinfo=timezone.utc)
        >>> stack.learn_verdict("tuo-a", "false_alarm", t, t, label="RG-1")
        >>> round(stack.detectors["tuo-a"].feedback.weight(t), 2)
        0.85
        >>> try:
        ...     stack.learn_verdict("tuo-a", "maybe", t, t)
        ... except ValueError as exc:
        ...     print(str(exc).split(" is ")[0])
        verdict 'maybe' for station tuo-a
        """
        try:
            value = OperatorVerdict(verdict)
        except ValueError as exc:
            choices = ", ".join(v.value for v in OperatorVerdict)
            raise ValueError(f"verdict {verdict!r} for station {station_id} is not one of {choices}") from exc
        if window_end < window_start:
            raise ValueError(f"verdict window of station {station_id} ends ({window_end.isoformat()}) before it "
                             f"starts ({window_start.isoformat()})")
        self.detector(station_id).feedback.learn(label or window_start.isoformat(), value, window_start, window_end)

    def forget(self, station_id: str) -> None:
        """Drop a station (its partition was revoked; the changelog keeps its state)."""
        self.detectors.pop(station_id, None)


class EventClock:
    """Event time per input partition: the latest reading time seen there (the watermark), and
    which partitions are due for a silence check because it moved on by ``check_every_s``.

    >>> from datetime import timedelta, timezone
    >>> clock = EventClock(check_every_s=5.0)
    >>> t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    >>> clock.observe(0, t0); clock.observe(0, t0 - timedelta(hours=1)); clock.observe(1, t0)
    >>> [p for p, _ in clock.due()]
    [0, 1]
    >>> clock.observe(0, t0 + timedelta(seconds=3)); clock.due()
    []
    >>> clock.observe(0, t0 + timedelta(seconds=6)); [(p, str(w.time())) for p, w in clock.due()]
    [(0, '00:00:06')]
    """

    def __init__(self, check_every_s: float) -> None:
        self.check_every_s = check_every_s
        self.watermarks: dict[int, datetime] = {}
        self._checked: dict[int, datetime] = {}

    def observe(self, partition: int, time: datetime) -> None:
        """A reading of ``time`` arrived on ``partition`` (late readings do not move it back)."""
        current = self.watermarks.get(partition)
        if current is None or time > current:
            self.watermarks[partition] = time

    def due(self) -> list[tuple[int, datetime]]:
        """Partitions (with their watermark) to check now; each is then counted as checked."""
        out = []
        for partition, watermark in sorted(self.watermarks.items()):
            checked = self._checked.get(partition)
            if checked is None or (watermark - checked).total_seconds() >= self.check_every_s:
                self._checked[partition] = watermark
                out.append((partition, watermark))
        return out

    def forget(self, partition: int) -> None:
        """The partition was revoked; its next owner builds its own watermark."""
        self.watermarks.pop(partition, None)
        self._checked.pop(partition, None)
