"""The per-station detector: readings in, event-level detections out (pure, state as data).

One pass per reading, no look-ahead: score against what was learned so far, decide, then learn.
Order inside a reading: the cadence (data gaps), instrument health (flags, impossible, stuck,
lone steps; :mod:`detectors.health`), regulatory checks (GB 3838 limits, section class,
ecological flow, no warm-up; :mod:`detectors.limits`), then the pollution-spike score
(:mod:`detectors.spikes`). Each check gives verdicts that the event logic
(:mod:`detectors.channels`) turns into onset, update and cleared detections.

>>> from datetime import datetime, timedelta, timezone
>>> from riverguard.models import Measurement, Reading, SourceFormat
>>> detector = StationDetector(None)
>>> t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
>>> def reading(i, nh3n, ph):
...     return Reading(station_id="demo", river="tuo", time=t0 + timedelta(minutes=i),
...                    values={"NH3N": Measurement(value=nh3n), "pH": Measurement(value=ph + 0.01 * (i % 3))},
...                    source_format=SourceFormat.SIMULATOR)
>>> quiet = [d for i in range(300) for d in detector.process(reading(i, 0.3 + 0.01 * (i % 5), 7.8))]
>>> quiet
[]
>>> spill = [d for i in range(300, 340) for d in detector.process(reading(i, 3.0, 7.4))]
>>> [(d.kind.value, d.phase.value) for d in spill][:1]
[('pollution_spike', 'onset')]
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from detectors.baseline import ParameterTrack
from detectors.cadence import Cadence, Gap
from detectors.channels import STATION_WIDE, EventBook, Verdict
from detectors.config import DetectorConfig
from detectors.events import event_id
from detectors.faults import SensorFaults
from detectors.feedback import Feedback
from detectors.findings import value_findings
from detectors.flood import FloodWindow
from detectors.health import InstrumentHealth
from detectors.limits import RegulatoryCheck
from detectors.quantities import hydrological
from detectors.spikes import SpikeScorer
from detectors.state import FORMAT, VERSION, ExpectedState, FloodState, StationState
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding, Reading
from riverguard.stations import Station

_K = DetectionKind
#: Below this typical interval the level follows the daily cycle by itself.
_DIURNAL_MIN_INTERVAL_S: Final = 600.0


class StationDetector:
    """Learns one station's normal and reports events; ``station`` gives target class and min flow.

    :meth:`snapshot` after any reading, :meth:`restore` it, and the next outputs are identical.
    """

    def __init__(self, station: Station | None, config: DetectorConfig | None = None) -> None:
        self.station = station
        self.config = config = config or DetectorConfig()
        self.cadence = Cadence()
        self.health = InstrumentHealth(config)
        self.limits = RegulatoryCheck(station)
        self.spikes = SpikeScorer(config)
        self.events = EventBook(station, config, self.health.tracks)
        #: Re-delivered or out-of-order readings that were not applied (at-least-once input).
        self.stale_readings = 0
        #: The combined spike score of the latest reading (replay and calibration read it).
        self.last_score = 0.0
        #: Parameters an upstream station reported pollution in: until when, and which station.
        self.expected: dict[str, tuple[datetime, str]] = {}
        #: The duty officers' verdicts on this station's incidents (they weigh its evidence).
        self.feedback = Feedback(config.feedback_memory_s)

    @property
    def readings(self) -> int:
        """Readings applied so far."""
        return self.cadence.readings

    @property
    def tracks(self) -> dict[str, ParameterTrack]:
        return self.health.tracks

    @property
    def in_pollution_event(self) -> bool:
        """True while any pollution event (spike, limit exceedance, class downgrade) is open."""
        return self.events.in_pollution_event

    @property
    def instrument_score(self) -> float:
        """How strongly the latest reading looked like an instrument problem (>= 1: it did)."""
        return self.health.score

    def reconfigure(self, config: DetectorConfig) -> None:
        """Adopt new tuning (e.g. calibrated thresholds) keeping everything learned."""
        self.config = config
        self.health.config = config
        self.spikes.config = config
        self.events.reconfigure(config)

    def check_silence(self, watermark: datetime) -> list[Detection]:
        """A ``data_gap`` onset, once, when this station has been silent too long by event time.

        ``watermark`` is the latest reading time of any station that shares this one's input
        (its partition), so simulated time and replays never raise wall-clock false alarms, and
        stations that all go quiet together (the feed stalled) do not look silent. The next
        reading of the station then clears the same event instead of reporting a new one.

        >>> from datetime import datetime, timedelta, timezone
        >>> from riverguard.models import Measurement, Reading, SourceFormat
        >>> detector = StationDetector(None)
        >>> t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
        >>> def at(minute):
        ...     return Reading(station_id="demo", river="tuo", time=t0 + timedelta(minutes=minute),
        ...                    values={"pH": Measurement(value=7.8)}, source_format=SourceFormat.SIMULATOR)
        >>> [d for m in range(10) for d in detector.process(at(m))]
        []
        >>> detector.check_silence(t0 + timedelta(minutes=20))
        []
        >>> [(d.kind.value, d.phase.value) for d in detector.check_silence(t0 + timedelta(minutes=30))]
        [('data_gap', 'onset')]
        >>> detector.check_silence(t0 + timedelta(minutes=40))
        []
        >>> [(d.kind.value, d.phase.value) for d in detector.process(at(45))]
        [('data_gap', 'cleared')]
        """
        recent = self.events.recent
        if not recent:
            return []
        gap = self.cadence.silence(watermark, self.config)
        return [] if gap is None else self._gap_detections(recent[-1], gap, phases=(DetectionPhase.ONSET,))

    def process(self, reading: Reading) -> list[Detection]:
        """Score ``reading`` against the past, emit event transitions, then learn from it."""
        cadence = self.cadence
        if not cadence.fresh(reading.time):
            self.stale_readings += 1
            return []
        config = self.config
        out: list[Detection] = []
        gap = cadence.arrive(reading.time, config)
        if gap is not None:
            phases = (DetectionPhase.CLEARED,) if gap.reported else (DetectionPhase.ONSET, DetectionPhase.CLEARED)
            out += self._gap_detections(reading, gap, phases=phases)
        hour = reading.time.hour
        diurnal = cadence.interval_s >= _DIURNAL_MIN_INTERVAL_S

        health, events = self.health, self.events
        expected = self._expected(reading.time)
        maintenance, flagged, values = health.sort(reading, hour, diurnal)
        eligible = health.screen(values, bool(maintenance), reading.time.timestamp(), expected)
        score = self.spikes.score(eligible)
        if self.feedback.verdicts:
            score *= self.feedback.weight(reading.time)
        upstream = ""
        if expected and score > 0.0:
            # A rise in a parameter an upstream station reported is the plume arriving: stronger evidence.
            arriving = sorted(name for name in expected if eligible.get(name, 0.0) >= 1.0)
            if arriving:
                score *= config.upstream_boost
                upstream = self.expected[arriving[0]][1]
        self.last_score = score

        verdicts = health.verdicts(reading, maintenance, flagged, events)
        verdicts += self.limits.verdicts(values, events)
        threshold = config.spike_threshold
        firing = score >= threshold and bool(eligible)
        # An idle latch that does not fire stays idle: skip the verdict and its findings closure.
        if firing or events.live(_K.POLLUTION_SPIKE, STATION_WIDE):
            verdicts.append(Verdict(
                _K.POLLUTION_SPIKE, STATION_WIDE, firing, score >= threshold * config.hold_ratio, score,
                describe=lambda params: self._spike_findings(reading, eligible, params), upstream=upstream,
            ))
        for verdict in verdicts:
            events.step(verdict, reading, out)

        # Learning never pauses for an open event: the clipped update already keeps a plume out
        # of the baseline, and scores that do not depend on the threshold make calibration exact.
        calm, sensors = health.calm, health.sensors
        for name, track, value, z in values:
            track.learn(value - sensors[name].offset, z, hour, diurnal, config, calm or hydrological(name))
        events.remember(reading)
        return out

    def expect(self, parameters: tuple[str, ...], until: datetime, source: str) -> None:
        """An upstream station (``source``) reported pollution in ``parameters``: until ``until``,
        a rise in them here is the plume arriving (evidence, not a sensor's lone step)."""
        for name in parameters:
            current = self.expected.get(name)
            if current is None or current[0] < until:
                self.expected[name] = (until, source)

    def _expected(self, now: datetime) -> frozenset[str]:
        expected = self.expected
        if not expected:
            return frozenset()
        for name in [name for name, (until, _) in expected.items() if until < now]:
            del expected[name]
        return frozenset(expected)

    def _gap_detections(self, reading: Reading, gap: Gap, *, phases: tuple[DetectionPhase, ...]) -> list[Detection]:
        gap_id = event_id(reading.station_id, _K.DATA_GAP.value, (), gap.start)
        at = {DetectionPhase.ONSET: gap.start, DetectionPhase.CLEARED: reading.time}
        return [
            self.events.detection(reading, _K.DATA_GAP, phase, gap_id, 0, (), score=gap.seconds, confidence=1.0,
                                  at=at[phase], note=f"{gap.seconds / 60:.0f} min")
            for phase in phases
        ]

    def _spike_findings(
        self, reading: Reading, eligible: dict[str, float], parameters: tuple[str, ...] | None
    ) -> tuple[Finding, ...]:
        if parameters is None:
            bar = self.config.spike_threshold * self.config.hold_ratio
            parameters = tuple(n for n, s in eligible.items() if s >= bar)
            if not parameters and eligible:
                parameters = (max(eligible, key=lambda n: eligible[n]),)
        return value_findings(reading, parameters, self.events.target, self.tracks)

    # -- state --------------------------------------------------------------------------------

    def snapshot(self, station_id: str) -> StationState:
        """Everything learned, as plain data (see :mod:`detectors.state`)."""
        return StationState(
            format=FORMAT, version=VERSION, station_id=station_id, readings=self.cadence.readings,
            stale_readings=self.stale_readings, last_score=self.last_score, cadence=self.cadence.snapshot(),
            tracks={name: track.snapshot() for name, track in self.tracks.items()},
            sensors={name: sensor.snapshot() for name, sensor in self.health.sensors.items()},
            channels=self.events.snapshot(), watched=sorted(self.limits.watched), spikes=self.spikes.snapshot(),
            recent=list(self.events.recent),
            expected=[ExpectedState(parameter=name, until=until, source=source)
                      for name, (until, source) in self.expected.items()],
            verdicts=self.feedback.snapshot(),
            flood=FloodState(since=self.health.flood.since, last=self.health.flood.last, high=self.health.flood.high),
        )

    @classmethod
    def restore(cls, state: StationState, station: Station | None, config: DetectorConfig) -> StationDetector:
        """The detector ``state`` describes, for ``station``, tuned with ``config``."""
        detector = cls(station, config)
        detector.cadence = Cadence.restore(state.cadence, state.readings)
        detector.stale_readings = state.stale_readings
        detector.last_score = state.last_score
        detector.health.tracks.update({name: ParameterTrack.restore(t) for name, t in state.tracks.items()})
        detector.health.sensors.update(
            {name: SensorFaults.restore(name, s, config) for name, s in state.sensors.items()}
        )
        detector.limits.watched.update(state.watched)
        detector.spikes = SpikeScorer.restore(state.spikes, config)
        detector.events.restore(state.channels, state.recent)
        detector.expected = {e.parameter: (e.until, e.source) for e in state.expected}
        detector.feedback.restore(state.verdicts)
        detector.health.flood = FloodWindow(state.flood.since, state.flood.last, state.flood.high)
        detector.events.reconfigure(config)
        return detector
