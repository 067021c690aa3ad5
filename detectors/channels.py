"""Event logic of one station: per-reading verdicts in, event-level detections out.

Each check (instrument health, regulatory limits, spike scoring) says per reading, as a
:class:`Verdict`, whether its condition fires for one kind of event on one parameter (or
station-wide). The :class:`EventBook` keeps one channel per kind and key — an
:class:`~detectors.events.EventLatch` and the event it has open — and turns the verdicts into
onset, update and cleared detections with stable ids and the messages a duty officer reads.

>>> from datetime import datetime, timedelta, timezone
>>> from detectors.config import DetectorConfig
>>> from riverguard.models import DetectionKind, Measurement, Reading, SourceFormat
>>> book = EventBook(None, DetectorConfig(), {})
>>> t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
>>> def reading(i):
...     return Reading(station_id="demo", river="tuo", time=t0 + timedelta(minutes=i),
...                    values={"pH": Measurement(value=7.8)}, source_format=SourceFormat.SIMULATOR)
>>> out = []
>>> for i, fault in enumerate([True, True, False, False, False]):
...     book.step(Verdict(DetectionKind.SENSOR_FAULT, "pH", fault, False, 1.0, ("pH",)), reading(i), out)
>>> [(d.kind.value, d.phase.value, d.time.minute) for d in out]
[('sensor_fault', 'onset', 0), ('sensor_fault', 'cleared', 4)]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, NamedTuple

from detectors.baseline import ParameterTrack
from detectors.config import DetectorConfig, Persistence
from detectors.events import EventLatch, Transition, event_id
from detectors.findings import value_findings
from detectors.messages import message, spike_confidence
from detectors.state import ChannelState
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding, Reading
from riverguard.parameters import WaterClass
from riverguard.stations import Station

DETECTOR_NAME: Final = "riverguard.detectors"
#: The key of an event about the whole station rather than one parameter.
STATION_WIDE: Final = "*"
_K = DetectionKind

#: Kinds that are about the instrument, not the water.
_INSTRUMENT: Final = frozenset({_K.SENSOR_FAULT, _K.MAINTENANCE})

#: Findings of an event: for its onset and updates (``None``) or for the parameters it opened with.
Describe = Callable[[tuple[str, ...] | None], tuple[Finding, ...]]


class Verdict(NamedTuple):
    """One check's say about one reading, for one kind of event on one key."""

    kind: DetectionKind
    key: str
    firing: bool
    #: The lower bar that keeps an open event open (hysteresis).
    holding: bool
    score: float
    #: Parameters the findings name, unless ``describe`` says otherwise.
    parameters: tuple[str, ...] = ()
    describe: Describe | None = None
    note: str = ""
    #: The channel's persistence when it is created (default: the kind's).
    persistence: Persistence | None = None
    #: Which problem of its kind (a sensor fault's :class:`~detectors.faults.FaultType` value).
    subtype: str = ""
    #: The upstream station whose report this evidence follows.
    upstream: str = ""


class Channel:
    """One kind of event on one key: its latch and its open event."""

    __slots__ = ("emitted_peak", "event_id", "latch", "open_readings", "parameters", "seq", "since_emit")

    def __init__(self, latch: EventLatch) -> None:
        self.latch = latch
        self.event_id = ""
        self.parameters: tuple[str, ...] = ()
        self.seq = 0
        self.since_emit = 0
        self.emitted_peak = 0.0
        self.open_readings = 0

    def snapshot(self, kind: DetectionKind, key: str) -> ChannelState:
        return ChannelState(
            kind=kind, key=key, latch=self.latch.snapshot(), event_id=self.event_id, parameters=self.parameters,
            seq=self.seq, since_emit=self.since_emit, emitted_peak=self.emitted_peak,
            open_readings=self.open_readings,
        )

    @classmethod
    def restore(cls, state: ChannelState) -> Channel:
        channel = cls(EventLatch.restore(state.latch))
        channel.event_id = state.event_id
        channel.parameters = state.parameters
        channel.seq = state.seq
        channel.since_emit = state.since_emit
        channel.emitted_peak = state.emitted_peak
        channel.open_readings = state.open_readings
        return channel


