"""What is wrong with a sensor: the instrument anomaly types of the water-quality literature.

Leigh et al. (2019, "A framework for automated anomaly detection in high frequency water-quality
data from in situ sensors", Sci. Total Environ. 664) sort sensor anomalies into sudden spikes,
level shifts (offsets), drift, high variability, clusters of spikes, constant values (flat
lines), out-of-range values and missing data. Flags, out-of-range values and flat lines are
decided in :mod:`detectors.health`; gaps in :mod:`detectors.cadence`. This module watches the
shape of one parameter's clean values, with the cross-parameter evidence that tells an
instrument from the water:

- **spike**: a value within its usual range is followed by one that jumps far from the usual
  change and from the baseline while no other parameter jumps with it and the hydrology is calm:
  a lone spike is the sensor (a plume moves several parameters, or one over several readings;
  the readings after the first of an excursion are not spikes).
- **level shift**: a lone jump from the usual range to a new level that the next readings keep:
  an offset (a sensor re-installed, knocked, re-calibrated). The fault stays open while the value
  stays nearer the new level than the old one, until maintenance, or for at most
  ``shift_hold_readings``; meanwhile the detectors watch the water as the value less the offset
  (:attr:`SensorFaults.offset`), so the step itself is not pollution but what happens on top of
  it still is.
- **high variability** (clusters of spikes included): the recent changes, less their one-way part,
  are several times the parameter's usual change while the value stays near its usual range and
  the hydrology is calm (a flood makes turbidity jumpy by itself; a plume is an excursion).
- **drift**: the value walks away steadily, in ordinary steps, one direction, alone: the baseline
  follows it with a lag, so the block means of the deviation stay on one side; river's
  ``PageHinkley`` test on them fires, when nothing else moved with it, and the fault holds while
  they stay there.

>>> from detectors.config import DetectorConfig
>>> config = DetectorConfig()
>>> sensor = SensorFaults("conductivity", config)
>>> verdict = sensor.assess(900.0, level=420.0, deviation=160.0, surprise=40.0, jump=160.0, lone=True,
...                         hydrology_calm=True, config=config, at_s=0.0)
>>> round(verdict.spike, 1), verdict.shift, verdict.variability
(13.3, 0.0, 0.0)
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final, NamedTuple

from river.drift import PageHinkley
from river.stats import Quantile

from detectors.baseline import quantile_from_state, quantile_state
from detectors.config import DetectorConfig
from detectors.quantities import hydrological
from detectors.state import PageHinkleyState, SensorState

#: Changes beyond this many usual changes count at most this much towards high variability,
#: so one spike does not make a whole window look jumpy.
_ROUGH_CAP: Final = 10.0
#: A drift moves in changes smaller than this many usual changes.
_WALK: Final = 2.0
#: A held level shift's strength is reported up to this (it is a yes/no fault, not a measure).
_HELD_CAP: Final = 4.0
#: The 99th percentile of |change| / mean |change| for Gaussian noise (2.576·√2 / (2/√π) ≈ 3.2):
#: no parameter's "large change" is taken to be smaller than that.
_JUMP_FLOOR: Final = 3.2


class FaultType(StrEnum):
    """Which instrument problem a ``sensor_fault`` detection is about."""

    FLAG = "flag"
    OUT_OF_RANGE = "out_of_range"
    FLAT_LINE = "flat_line"
    SPIKE = "spike"
    LEVEL_SHIFT = "level_shift"
    HIGH_VARIABILITY = "high_variability"
    DRIFT = "drift"

    @property
    def zh(self) -> str:
        return _ZH[self]


_ZH: Final = {
    FaultType.FLAG: "仪器报故障",
    FaultType.OUT_OF_RANGE: "数值超出合理范围",
    FaultType.FLAT_LINE: "数值长时间不变",
    FaultType.SPIKE: "孤立尖峰",
    FaultType.LEVEL_SHIFT: "阶跃偏移",
    FaultType.HIGH_VARIABILITY: "波动异常",
    FaultType.DRIFT: "漂移",
}


class Assessment(NamedTuple):
    """How strongly each shape-based fault type fires for one value (>= 1 fires)."""

    spike: float
    shift: float
    variability: float
    drift: float


class SensorFaults:
    """The fault state of one parameter of one station."""

    __slots__ = ("big", "block_count", "block_lone", "block_sum", "drift", "drift_level", "drift_open",
                 "drift_pending", "drift_side", "drift_since", "hydrological", "jumps", "keys", "last_surprise",
                 "rough", "shift_age", "shift_from", "shift_high", "shift_left", "shift_low", "shift_open",
                 "shift_sum", "shift_to", "shift_trigger", "trend")

    def __init__(self, name: str, config: DetectorConfig) -> None:
        self.hydrological = hydrological(name)
        #: Channel keys of this parameter's fault types (built once: the hot path looks them up).
        self.keys: dict[FaultType, str] = {fault: f"{name}/{fault.value}" for fault in FaultType}
        #: How large this parameter's changes get (river's P² 99th percentile of |jump|): a sensor
        #: that flickers by nature needs a bigger jump before one counts as a spike or a shift.
        self.jumps = Quantile(0.99)
        #: The percentile, never below the Gaussian one (kept: it is read on every reading).
        self.big = _JUMP_FLOOR
        #: Recent change relative to the usual change (an EWM of |jump|, about 1 when ordinary), and
        #: the same EWM of the signed jump (its one-way part).
        self.rough = 1.0
        self.trend = 0.0
        #: The previous value's surprise: a spike leaves a value that was within its usual range.
        self.last_surprise = 0.0
        #: A level shift: the level it left, the mean, lowest and highest value since the jump,
        #: readings left to confirm it, whether it is confirmed, and for how many readings it held.
        self.shift_from = 0.0
        self.shift_to = 0.0
        self.shift_sum = 0.0
        self.shift_low = 0.0
        self.shift_high = 0.0
        self.shift_left = 0
        self.shift_open = False
        self.shift_age = 0
        self.shift_trigger = 0.0
        #: Drift: the block of readings being summed (signed deviation, readings, how many lone),
        #: river's Page-Hinkley test on the block means, and an open drift with its strength.
        self.block_sum = 0.0
        self.block_count = 0
        self.block_lone = 0
        self.drift = drift_test(config)
        self.drift_open = False
        self.drift_level = 0.0
        #: The side the block means keep (+1, -1; 0 before the first block), since when (reading
        #: time, epoch seconds), and whether Page-Hinkley fired on this side: a drift opens only
        #: once it has kept one side for ``drift_min_span_s`` — longer than half a day, so a
        #: diurnal cycle the baseline has not learned yet (a station's first day) is no drift.
        self.drift_side = 0
        self.drift_since = 0.0
        self.drift_pending = False

    def assess(
        self,
        value: float,
        level: float,
        deviation: float,
        surprise: float,
        jump: float,
        lone: bool,
        hydrology_calm: bool,
        config: DetectorConfig,
        at_s: float,
        *,
        settling: bool = False,
    ) -> Assessment:
        """Update the fault state with one clean value of a warmed-up parameter: ``level`` is its
        expected value, ``deviation`` its distance from it in noise units, ``surprise`` that distance
        relative to its usual large deviations, ``jump`` its change in usual changes, ``lone``
        whether no other parameter jumped with it or is beyond its usual range, ``hydrology_calm``
        whether level and flow held still (else the water explains the change), ``at_s`` the
        reading's time in epoch seconds, ``settling`` whether a flood moves this parameter now or
        while it recedes (its walk back to base flow is no drift). A level or flow
        that steps or churns is hydrology (a gate, a pump, a flood); only its lone spikes are taken
        for the gauge."""
        size = jump if jump >= 0.0 else -jump
        big = self.big
        if size <= config.tail_learn_below * big:
            jumps = self.jumps
            jumps.update(size)
            usual = jumps.get() or 0.0
            self.big = usual if usual > _JUMP_FLOOR else _JUMP_FLOOR
        alpha = config.variability_alpha
        capped = size if size < _ROUGH_CAP else _ROUGH_CAP
        rough = self.rough + alpha * (capped - self.rough)
        trend = self.trend + alpha * ((capped if jump >= 0.0 else -capped) - self.trend)
        self.rough, self.trend = rough, trend
        sensitivity = config.fault_sensitivity
        isolated = lone and hydrology_calm
        # A spike or a step leaves a value that was within its usual range.
        from_usual = self.last_surprise < 1.0
        self.last_surprise = surprise
        spike = 0.0
        if isolated and from_usual:
            spike = sensitivity * min(size / (config.spike_jump * big), surprise / config.spike_surprise)
        if self.hydrological:
            return Assessment(spike, 0.0, 0.0, 0.0)
        relative = sensitivity * size / big
        if self.shift_open or self.shift_left > 0 or (isolated and from_usual and relative >= config.shift_jump):
            shift = self._shift(value, level, relative, isolated, sensitivity * deviation, config)
        else:
            shift = 0.0
        # Variability is movement to and fro: the part of the recent changes that is no one-way trend
        # (a plume's flank or a flood's rise moves one way).
        # A value far out is an excursion (a plume, a flood) whose changes are its own.
        to_and_fro = rough - (trend if trend >= 0.0 else -trend)
        steady = hydrology_calm and surprise < config.related_surprise
        variability = sensitivity * to_and_fro / config.variability_ratio if steady else 0.0
        # A drift walks: lone, and in ordinary steps (a plume arrives in large ones).
        walking = isolated and not settling and not self.shift_open and size < _WALK
        drift = self._drift(value - level, deviation, walking, config, at_s)
        return Assessment(spike, shift, variability, drift)

    def _drift(self, signed: float, deviation: float, isolated: bool, config: DetectorConfig, at_s: float) -> float:
        """Block means of the deviation from the (following) baseline: a steady walk keeps them on one
        side, so river's Page-Hinkley test on them fires; the drift opens once the walk has kept
        its side for ``drift_min_span_s``; >= 1 while an open drift keeps its side."""
        self.block_sum += deviation if signed >= 0.0 else -deviation
        self.block_lone += isolated
        count = self.block_count = self.block_count + 1
        if count < config.drift_block:
            return self.drift_level
        mean = self.block_sum / count
        lone = self.block_lone >= 0.8 * count
        self.block_sum, self.block_count, self.block_lone = 0.0, 0, 0
        test = self.drift
        test.update(mean)  # type: ignore[no-untyped-call]
        side = 1 if mean >= 0.0 else -1
        if side != self.drift_side:
            self.drift_side, self.drift_since, self.drift_pending = side, at_s, False
        self.drift_pending = self.drift_pending or test.drift_detected
        held = config.fault_sensitivity * abs(mean) / config.drift_hold
        if self.drift_open:
            self.drift_open = held >= 1.0 and lone
        elif self.drift_pending and lone and held >= 1.0 and at_s - self.drift_since >= config.drift_min_span_s:
            self.drift_open = True
        self.drift_level = held if self.drift_open else min(held, 0.99) * 0.5
        return self.drift_level

    def _shift(
        self, value: float, level: float, jump: float, isolated: bool, deviation: float, config: DetectorConfig
    ) -> float:
        """The level-shift state machine; >= 1 while a confirmed shift holds. ``jump`` is relative
        to this parameter's large changes, ``deviation`` in noise units."""
        if self.shift_open:
            self.shift_age += 1
            span = self.shift_to - self.shift_from
            # Held while the value stays on the new level's side of the midpoint (beyond it counts).
            held = 2.0 * (value - self.shift_from) / span if span != 0.0 else 0.0
            if held < 1.0 or self.shift_age > config.shift_hold_readings:
                self.shift_open = False
                return held if 0.0 < held < 1.0 else 0.0
            return held if held < _HELD_CAP else _HELD_CAP
        if self.shift_left > 0 and not isolated:
            self.shift_left = 0
        if self.shift_left > 0:
            # Confirmed when every reading since the jump stays nearer the new level than the old
            # one, each change since a third of the jump at most (a step, not a slope), and they sit
            # together (a plume keeps rising or falls back; an offset holds), while the other
            # parameters stay within their usual range.
            confirmed = config.shift_confirm_readings - self.shift_left + 1
            self.shift_sum += value
            self.shift_low = min(self.shift_low, value)
            self.shift_high = max(self.shift_high, value)
            mean = self.shift_sum / (confirmed + 1)
            span = abs(mean - self.shift_from)
            flat = 3.0 * jump <= self.shift_trigger and self.shift_high - self.shift_low <= 0.5 * span
            if flat and abs(value - mean) < abs(value - self.shift_from):
                self.shift_left -= 1
                if self.shift_left == 0:
                    self.shift_to = mean
                    self.shift_open = True
                    self.shift_age = 0
                    return 2.0
                return 0.0
            self.shift_left = 0
        if isolated and jump >= config.shift_jump and deviation >= config.shift_scales:
            self.shift_trigger = jump
            self.shift_left = config.shift_confirm_readings
            self.shift_from = level
            self.shift_to = self.shift_sum = self.shift_low = self.shift_high = value
        return 0.0

    @property
    def offset(self) -> float:
        """How far a held level shift has moved the sensor (0 without one): what the water is not."""
        return self.shift_to - self.shift_from if self.shift_open else 0.0

    def reset(self) -> None:
        """Maintenance happened: whatever offset or drift there was is the technician's to report."""
        self.shift_open = False
        self.shift_left = 0
        self.drift_open = False
        self.drift_side, self.drift_pending = 0, False

    def snapshot(self) -> SensorState:
        return SensorState(
            jumps=quantile_state(self.jumps), rough=self.rough, trend=self.trend, last_surprise=self.last_surprise,
            shift_from=self.shift_from, shift_to=self.shift_to, shift_sum=self.shift_sum, shift_low=self.shift_low,
            shift_high=self.shift_high, shift_left=self.shift_left, shift_open=self.shift_open,
            shift_age=self.shift_age, shift_trigger=self.shift_trigger, block_sum=self.block_sum,
            block_count=self.block_count, block_lone=self.block_lone, drift=_drift_state(self.drift),
            drift_open=self.drift_open, drift_level=self.drift_level, drift_side=self.drift_side,
            drift_since=self.drift_since, drift_pending=self.drift_pending,
        )

    @classmethod
    def restore(cls, name: str, state: SensorState, config: DetectorConfig) -> SensorFaults:
        sensor = cls(name, config)
        if state.jumps is not None:
            sensor.jumps = quantile_from_state(state.jumps)
            usual = sensor.jumps.get() or 0.0
            sensor.big = usual if usual > _JUMP_FLOOR else _JUMP_FLOOR
        sensor.rough = state.rough
        sensor.trend = state.trend
        sensor.last_surprise = state.last_surprise
        sensor.shift_from = state.shift_from
        sensor.shift_to = state.shift_to
        sensor.shift_sum = state.shift_sum
        sensor.shift_low = state.shift_low
        sensor.shift_high = state.shift_high
        sensor.shift_left = state.shift_left
        sensor.shift_open = state.shift_open
        sensor.shift_age = state.shift_age
        sensor.shift_trigger = state.shift_trigger
        sensor.block_sum = state.block_sum
        sensor.block_count = state.block_count
        sensor.block_lone = state.block_lone
        sensor.drift = _drift_from_state(state.drift)
        sensor.drift_open = state.drift_open
        sensor.drift_level = state.drift_level
        sensor.drift_side = state.drift_side
        sensor.drift_since = state.drift_since
        sensor.drift_pending = state.drift_pending
        return sensor


