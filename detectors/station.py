"""The per-station detector: readings in, event-level detections out (pure, picklable).

One pass per reading, no look-ahead: score against what was learned so far, decide, then learn.
Order inside a reading: instrument health first (flags, impossible, stuck, lone steps), then
regulatory checks (GB 3838 limits, section class, ecological flow; no warm-up), then the
pollution-spike score (per-parameter robust baselines combined with a multivariate
HalfSpaceTrees), each turned into events by an :class:`~detectors.events.EventLatch`.

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

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Final

from river.anomaly import HalfSpaceTrees

from detectors.baseline import ParameterTrack
from detectors.config import DetectorConfig, Persistence
from detectors.events import EventLatch, Transition, event_id
from detectors.health import ANY_VALUE, FAULT_FLAGS, HYDROLOGICAL, MAINTENANCE_FLAGS, PLAUSIBLE_RANGES
from detectors.messages import message, spike_confidence
from riverguard.models import DataFlag, Detection, DetectionKind, DetectionPhase, Finding, Reading
from riverguard.parameters import (
    PARAMETERS,
    WaterClass,
    compliant_band,
    exceedance_multiple,
    gb3838_limit,
    section_class,
)
from riverguard.stations import Station

DETECTOR_NAME: Final = "riverguard.detectors"
_K = DetectionKind
_STATION_WIDE: Final = "*"
#: Below this typical interval the level follows the daily cycle by itself.
_DIURNAL_MIN_INTERVAL_S: Final = 600.0
_LIMIT_HYSTERESIS: Final = 1.1

Describe = Callable[[tuple[str, ...] | None], tuple[Finding, ...]]
#: A clean value of a reading: parameter, its track, the value and its score before learning.
_Value = tuple[str, ParameterTrack, float, float]


class _Channel:
    """One kind of event on one parameter (or station-wide): its latch and its open event."""

    __slots__ = ("emitted_peak", "event_id", "latch", "open_readings", "parameters", "seq", "since_emit")

    def __init__(self, persistence: Persistence) -> None:
        self.latch = EventLatch(persistence)
        self.event_id = ""
        self.parameters: tuple[str, ...] = ()
        self.seq = 0
        self.since_emit = 0
        self.emitted_peak = 0.0
        self.open_readings = 0


class StationDetector:
    """Learns one station's normal and reports events; ``station`` gives target class and min flow.

    The whole object is the checkpoint: ``pickle.dumps(detector)`` after any reading, restore,
    and the next outputs are identical.
    """

    #: When the open data gap reported by :meth:`check_silence` began (the last reading before
    #: it); a class default so checkpoints written before silence checks existed restore.
    silent_since: datetime | None = None

    def __init__(self, station: Station | None, config: DetectorConfig | None = None) -> None:
        self.station = station
        self.config = config or DetectorConfig()
        self.tracks: dict[str, ParameterTrack] = {}
        self.channels: dict[tuple[DetectionKind, str], _Channel] = {}
        self.recent: deque[Reading] = deque(maxlen=self.config.evidence_readings)
        self.hst: HalfSpaceTrees | None = None
        self.hst_features: frozenset[str] = frozenset()
        self.last_time: datetime | None = None
        self.interval_s = 0.0
        self.readings = 0
        #: Re-delivered or out-of-order readings that were not applied (at-least-once input).
        self.stale_readings = 0
        #: The combined spike score of the latest reading (replay and calibration read it).
        self.last_score = 0.0

    # -- public ---------------------------------------------------------------------------

    @property
    def in_pollution_event(self) -> bool:
        """True while any pollution event (spike, limit exceedance, class downgrade) is open."""
        return any(kind.is_pollution and c.latch.active for (kind, _), c in self.channels.items())

    def reconfigure(self, config: DetectorConfig) -> None:
        """Adopt new tuning (e.g. calibrated thresholds) keeping everything learned."""
        self.config = config
        spike = self.channels.get((_K.POLLUTION_SPIKE, _STATION_WIDE))
        if spike is not None and not spike.latch.active:
            spike.latch = EventLatch(config.spike_persistence)

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
        last = self.last_time
        if last is None or self.silent_since is not None or self.readings < 3 or not self.recent:
            return []
        silence = (watermark - last).total_seconds()
        config = self.config
        if silence <= max(config.silence_min_s, config.silence_intervals * self.interval_s):
            return []
        self.silent_since = last
        gap_id = event_id(self.recent[-1].station_id, _K.DATA_GAP.value, (), last)
        return [
            self._detection(
                self.recent[-1], _K.DATA_GAP, DetectionPhase.ONSET, gap_id, 0, (), score=silence,
                confidence=1.0, at=last, note=f"{silence / 60:.0f} min",
            )
        ]

    def process(self, reading: Reading) -> list[Detection]:
        """Score ``reading`` against the past, emit event transitions, then learn from it."""
        last = self.last_time
        if last is not None and reading.time <= last:
            self.stale_readings += 1
            return []
        out: list[Detection] = []
        if last is not None:
            self._track_interval(reading, last, out)
        self.last_time = reading.time
        self.readings += 1
        config = self.config
        hour = reading.time.hour
        diurnal = self.interval_s >= _DIURNAL_MIN_INTERVAL_S

        maintenance, flagged, values = self._sort_values(reading, hour, diurnal)
        eligible = self._screen(values)
        score = self._spike_score(eligible)
        self.last_score = score

        self._instrument_events(reading, maintenance, flagged, out)
        self._regulatory_events(reading, values, out)
        spike = self._channel(_K.POLLUTION_SPIKE, _STATION_WIDE, config.spike_persistence)
        threshold = config.spike_threshold
        firing = score >= threshold and bool(eligible)
        # An idle latch that does not fire stays idle: skip the step and its findings closure.
        if firing or not spike.latch.idle:
            self._drive(
                spike,
                _K.POLLUTION_SPIKE,
                reading,
                firing=firing,
                holding=score >= threshold * config.hold_ratio,
                score=score,
                describe=lambda params: self._spike_findings(reading, eligible, params),
                out=out,
            )

        # Learning never pauses for an open event: the clipped update already keeps a plume out
        # of the baseline, and scores that do not depend on the threshold make calibration exact.
        for _, track, value, z in values:
            track.learn(value, z, hour, diurnal, config)
        self.recent.append(reading)
        return out

    def _sort_values(self, reading: Reading, hour: int, diurnal: bool) -> tuple[list[str], set[str], list[_Value]]:
        """Instrument health first: maintenance-flagged and faulty names, then the clean values
        with their tracks and scores, in reading order."""
        config = self.config
        maintenance: list[str] = []
        flagged: set[str] = set()
        values: list[_Value] = []
        stuck_min = config.stuck_min_readings
        tracks = self.tracks
        normal = DataFlag.NORMAL
        for name, measurement in reading.values.items():
            flag = measurement.flag
            if flag is not normal:
                if flag in MAINTENANCE_FLAGS:
                    maintenance.append(name)
                    continue
                if flag in FAULT_FLAGS:
                    flagged.add(name)
                    continue
            value = measurement.value
            low, high = PLAUSIBLE_RANGES.get(name, ANY_VALUE)
            if not low <= value <= high:
                flagged.add(name)
                continue
            track = tracks.get(name)
            if track is None:
                track = tracks[name] = ParameterTrack()
            track.observe(value)
            if track.run >= stuck_min and track.stuck(
                stuck_min, config.stuck_min_change_rate, config.stuck_log_probability
            ):
                flagged.add(name)
                continue
            values.append((name, track, value, track.score(value, hour, diurnal)))
        return maintenance, flagged, values

    def _screen(self, values: list[_Value]) -> dict[str, float]:
        """Lone steps, then the warmed-up, healthy, non-hydrological parameters with how surprising
        their score is: one pass, since each step verdict depends only on its own track and on
        how many parameters moved."""
        config = self.config
        warmup, related, step_scales, floor = (
            config.warmup_readings, config.related_scales, config.step_scales, config.tail_floor
        )
        moving = sum(1 for name, _, _, z in values if abs(z) >= related and name not in HYDROLOGICAL)
        several = len(values) > 1
        eligible: dict[str, float] = {}
        for name, track, value, z in values:
            if track.n < warmup:
                continue
            if track.step_left > 0 or track.faulty or abs(z) >= step_scales:
                self._check_step(name, track, value, z, moving, several)
            if track.step_left == 0 and not track.faulty and name not in HYDROLOGICAL:
                eligible[name] = track.surprise(z, floor)
        return eligible

    # -- scoring ----------------------------------------------------------------------------

    def _spike_score(self, eligible: dict[str, float]) -> float:
        """Root-sum-square of how far each parameter is beyond half its usual range, raised by how
        isolated the joint state is (HST). A sum rather than the maximum: a spill usually moves
        several parameters a little (pH, conductivity, turbidity together), noise usually one a
        lot. Only the excess counts, so the score does not grow with how many parameters a
        station happens to measure."""
        if not eligible:
            return 0.0
        single = math.sqrt(sum((s - 0.5) ** 2 for s in eligible.values() if s > 0.5))
        config = self.config
        if config.hst_weight <= 0:
            return single
        features = {name: math.tanh(s / 4.0) for name, s in eligible.items()}
        if self.hst is None or not features.keys() <= self.hst_features:
            # Trees split on the features present when they are built; a new parameter needs new trees.
            self.hst = HalfSpaceTrees(
                n_trees=config.hst_trees,
                height=config.hst_height,
                window_size=config.hst_window,
                seed=config.seed,
                limits=dict.fromkeys(features.keys() | self.hst_features, (0.0, 1.0)),
            )
            self.hst_features = frozenset(features.keys() | self.hst_features)
        isolation = float(self.hst.score_one(features))  # type: ignore[no-untyped-call]
        # Learn only what looks normal, so a long plume does not fill the trees' mass profile. A fixed
        # bar, not the spike threshold, so the scores do not depend on it and calibration is exact.
        if single < config.hst_learn_below:
            self.hst.learn_one(features)  # type: ignore[no-untyped-call]
        return single * (1.0 + config.hst_weight * max(0.0, isolation - 0.5))

    def _check_step(self, name: str, track: ParameterTrack, value: float, z: float, moving: int, several: bool) -> None:
        """A lone clean step (jump, then a flat new level, nothing related moving) is the instrument.
        ``moving`` counts the parameters that moved (see :meth:`_screen`), this one included."""
        config = self.config
        others_moving = moving - (abs(z) >= config.related_scales and name not in HYDROLOGICAL) > 0
        if track.step_left > 0:
            if others_moving or abs(value - track.step_level) > 3.0 * track.noise():
                track.step_left = 0
            else:
                track.step_left -= 1
                track.faulty = track.step_left == 0
        elif track.faulty:
            if others_moving or abs(z) < config.related_scales:
                track.faulty = False
        elif abs(z) >= config.step_scales and not others_moving and several:
            track.step_left = config.step_confirm_readings
            track.step_level = value

    # -- events -----------------------------------------------------------------------------

    def _track_interval(self, reading: Reading, last: datetime, out: list[Detection]) -> None:
        gap = (reading.time - last).total_seconds()
        config = self.config
        # A gap whose onset check_silence already reported only clears, even if it turned out
        # shorter than gap_intervals (the silence rule is the earlier warning).
        reported = self.silent_since is not None
        if reported or (self.readings >= 3 and gap > max(config.gap_min_s, config.gap_intervals * self.interval_s)):
            self.silent_since = None
            gap_id = event_id(reading.station_id, _K.DATA_GAP.value, (), last)
            phases = ((DetectionPhase.ONSET, last), (DetectionPhase.CLEARED, reading.time))
            for phase, at in phases[1:] if reported else phases:
                out.append(
                    self._detection(
                        reading, _K.DATA_GAP, phase, gap_id, 0, (), score=gap, confidence=1.0, at=at,
                        note=f"{gap / 60:.0f} min",
                    )
                )
            return
        self.interval_s = gap if self.interval_s == 0 else self.interval_s + 0.05 * (gap - self.interval_s)

    def _instrument_events(
        self, reading: Reading, maintenance: list[str], flagged: set[str], out: list[Detection]
    ) -> None:
        persistence = self.config.fault_persistence
        channel = self._channel(_K.MAINTENANCE, _STATION_WIDE, persistence)
        if maintenance or not channel.latch.idle:
            self._drive(
                channel, _K.MAINTENANCE, reading, firing=bool(maintenance), holding=False,
                score=float(len(maintenance)), describe=self._fixed(reading, tuple(sorted(maintenance))), out=out,
            )
        tracks = self.tracks
        if flagged:
            for name in flagged - tracks.keys():
                # Impossible or fault-flagged before the parameter ever delivered a good value.
                tracks[name] = ParameterTrack()
        channels = self.channels
        sensor_fault = _K.SENSOR_FAULT
        for name, track in tracks.items():
            faulty = name in flagged or track.faulty
            if not faulty:
                open_channel = channels.get((sensor_fault, name))
                if open_channel is None or open_channel.latch.idle:
                    continue
            if name not in reading.values:
                continue
            self._drive(
                self._channel(_K.SENSOR_FAULT, name, persistence), _K.SENSOR_FAULT, reading, firing=faulty,
                holding=False, score=1.0, describe=self._fixed(reading, (name,)), out=out,
            )

    def _regulatory_events(self, reading: Reading, values: list[_Value], out: list[Detection]) -> None:
        station = self.station
        if station is None:
            return
        persistence = self.config.limit_persistence
        target = station.target_class
        bands = _compliant_bands(target)
        channels = self.channels
        exceeding: list[str] = []  # fresh values over the target-class limit
        near = False
        for name, track, value, _ in values:
            band = bands.get(name)
            if band is None:
                continue
            low, high = band
            compliant = low <= value <= high
            key = (_K.LIMIT_EXCEEDANCE, name)
            if compliant and key not in channels:
                continue
            fresh_excess = not compliant and track.fresh
            if fresh_excess:
                exceeding.append(name)
            holding = _near_limit(band, value)
            near = near or holding
            # Created at the first excess even if not fresh: from then on the parameter counts
            # towards ``near``. Driven only while its latch can change (see process).
            channel = self._channel(_K.LIMIT_EXCEEDANCE, name, persistence)
            if fresh_excess or not channel.latch.idle:
                self._drive(
                    channel, _K.LIMIT_EXCEEDANCE, reading, firing=fresh_excess, holding=holding,
                    score=exceedance_multiple(name, value, target) or 0.0, describe=self._fixed(reading, (name,)),
                    out=out,
                )
        # Single-factor method: the section is worse than its target exactly when one assessed
        # value exceeds its target-class limit, so the class itself is only computed to report it.
        # Repeats of a continuously varying signal are not new evidence (see ParameterTrack.fresh).
        downgrade = channels.get((_K.CLASS_DOWNGRADE, _STATION_WIDE))
        if exceeding or (downgrade is not None and not downgrade.latch.idle):  # idle: as in process
            worst = section_class({name: value for name, _, value, _ in values}) or target
            self._drive(
                self._channel(_K.CLASS_DOWNGRADE, _STATION_WIDE, persistence), _K.CLASS_DOWNGRADE, reading,
                firing=bool(exceeding), holding=near, score=float(worst),
                describe=self._fixed(reading, tuple(sorted(exceeding))), out=out,
                note=f"{worst.roman}类 (目标 {target.roman}类)",
            )
        min_flow = station.min_flow_m3s
        if min_flow is None:
            return
        flow = next((v for name, _, v, _ in values if name == "discharge"), None)
        if flow is None:
            return
        low_flow = flow < min_flow
        flow_channel = channels.get((_K.ECOLOGICAL_FLOW_LOW, _STATION_WIDE))
        if low_flow or (flow_channel is not None and not flow_channel.latch.idle):
            self._drive(
                self._channel(_K.ECOLOGICAL_FLOW_LOW, _STATION_WIDE, persistence), _K.ECOLOGICAL_FLOW_LOW, reading,
                firing=low_flow, holding=False, score=min_flow / max(flow, 1e-9),
                describe=lambda _: (Finding(parameter="discharge", value=flow, limit=min_flow, unit="m3/s"),),
                out=out,
            )

    def _channel(self, kind: DetectionKind, key: str, persistence: Persistence) -> _Channel:
        channel = self.channels.get((kind, key))
        if channel is None:
            channel = self.channels[(kind, key)] = _Channel(persistence)
        return channel

    def _drive(
        self,
        channel: _Channel,
        kind: DetectionKind,
        reading: Reading,
        *,
        firing: bool,
        holding: bool,
        score: float,
        describe: Describe,
        out: list[Detection],
        note: str = "",
    ) -> None:
        latch = channel.latch
        transition: Transition | None = latch.step(firing=firing, holding=holding)
        if transition == "onset":
            findings = describe(None)
            channel.parameters = tuple(sorted({f.parameter for f in findings}))
            channel.event_id = event_id(reading.station_id, kind.value, channel.parameters, reading.time)
            channel.seq = 0
            channel.since_emit = 0
            channel.open_readings = 0
            channel.emitted_peak = score
            evidence = (*list(self.recent)[-(self.config.evidence_readings - 1) :], reading)
            out.append(self._detection(
                reading, kind, DetectionPhase.ONSET, channel.event_id, 0, findings, score=score,
                readings=evidence if self.config.evidence_readings > 1 else (reading,), note=note,
            ))
        elif transition == "cleared":
            channel.seq += 1
            out.append(self._detection(
                reading, kind, DetectionPhase.CLEARED, channel.event_id, channel.seq, describe(channel.parameters),
                score=score, note=note,
            ))
        elif latch.active:
            channel.open_readings += 1
            channel.since_emit += 1
            config = self.config
            if channel.since_emit >= config.update_every or score > channel.emitted_peak * config.update_growth:
                channel.seq += 1
                channel.since_emit = 0
                channel.emitted_peak = max(channel.emitted_peak, score)
                out.append(self._detection(
                    reading, kind, DetectionPhase.UPDATE, channel.event_id, channel.seq, describe(None),
                    score=score, note=note,
                ))

    # -- findings and messages ----------------------------------------------------------------

    def _fixed(self, reading: Reading, parameters: tuple[str, ...]) -> Describe:
        return lambda _: self._value_findings(reading, parameters)

    def _spike_findings(
        self, reading: Reading, eligible: dict[str, float], parameters: tuple[str, ...] | None
    ) -> tuple[Finding, ...]:
        if parameters is None:
            bar = self.config.spike_threshold * self.config.hold_ratio
            parameters = tuple(n for n, s in eligible.items() if s >= bar)
            if not parameters and eligible:
                parameters = (max(eligible, key=lambda n: eligible[n]),)
        return self._value_findings(reading, parameters)

    def _value_findings(self, reading: Reading, parameters: tuple[str, ...]) -> tuple[Finding, ...]:
        findings = []
        target = self.station.target_class if self.station else None
        for name in parameters:
            measurement = reading.values.get(name)
            if measurement is None:
                continue
            track = self.tracks.get(name)
            spec = PARAMETERS.get(name)
            limit = gb3838_limit(name, target) if target is not None else None
            multiple = exceedance_multiple(name, measurement.value, target) if target is not None else None
            findings.append(
                Finding(
                    parameter=name,
                    value=measurement.value,
                    baseline=track.level if track is not None and track.n > 0 else None,
                    limit=limit,
                    target_class=target if limit is not None else None,
                    multiple=multiple if limit is not None else None,
                    unit=spec.unit if spec else "",
                )
            )
        return tuple(findings)

    def _detection(
        self,
        reading: Reading,
        kind: DetectionKind,
        phase: DetectionPhase,
        event: str,
        seq: int,
        findings: tuple[Finding, ...],
        *,
        score: float,
        confidence: float | None = None,
        readings: tuple[Reading, ...] = (),
        at: datetime | None = None,
        note: str = "",
    ) -> Detection:
        if confidence is None:
            confidence = spike_confidence(score, self.config.spike_threshold) if kind is _K.POLLUTION_SPIKE else 1.0
        return Detection(
            detection_id=f"{event}-{phase.value}-{seq}",
            event_id=event,
            station_id=reading.station_id,
            river=reading.river,
            section=reading.section or (self.station.section if self.station else None),
            time=at or reading.time,
            kind=kind,
            phase=phase,
            findings=findings,
            score=round(score, 6),
            confidence=confidence,
            detector=f"{DETECTOR_NAME}/{kind.value}",
            readings=readings or (reading,),
            message=message(reading, self.station, kind, phase, findings, note),
        )


def _near_limit(band: tuple[float, float], value: float) -> bool:
    """Within 10 % of the limit on the wrong side: water hovering at the limit keeps one event
    open instead of opening a new one every time a reading crosses it."""
    low, high = band
    over, under = value * _LIMIT_HYSTERESIS, value / _LIMIT_HYSTERESIS
    return not (low <= over <= high and low <= under <= high)


@cache
def _compliant_bands(target: WaterClass) -> dict[str, tuple[float, float]]:
    """Per target class, the compliant band of every assessed parameter (shared by its stations)."""
    return {name: band for name in PARAMETERS if (band := compliant_band(name, target)) is not None}