class EventBook:
    """The channels of one station, the readings kept as evidence, and how detections read."""

    def __init__(
        self, station: Station | None, config: DetectorConfig, tracks: Mapping[str, ParameterTrack]
    ) -> None:
        self.station = station
        self.tracks = tracks
        self.channels: dict[tuple[DetectionKind, str], Channel] = {}
        #: The channels that are not idle (kept with every step: checked for every parameter and kind).
        self.live_keys: set[tuple[DetectionKind, str]] = set()
        self.recent: deque[Reading] = deque(maxlen=config.evidence_readings)
        self.reconfigure(config)

    def reconfigure(self, config: DetectorConfig) -> None:
        """New tuning; an idle spike channel adopts the new spike persistence at once."""
        self.config = config
        limit, fault = config.limit_persistence, config.fault_persistence
        self._persistence: dict[DetectionKind, Persistence] = {
            _K.POLLUTION_SPIKE: config.spike_persistence, _K.LIMIT_EXCEEDANCE: limit, _K.CLASS_DOWNGRADE: limit,
            _K.ECOLOGICAL_FLOW_LOW: limit, _K.SENSOR_FAULT: fault, _K.MAINTENANCE: fault,
        }
        spike = self.channels.get((_K.POLLUTION_SPIKE, STATION_WIDE))
        if spike is not None and not spike.latch.active:
            spike.latch = EventLatch(config.spike_persistence)
            self.live_keys.discard((_K.POLLUTION_SPIKE, STATION_WIDE))

    def live(self, kind: DetectionKind, key: str) -> bool:
        """True when a verdict that does not fire can still change this channel (it is not idle)."""
        return (kind, key) in self.live_keys

    def is_open(self, kind: DetectionKind, key: str) -> bool:
        channel = self.channels.get((kind, key))
        return channel is not None and channel.latch.active

    @property
    def in_pollution_event(self) -> bool:
        """True while any pollution event (spike, limit exceedance, class downgrade) is open."""
        return any(kind.is_pollution and c.latch.active for (kind, _), c in self.channels.items())

    @property
    def in_instrument_event(self) -> bool:
        """True while a sensor fault or maintenance event is open."""
        return any(kind in _INSTRUMENT and c.latch.active for (kind, _), c in self.channels.items())

    def open_events(self) -> list[str]:
        """What is open: the kinds, sensor faults with their type (``sensor_fault/level_shift``)."""
        return [
            f"{kind.value}/{key.rpartition('/')[2]}" if kind is _K.SENSOR_FAULT else kind.value
            for (kind, key), channel in self.channels.items()
            if channel.latch.active
        ]

    def remember(self, reading: Reading) -> None:
        """Keep ``reading`` as evidence for the next detections."""
        self.recent.append(reading)

    def step(self, verdict: Verdict, reading: Reading, out: list[Detection]) -> None:
        """Feed one verdict to its channel and append the detection its transition emits, if any."""
        kind = verdict.kind
        channel = self.channels.get((kind, verdict.key))
        if channel is None:
            persistence = verdict.persistence or self._persistence[kind]
            channel = self.channels[(kind, verdict.key)] = Channel(EventLatch(persistence))
        latch = channel.latch
        transition: Transition | None = latch.step(firing=verdict.firing, holding=verdict.holding)
        if latch.idle:
            self.live_keys.discard((kind, verdict.key))
        else:
            self.live_keys.add((kind, verdict.key))
        score = verdict.score
        if transition == "onset":
            findings = self._findings(verdict, reading, None)
            channel.parameters = tuple(sorted({f.parameter for f in findings}))
            channel.event_id = event_id(reading.station_id, kind.value, channel.parameters, reading.time)
            channel.seq = 0
            channel.since_emit = 0
            channel.open_readings = 0
            channel.emitted_peak = score
            evidence_readings = self.config.evidence_readings
            evidence = (*list(self.recent)[-(evidence_readings - 1) :], reading) if evidence_readings > 1 else ()
            out.append(self.detection(
                reading, kind, DetectionPhase.ONSET, channel.event_id, 0, findings, score=score,
                readings=evidence, note=verdict.note, subtype=verdict.subtype, upstream=verdict.upstream,
            ))
        elif transition == "cleared":
            channel.seq += 1
            out.append(self.detection(
                reading, kind, DetectionPhase.CLEARED, channel.event_id, channel.seq,
                self._findings(verdict, reading, channel.parameters), score=score, note=verdict.note,
                subtype=verdict.subtype,
            ))
        elif latch.active:
            channel.open_readings += 1
            channel.since_emit += 1
            config = self.config
            if channel.since_emit >= config.update_every or score > channel.emitted_peak * config.update_growth:
                channel.seq += 1
                channel.since_emit = 0
                channel.emitted_peak = max(channel.emitted_peak, score)
                out.append(self.detection(
                    reading, kind, DetectionPhase.UPDATE, channel.event_id, channel.seq,
                    self._findings(verdict, reading, None), score=score, note=verdict.note,
                    subtype=verdict.subtype,
                ))

    def _findings(self, verdict: Verdict, reading: Reading, opened: tuple[str, ...] | None) -> tuple[Finding, ...]:
        if verdict.describe is not None:
            return verdict.describe(opened)
        return value_findings(reading, verdict.parameters, self.target, self.tracks)

    @property
    def target(self) -> WaterClass | None:
        return self.station.target_class if self.station else None

    def detection(
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
        subtype: str = "",
        upstream: str = "",
    ) -> Detection:
        """A detection of this station (``readings``: its evidence, by default ``reading`` alone)."""
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
            detector=f"{DETECTOR_NAME}/{kind.value}/{subtype}" if subtype else f"{DETECTOR_NAME}/{kind.value}",
            readings=readings or (reading,),
            message=message(reading, self.station, kind, phase, findings, note, subtype, upstream),
        )

    def snapshot(self) -> list[ChannelState]:
        return [channel.snapshot(kind, key) for (kind, key), channel in self.channels.items()]

    def restore(self, channels: list[ChannelState], recent: list[Reading]) -> None:
        self.channels = {(c.kind, c.key): Channel.restore(c) for c in channels}
        self.live_keys = {key for key, channel in self.channels.items() if not channel.latch.idle}
        self.recent.clear()
        self.recent.extend(recent)
