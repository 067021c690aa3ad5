"""The shape of a sensor's values alone: spike, level shift, high variability, drift."""

from __future__ import annotations

import math
import random

from detectors.config import DetectorConfig
from detectors.faults import Assessment, SensorFaults

CONFIG = DetectorConfig()


def feed(sensor: SensorFaults, value: float, level: float = 10.0, noise: float = 1.0, previous: float | None = None,
         *, lone: bool = True, calm: bool = True, surprise: float | None = None, at_s: float = 0.0) -> Assessment:
    """One value as the health screen would pass it (usual change 1, usual large deviation 2)."""
    deviation = abs(value - level) / noise
    jump = value - (previous if previous is not None else level)
    return sensor.assess(value, level, deviation, deviation / 2 if surprise is None else surprise, jump, lone, calm,
                         CONFIG, at_s)


def quiet(sensor: SensorFaults, readings: int, rng: random.Random) -> None:
    previous = 10.0
    for _ in range(readings):
        value = 10.0 + rng.gauss(0.0, 0.3)
        feed(sensor, value, previous=previous)
        previous = value


def test_a_lone_spike_from_a_quiet_value_fires_once() -> None:
    sensor = SensorFaults("turbidity", CONFIG)
    quiet(sensor, 300, random.Random(1))
    assert feed(sensor, 60.0).spike >= 1.0
    # The next reading of the same excursion is not a new spike: the value was already far out.
    assert feed(sensor, 61.0, previous=60.0).spike < 1.0
    # Not lone, or during a flood: not the sensor's.
    other = SensorFaults("turbidity", CONFIG)
    quiet(other, 300, random.Random(1))
    assert feed(other, 60.0, lone=False).spike == 0.0
    assert feed(other, 60.0, calm=False).spike == 0.0


def test_a_lone_step_that_holds_is_a_level_shift_until_the_value_returns() -> None:
    sensor = SensorFaults("conductivity", CONFIG)
    rng = random.Random(2)
    quiet(sensor, 300, rng)
    strengths = [feed(sensor, 40.0 + rng.gauss(0, 0.3), previous=10.0 if i == 0 else 40.0).shift for i in range(30)]
    assert strengths[:3] == [0.0, 0.0, 0.0]
    assert all(s >= 1.0 for s in strengths[3:])
    assert sensor.shift_open
    # Back near the old level: the shift closes (and the return step is no new shift).
    assert feed(sensor, 10.5, level=35.0, previous=40.0).shift < 1.0
    assert not sensor.shift_open
    assert feed(sensor, 10.2, level=35.0, previous=10.5).shift == 0.0


def test_a_rising_plume_or_a_step_with_others_moving_is_no_level_shift() -> None:
    sensor = SensorFaults("NH3N", CONFIG)
    quiet(sensor, 300, random.Random(3))
    ramp = [feed(sensor, 20.0 + 4.0 * i, previous=10.0 if i == 0 else 16.0 + 4.0 * i).shift for i in range(10)]
    assert max(ramp) == 0.0
    other = SensorFaults("NH3N", CONFIG)
    quiet(other, 300, random.Random(3))
    assert max(feed(other, 40.0, previous=40.0, lone=i > 1).shift for i in range(10)) == 0.0


def test_maintenance_closes_a_shift_and_the_hold_is_capped() -> None:
    config = DetectorConfig(shift_hold_readings=20)
    sensor = SensorFaults("conductivity", config)
    rng = random.Random(4)
    previous = 10.0
    for _ in range(300):
        value = 10.0 + rng.gauss(0.0, 0.3)
        sensor.assess(value, 10.0, abs(value - 10) / 1.0, abs(value - 10) / 2, value - previous, True, True, config,
                      0.0)
        previous = value
    held = [sensor.assess(40.0, 10.0, 30.0, 15.0, 30.0 if i == 0 else 0.0, True, True, config, 0.0).shift
            for i in range(40)]
    assert sum(s >= 1.0 for s in held) == 21
    sensor.reset()
    assert not sensor.shift_open


def test_high_variability_when_changes_are_several_times_the_usual_but_not_in_a_flood() -> None:
    sensor = SensorFaults("turbidity", CONFIG)
    rng = random.Random(5)
    quiet(sensor, 300, rng)
    jumpy = [feed(sensor, 10.0, previous=10.0 + (5.0 if i % 2 else -5.0), surprise=0.5).variability
             for i in range(40)]
    assert jumpy[-1] >= 1.0
    assert feed(sensor, 10.0, previous=15.0, surprise=0.5, calm=False).variability == 0.0


def test_a_steady_lone_walk_is_a_drift_and_the_test_state_survives_a_snapshot() -> None:
    sensor = SensorFaults("conductivity", CONFIG)
    rng = random.Random(6)
    quiet(sensor, 400, rng)
    copy: SensorFaults | None = None
    drift = []
    value = 10.0
    for i in range(600):
        if i == 200:
            copy = SensorFaults.restore("conductivity", sensor.snapshot(), CONFIG)
        # A slow walk: small changes, and the baseline lagging it by a steady five noise units.
        value += 0.05
        at_s = i * 600.0  # every 10 minutes: 100 hours
        a = feed(sensor, value, level=value - 5.0, previous=value - 0.05, surprise=1.0, at_s=at_s)
        if copy is not None:
            assert feed(copy, value, level=value - 5.0, previous=value - 0.05, surprise=1.0, at_s=at_s) == a
        drift.append(a.drift)
        assert a.shift == 0.0
    assert max(drift) >= 1.0
    assert sensor.drift_open
    # It opened only after the walk had kept its side for drift_min_span_s (18 h = 108 readings).
    assert max(drift[:108]) < 1.0
    # Not when another parameter moves too.
    other = SensorFaults("conductivity", CONFIG)
    quiet(other, 400, random.Random(6))
    assert max(feed(other, 10.0, level=5.0, previous=10.0, surprise=1.0, lone=False).drift for _ in range(300)) < 1


def test_a_diurnal_cycle_the_baseline_has_not_learned_is_no_drift() -> None:
    """A station's first days: the baseline lags a daily cycle, so the deviation keeps one side for
    up to 12 hours and then the other — steadily, alone, in small steps, as a drift would."""
    sensor = SensorFaults("temperature", CONFIG)
    rng = random.Random(7)
    quiet(sensor, 400, rng)
    opened = []
    previous = 10.0
    for i in range(72 * 6):  # three days every 10 minutes
        hours = i / 6
        value = 10.0 + 0.3 * rng.gauss(0.0, 1.0)
        level = value - 5.0 * (1.0 if math.sin(2 * math.pi * hours / 24) >= 0 else -1.0)
        a = feed(sensor, value, level=level, previous=previous, surprise=1.0, at_s=hours * 3600)
        previous = value
        opened.append(a.drift >= 1.0)
    assert not any(opened)