def drift_test(config: DetectorConfig) -> PageHinkley:
    """river's Page-Hinkley test as the drift check uses it (on block means, in noise units)."""
    return PageHinkley(min_instances=config.drift_min_blocks, delta=config.drift_delta,
                       threshold=config.drift_threshold, mode="both")


def _drift_state(test: PageHinkley) -> PageHinkleyState:
    """river keeps the test's running sums in private attributes; these are all of them."""
    return PageHinkleyState(
        min_instances=test.min_instances, delta=test.delta, threshold=test.threshold, alpha=test.alpha,
        n=test._x_mean.n, mean=test._x_mean._mean, sum_increase=test._sum_increase,
        sum_decrease=test._sum_decrease,
        min_increase=None if test._min_increase == math.inf else test._min_increase,
        max_decrease=test._max_decrease, detected=test.drift_detected,
    )


def _drift_from_state(state: PageHinkleyState) -> PageHinkley:
    test = PageHinkley(min_instances=state.min_instances, delta=state.delta, threshold=state.threshold,
                       alpha=state.alpha, mode="both")
    test._x_mean.n = state.n
    test._x_mean._mean = state.mean
    test._sum_increase = state.sum_increase
    test._sum_decrease = state.sum_decrease
    test._min_increase = math.inf if state.min_increase is None else state.min_increase
    test._max_decrease = state.max_decrease  # type: ignore[assignment]  # river starts it at the int -1
    test._drift_detected = state.detected
    return test
