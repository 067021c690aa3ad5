"""A pure generator of realistic station telemetry, with injected spills and sensor faults.

No I/O and no wall clock: the embedded demo drives it in simulated time, ``riverguard simulate``
publishes it over MQTT, and detector tests compare what they find with :attr:`Simulator.events`,
the ground truth of what was injected.

The water: diurnal cycles (temperature peaks mid-afternoon; DO follows it inversely — warmer
water holds less oxygen; pH rises a little with daytime photosynthesis), noise, slow mean-reverting
drift of every parameter, discharge around its typical value. The instruments: stuck values, a
spike of one parameter only, fault (D) windows, maintenance (M, all parameters) and calibration
(C, one parameter) windows. Spills: a pulse of one pollutant at a station (or river-km) that
travels downstream to the next stations of the same river — the registry lists them upstream to
downstream — delayed by distance / velocity, lower and longer the further it goes.

Positions are not in the registry (they live in the playbooks package, which ingest must not
import), so consecutive stations are assumed ``station_spacing_km`` apart; velocities are
~1 m/s on free-flowing rivers and ~0.2 m/s on the Jialing's cascade reservoirs (DESIGN.md §4).

>>> from datetime import datetime, timedelta, UTC
>>> from riverguard.stations import load_registry
>>> start = datetime(2024, 7, 1, tzinfo=UTC)
>>> spill = Spill(river="tuo", station_id="tuo-hongyuan", pollutant="NH3N", start=start + timedelta(hours=1),
...               duration=timedelta(hours=1), peak_multiple=8)
>>> sim = Simulator(load_registry(), seed=1, start=start, spills=[spill], faults=False)
>>> [(e.station_id, e.start - spill.start) for e in sim.events][:2]
[('tuo-hongyuan', datetime.timedelta(0)), ('tuo-sanhuangmiao', datetime.timedelta(seconds=40000))]
>>> readings = list(sim.readings(until=start + timedelta(hours=2)))
>>> len(readings) == 120 * len(load_registry().stations)
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from riverguard.models import DataFlag, Measurement, Reading, SourceFormat
from riverguard.parameters import PARAMETERS
from riverguard.stations import Station, StationRegistry
from riverguard.timekeeping import BEIJING, parse_duration

DEFAULT_SPEED_M_S: Final = 1.0
#: Rivers whose reaches are mostly reservoirs (Jialing cascade: roughly 0.1-0.3 m/s).
RESERVOIR_SPEED_M_S: Final = {"jialing": 0.2}
#: Mean time between instrument events per station (the probability per step follows).
FAULT_INTERVALS: Final = {
    "spike": timedelta(days=1),
    "stuck": timedelta(days=3),
    "fault_flag": timedelta(days=4),
    "calibration": timedelta(days=5),
    "maintenance": timedelta(days=7),
}


class EventKind(StrEnum):
    SPILL_ARRIVAL = "spill_arrival"
    SPIKE = "spike"
    STUCK = "stuck"
    FAULT_FLAG = "fault_flag"
    CALIBRATION = "calibration"
    MAINTENANCE = "maintenance"

    @property
    def is_pollution(self) -> bool:
        return self is EventKind.SPILL_ARRIVAL


@dataclass(frozen=True, slots=True)
class Spill:
    """A release of ``pollutant`` at a station (or ``river_km`` from the river's first station).

    ``peak_multiple``: the peak concentration at the release point as a multiple of the
    station's typical value.
    """

    river: str
    pollutant: str
    start: datetime
    duration: timedelta
    peak_multiple: float
    station_id: str | None = None
    river_km: float | None = None

    @classmethod
    def parse(cls, text: str, now: datetime) -> Spill:
        """``river:station_id|km:pollutant:start:duration:peak_multiple`` with start ``+10m`` (from
        ``now``) or ISO time, durations like ``30m``, ``2h``, ``90s``.

        >>> from datetime import datetime, UTC
        >>> s = Spill.parse("tuo:tuo-sanhuangmiao:NH3N:+10m:30m:8", datetime(2024, 1, 1, tzinfo=UTC))
        >>> s.start.isoformat(), s.duration, s.peak_multiple
        ('2024-01-01T00:10:00+00:00', datetime.timedelta(seconds=1800), 8.0)
        >>> Spill.parse("min:12.5:Cd:+0s:1h:20", datetime(2024, 1, 1, tzinfo=UTC)).river_km
        12.5
        """
        parts = text.split(":")
        if len(parts) != 6:
            raise ValueError(f"spill {text!r} must be river:station|km:pollutant:start:duration:peak_multiple")
        river, where, pollutant, start, duration, multiple = parts
        if pollutant not in PARAMETERS:
            raise ValueError(f"spill {text!r}: unknown pollutant {pollutant!r}")
        try:
            km = float(where.removeprefix("km"))
        except ValueError:
            km = None
        when = now + parse_duration(start[1:]) if start.startswith("+") else datetime.fromisoformat(start)
        if when.tzinfo is None:
            raise ValueError(f"spill {text!r}: start {start!r} needs a time zone")
        try:
            peak = float(multiple)
        except ValueError as exc:
            raise ValueError(f"spill {text!r}: peak multiple {multiple!r} is not a number") from exc
        lasts = parse_duration(duration)
        if lasts <= timedelta(0):
            raise ValueError(f"spill {text!r}: the release must last longer than {duration!r}")
        return cls(river, pollutant, when, lasts, peak, None if km is not None else where, km)


@dataclass(frozen=True, slots=True)
class InjectedEvent:
    """Ground truth: something the simulator put into the data, where and when."""

    kind: EventKind
    station_id: str
    start: datetime
    end: datetime
    parameter: str | None = None
    #: For spill arrivals: the peak value (canonical units) the pulse reaches at this station.
    peak: float | None = None
    spill: Spill | None = None


@dataclass(slots=True)
class _Arrival:
    event: InjectedEvent
    excess: float  # peak excess over the baseline


@dataclass(slots=True)
class _StationState:
    station: Station
    rng: random.Random
    drift: dict[str, float]
    arrivals: list[_Arrival] = field(default_factory=list)
    active: list[InjectedEvent] = field(default_factory=list)
    stuck_values: dict[str, float] = field(default_factory=dict)


class Simulator:
    """``readings()`` yields one reading per station per ``step``, in time order."""

    def __init__(
        self,
        registry: StationRegistry,
        *,
        seed: int = 0,
        start: datetime,
        step: timedelta = timedelta(minutes=1),
        spills: Sequence[Spill] = (),
        faults: bool = True,
        stations: Sequence[str] | None = None,
        station_spacing_km: float = 40.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if step <= timedelta(0):
            raise ValueError(f"step must be positive, got {step}")
        chosen = [registry.by_id[s] for s in stations] if stations is not None else list(registry.stations)
        self.registry = registry
        self.start = start
        self.step = step
        self.faults = faults
        self.station_spacing_km = station_spacing_km
        self._states = [
            _StationState(s, random.Random(f"{seed}:{s.station_id}"), dict.fromkeys(s.parameters, 0.0))
            for s in chosen
        ]
        self.events: list[InjectedEvent] = []
        for spill in spills:
            self._plan_spill(spill)

    def _plan_spill(self, spill: Spill) -> None:
        on_river = self.registry.on_river(spill.river)
        if not on_river:
            raise ValueError(f"spill on unknown river {spill.river!r}")
        positions = {s.station_id: index * self.station_spacing_km for index, s in enumerate(on_river)}
        if spill.station_id is not None:
            if spill.station_id not in positions:
                raise ValueError(f"spill station {spill.station_id!r} is not on the {spill.river}")
            origin = positions[spill.station_id]
        else:
            origin = spill.river_km or 0.0
        speed = RESERVOIR_SPEED_M_S.get(spill.river, DEFAULT_SPEED_M_S)
        states = {state.station.station_id: state for state in self._states}
        for station in on_river:
            distance = positions[station.station_id] - origin
            state = states.get(station.station_id)
            if distance < 0 or state is None or spill.pollutant not in station.parameters:
                continue
            # Dispersion: further down the pulse is lower and longer (roughly conserving its load).
            stretch = 1 + distance / 150.0
            baseline = station.typical.get(spill.pollutant, _default_typical(spill.pollutant))
            excess = (spill.peak_multiple - 1) * baseline * math.exp(-distance / 300.0) / stretch
            arrival = spill.start + timedelta(seconds=distance * 1000 / speed)
            event = InjectedEvent(
                EventKind.SPILL_ARRIVAL, station.station_id, arrival, arrival + spill.duration * stretch,
                spill.pollutant, _significant(baseline + excess), spill,
            )
            self.events.append(event)
            state.arrivals.append(_Arrival(event, excess))

    def readings(self, until: datetime | None = None) -> Iterator[Reading]:
        """Readings from ``start`` every ``step`` until ``until`` (exclusive), or forever."""
        time = self.start
        while until is None or time < until:
            for state in self._states:
                yield self._reading(state, time)
            time += self.step

    def _reading(self, state: _StationState, time: datetime) -> Reading:
        station, rng = state.station, state.rng
        if self.faults:
            self._maybe_start_fault(state, time)
        state.active = [e for e in state.active if e.end > time]
        local = time.astimezone(BEIJING)
        hour = local.hour + local.minute / 60
        daily = math.cos(2 * math.pi * (hour - 15) / 24)  # 1 at 15:00 Beijing time
        for name in state.drift:
            state.drift[name] = 0.999 * state.drift[name] + rng.gauss(0, 0.002)
        typical = {p: station.typical.get(p, _default_typical(p)) for p in station.parameters}
        values: dict[str, float] = {}
        warming = 0.0
        for name in station.parameters:
            base, drift, noise = typical[name], state.drift[name], rng.gauss(0, 1)
            if name == "temperature":
                warming = 2.0 * daily + 20 * drift + 0.05 * noise
                value = base + warming
            elif name == "pH":
                value = base + 0.12 * daily + 2 * drift + 0.02 * noise
            elif name == "DO":
                # Drift amplitudes give ~7 % (DO) and ~9 % (concentrations) standard deviation over
                # days: real stations wander that much; more would push typical water over limits.
                value = base * (1 + 1.5 * drift) + 0.01 * noise
            else:
                value = base * math.exp(0.04 * noise + 2 * drift)
            values[name] = value
        if "DO" in values:
            values["DO"] -= 0.25 * warming  # warmer water holds less oxygen
        for arrival in state.arrivals:
            event = arrival.event
            if event.start <= time < event.end and event.parameter in values:
                phase = (time - event.start) / (event.end - event.start)
                values[event.parameter] += arrival.excess * math.sin(math.pi * phase) ** 2
        flags = dict.fromkeys(values, DataFlag.NORMAL)
        self._apply_faults(state, time, values, flags)
        measurements = {}
        for name, value in values.items():
            low, high = PARAMETERS[name].physical_range
            measurements[name] = Measurement(value=_significant(min(max(value, low), high)), flag=flags[name])
        return Reading(
            station_id=station.station_id, river=station.river, time=time, values=measurements,
            source_format=SourceFormat.SIMULATOR, section=station.section,
        )

    def _maybe_start_fault(self, state: _StationState, time: datetime) -> None:
        rng, station = state.rng, state.station
        for name, interval in FAULT_INTERVALS.items():
            if rng.random() >= self.step / interval:
                continue
            kind = EventKind(name)
            parameter = None if kind is EventKind.MAINTENANCE else rng.choice(station.parameters)
            length = {
                EventKind.SPIKE: self.step,
                EventKind.STUCK: timedelta(hours=rng.uniform(1, 6)),
                EventKind.FAULT_FLAG: timedelta(minutes=rng.uniform(30, 120)),
                EventKind.CALIBRATION: timedelta(minutes=rng.uniform(20, 40)),
                EventKind.MAINTENANCE: timedelta(hours=rng.uniform(1, 2)),
            }[kind]
            event = InjectedEvent(kind, station.station_id, time, time + max(length, self.step), parameter)
            self.events.append(event)
            state.active.append(event)
            if kind is EventKind.STUCK and parameter is not None:
                state.stuck_values.pop(parameter, None)

    def _apply_faults(
        self, state: _StationState, time: datetime, values: dict[str, float], flags: dict[str, DataFlag]
    ) -> None:
        for event in state.active:
            name = event.parameter
            if event.kind is EventKind.MAINTENANCE:
                flags.update(dict.fromkeys(flags, DataFlag.MAINTENANCE))
            elif name is None or name not in values:
                continue
            elif event.kind is EventKind.STUCK:
                values[name] = state.stuck_values.setdefault(name, values[name])
            elif event.kind is EventKind.SPIKE:
                values[name] = values[name] + 1.5 if name == "pH" else values[name] * state.rng.uniform(3, 8)
            elif event.kind is EventKind.FAULT_FLAG:
                flags[name] = DataFlag.FAULT
            elif event.kind is EventKind.CALIBRATION:
                flags[name] = DataFlag.CALIBRATION


def _default_typical(parameter: str) -> float:
    spec = PARAMETERS[parameter]
    if spec.limits is not None and spec.limits.kind == "max":
        return spec.limits.values[1] / 2  # half the class II limit: clean water
    return {"pH": 7.8, "DO": 8.0, "temperature": 18.0, "conductivity": 350.0, "turbidity": 20.0}.get(parameter, 1.0)


def _significant(value: float) -> float:
    return float(f"{value:.5g}")
