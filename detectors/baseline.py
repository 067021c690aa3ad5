"""Per-parameter streaming baseline and instrument health statistics.

The baseline is an exponentially weighted level with a robust noise scale, updated with
deviations clipped at a few scales (a Huber-style update): a plume moves it only slowly, while
genuine slow drift (seasons, a sensor ageing) is followed. Stations that report every few hours
also get an hour-of-day component, because their level cannot follow the diurnal cycle of DO,
pH and temperature; minute-rate stations follow it with the level alone.

Plain arithmetic on a slotted object rather than a chain of ``river.stats`` objects: the clipped
update needs the current scale inside the mean update, and the stack must stay above 10,000
readings/s per process (see ``bench/detect.py``).

>>> from detectors.config import DetectorConfig
>>> track, config = ParameterTrack(), DetectorConfig()
>>> for i in range(200):
...     value = 10.0 + (0.1 if i % 2 else -0.1)
...     track.learn(value, track.score(value, 0, False), hour=0, diurnal=False, config=config)
>>> round(track.level, 1), round(track.score(10.1, 0, False), 1) < 2, track.score(12.0, 0, False) > 10
(10.0, True, True)
"""

from __future__ import annotations

import math
import struct
from typing import Final

from river.stats import Quantile

from detectors.config import DetectorConfig
from detectors.state import QuantileState, TrackState

_HOURS = 24
#: river's P² quantile (Rust, from the watermill crate) has no public state accessor; its pickle
#: state is this fixed little-endian record: q, the five marker increments, desired positions,
#: positions and heights, then how many heights are filled and whether they are sorted. It is
#: converted to and from named fields here (tests/unit/test_detect_state.py pins the layout, so a
#: river upgrade that changes it fails the tests instead of restoring wrong quantiles).
_P2_LAYOUT: Final = struct.Struct("<21dB?")


class ParameterTrack:
    """What the detector knows about one parameter of one station."""

    __slots__ = (
        "change_rate",
        "diurnal",
        "dn",
        "dscale",
        "held",
        "jump",
        "last_z",
        "level",
        "n",
        "prev",
        "quantum",
        "run",
        "run_rate",
        "scale",
        "tail",
        "unit",
        "usual",
    )

    def __init__(self) -> None:
        self.n = 0
        self.level = 0.0
        self.scale = 0.0
        self.quantum = math.inf
        self.prev: float | None = None
        self.diurnal = [0.0] * _HOURS
        self.change_rate = 1.0
        self.run = 0
        self.run_rate = 1.0
        #: How much the value usually changes from one reading to the next (a clipped running mean of
        #: |change|, like the noise scale), over ``dn`` changes; and the latest change in those units.
        self.dscale = 0.0
        self.dn = 0
        self.jump = 0.0
        self.unit = 1e-9
        #: How large deviations of this parameter usually get (river's P² quantile of |score|):
        #: heavy-tailed signals (flow pulses, turbidity flicker) need a bigger deviation to surprise.
        #: The 95th rather than the 99th percentile, because events themselves can be 1 % of a record.
        self.tail = Quantile(0.95)
        #: The tail's current value (0 before it has one), kept because it is read on every reading.
        self.usual = 0.0

    def snapshot(self) -> TrackState:
        return TrackState(
            n=self.n, level=self.level, scale=self.scale, quantum=None if self.quantum == math.inf else self.quantum,
            prev=self.prev, diurnal=tuple(self.diurnal), change_rate=self.change_rate, run=self.run,
            run_rate=self.run_rate, dscale=self.dscale, dn=self.dn, jump=self.jump, tail=quantile_state(self.tail),
        )

    @classmethod
    def restore(cls, state: TrackState) -> ParameterTrack:
        track = cls()
        track.n = state.n
        track.level = state.level
        track.scale = state.scale
        track.quantum = math.inf if state.quantum is None else state.quantum
        track.prev = state.prev
        track.diurnal = list(state.diurnal)
        track.change_rate = state.change_rate
        track.run = state.run
        track.run_rate = state.run_rate
        track.dscale = state.dscale
        track.dn = state.dn
        track.jump = state.jump
        if state.tail is not None:
            track.tail = quantile_from_state(state.tail)
            track.usual = track.tail.get() or 0.0
        track._refresh_unit()
        return track

    def noise(self) -> float:
        """The unit deviations are measured in: the robust scale, never below the instrument's
        resolution (smallest change seen), so quantised signals do not explode on one tick."""
        return self.unit

    def _refresh_unit(self) -> None:
        # Cached: the unit is read several times per reading and changes only when learning.
        # Comparisons rather than max(): the same result (the first of equal candidates wins) on
        # the hottest path of the stack, without a builtin call.
        quantum = self.quantum
        unit = self.scale
        if quantum != math.inf and quantum > unit:
            unit = quantum
        tiny = 1e-9 * (1.0 + abs(self.level))
        self.unit = tiny if tiny > unit else unit

    def score(self, value: float, hour: int, diurnal: bool) -> float:
        """Signed deviation from the expected value in noise units (0 before two readings)."""
        if self.n < 2:
            return 0.0
        expected = self.level + self.diurnal[hour] if diurnal else self.level
        return (value - expected) / self.unit

    def surprise(self, score: float, floor: float) -> float:
        """A score relative to this parameter's usual large deviations (1 = its 95th percentile)."""
        usual = self.usual
        return (score if score >= 0.0 else -score) / (usual if usual > floor else floor)

    def observe(self, value: float, config: DetectorConfig) -> None:
        """Health statistics every evidence value updates: resolution, change rate, repeat run, and
        the change since the previous value in units of the usual change (:attr:`jump`)."""
        prev = self.prev
        self.prev = value
        if prev is None:
            self.jump = 0.0
            return
        step = abs(value - prev)
        if step == 0.0:
            if self.run == 0:
                self.run_rate = self.change_rate
            self.run += 1
            self.change_rate -= 0.01 * self.change_rate
        else:
            self.run = 0
            self.change_rate += 0.01 * (1.0 - self.change_rate)
            if step < self.quantum:
                self.quantum = step
                self._refresh_unit()
        usual = self.dscale
        quantum = self.quantum
        if quantum != math.inf and quantum > usual:
            usual = quantum
        dn = self.dn
        self.jump = (value - prev) / usual if dn >= 2 and usual > 0.0 else 0.0
        self.dn = dn = dn + 1
        if dn <= config.warmup_readings:
            self.dscale += (step - self.dscale) / dn
        else:
            bound = config.clip * usual
            self.dscale += config.scale_alpha * ((step if step < bound else bound) - self.dscale)

    @property
    def fresh(self) -> bool:
        """False when the value merely repeats the previous one of a signal that nearly always
        changes: a repeat is not new evidence (it may be the first reading of a stuck sensor)."""
        return self.run == 0 or self.run_rate < 0.9

    def stuck(self, min_readings: int, min_rate: float, log_probability: float) -> bool:
        """True when the current repeat run is too improbable for how often the value used to change."""
        if self.run < min_readings or self.run_rate < min_rate:
            return False
        if self.quantum > 0.5 * self.scale:
            # A coarsely quantised signal (one digit of conductivity) legitimately rests on one value.
            return False
        return self.run * math.log1p(-min(self.run_rate, 0.999999)) < log_probability

    def learn(
        self, value: float, score: float, hour: int, diurnal: bool, config: DetectorConfig, calm: bool = True
    ) -> None:
        """Update the usual deviation with ``score`` (once warmed up, and while the hydrology is
        ``calm``: a flood's deviations are the flood's), then level, scale and the hour-of-day
        component with ``value`` (after scoring it)."""
        n = self.n
        warmup = config.warmup_readings
        level_alpha = config.level_alpha
        if n >= warmup and calm:
            size = score if score >= 0.0 else -score
            usual = self.usual
            floor = config.tail_floor
            # An event is not how large this parameter's deviations usually are: a long plume early
            # in a record would otherwise become the 95th percentile and hide every later one; and
            # the level follows it only slowly, so the water returning afterwards is no new event.
            if usual == 0.0 or size <= config.tail_learn_below * (usual if usual > floor else floor):
                tail = self.tail
                tail.update(size)
                self.usual = tail.get() or 0.0
            elif n >= 4 * warmup:
                # Only once the percentile has seen a few warm-ups: before, a daily cycle's first
                # afternoon looks like an event, and a level that stopped following it would keep it so.
                level_alpha *= config.event_learning
        self.n = n = n + 1
        if n == 1:
            self.level = value
            self._refresh_unit()
            return
        deviation = value - (self.level + self.diurnal[hour] if diurnal else self.level)
        if n <= warmup:
            # Running means while warming up: every early value counts the same.
            self.level += deviation / n
            self.scale += (abs(deviation) - self.scale) / (n - 1)
            self._refresh_unit()
            return
        # Clipped to [-bound, bound] with comparisons: exactly max(-bound, min(bound, x)), cheaper.
        bound = config.clip * self.unit
        clipped = deviation if deviation < bound else bound
        if not clipped > -bound:
            clipped = -bound
        self.level += level_alpha * clipped
        self.scale += config.scale_alpha * (abs(clipped) - self.scale)
        if diurnal:
            residual = value - self.level
            residual = residual if residual < bound else bound
            if not residual > -bound:
                residual = -bound
            self.diurnal[hour] += level_alpha * (residual - self.diurnal[hour])
        self._refresh_unit()


def quantile_state(quantile: Quantile) -> QuantileState | None:
    """The markers of river's P² estimator as named numbers (``None`` before its first value)."""
    if quantile.get() is None:
        return None
    fields = _P2_LAYOUT.unpack(quantile._quantile.__getstate__())
    return QuantileState(q=fields[0], increments=fields[1:6], desired=fields[6:11], positions=fields[11:16],
                         heights=fields[16:21], count=fields[21], sorted=fields[22])


def quantile_from_state(state: QuantileState) -> Quantile:
    quantile = Quantile(state.q)
    packed = _P2_LAYOUT.pack(state.q, *state.increments, *state.desired, *state.positions, *state.heights,
                             state.count, state.sorted)
    quantile._quantile.__setstate__(packed)
    quantile._is_updated = state.count > 0
    return quantile
