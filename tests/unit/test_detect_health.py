"""Instrument health alone: which values are evidence, which are the sensor's."""

from __future__ import annotations

from datetime import timedelta

from detectors.channels import EventBook
from detectors.config import DetectorConfig
from detectors.health import InstrumentHealth
from riverguard.models import DataFlag, Detection, DetectionKind, Measurement, Reading
from tests.support.readings import STATION, T0, reading


def warm(health: InstrumentHealth, readings: int = 100) -> None:
    config = health.config
    for i in range(readings):
        _, _, values = health.sort(reading(i), 0, False)
        health.screen(values)
        for _, track, value, z in values:
            track.learn(value, z, 0, False, config)


def with_flags(i: int, flags: dict[str, DataFlag], **override: float) -> Reading:
    base = reading(i, **override)
    values = {k: Measurement(value=m.value, flag=flags.get(k, DataFlag.NORMAL)) for k, m in base.values.items()}
    return base.model_copy(update={"values": values})


def test_flags_and_impossible_values_are_sorted_out_before_any_baseline() -> None:
    health = InstrumentHealth(DetectorConfig())
    r = with_flags(0, {"NH3N": DataFlag.MAINTENANCE, "DO": DataFlag.FAULT}, pH=0.2)
    maintenance, flagged, values = health.sort(r, 0, False)
    assert maintenance == ["NH3N"]
    assert flagged == {"DO", "pH"}
    assert [name for name, *_ in values] == ["conductivity", "turbidity", "CODMn"]
    assert set(health.tracks) == {"conductivity", "turbidity", "CODMn"}


def test_stuck_value_is_flagged_after_an_improbable_run() -> None:
    health = InstrumentHealth(DetectorConfig())
    warm(health)
    runs = [health.sort(reading(i, turbidity=31.234), 0, False)[1] for i in range(100, 160)]
    first = next(i for i, flagged in enumerate(runs) if "turbidity" in flagged)
    assert 10 <= first < 60
    assert all("turbidity" in flagged for flagged in runs[first:])


def test_lone_step_becomes_faulty_but_a_step_with_related_movement_does_not() -> None:
    for override, expect_fault in (({"conductivity": 900.0}, True),
                                   ({"conductivity": 900.0, "NH3N": 2.0, "DO": 5.0}, False)):
        health = InstrumentHealth(DetectorConfig())
        warm(health)
        eligible = {}
        for i in range(100, 106):
            _, _, values = health.sort(reading(i, **override), 0, False)
            eligible = health.screen(values)
        assert health.tracks["conductivity"].faulty is expect_fault
        assert ("conductivity" in eligible) is not expect_fault


def test_hydrological_parameters_are_never_eligible_for_spikes() -> None:
    health = InstrumentHealth(DetectorConfig())
    for i in range(100):
        _, _, values = health.sort(reading(i, discharge=800.0 + i % 7), 0, False)
        eligible = health.screen(values)
        for _, track, value, z in values:
            track.learn(value, z, 0, False, health.config)
    assert "discharge" not in eligible
    assert "pH" in eligible


def test_verdicts_name_maintenance_station_wide_and_faults_per_parameter() -> None:
    health = InstrumentHealth(DetectorConfig())
    book = EventBook(STATION, health.config, health.tracks)
    r = with_flags(0, {"NH3N": DataFlag.CALIBRATION, "pH": DataFlag.FAULT})
    maintenance, flagged, _ = health.sort(r, 0, False)
    verdicts = health.verdicts(r, maintenance, flagged, book)
    assert [(v.kind, v.key, v.firing, v.parameters) for v in verdicts] == [
        (DetectionKind.MAINTENANCE, "*", True, ("NH3N",)),
        (DetectionKind.SENSOR_FAULT, "pH", True, ("pH",)),
    ]
    out: list[Detection] = []
    for v in verdicts:
        book.step(v, r, out)
    # A clean reading afterwards still gives the open channels their (non-firing) verdicts.
    later = reading(1).model_copy(update={"time": T0 + timedelta(minutes=1)})
    maintenance, flagged, _ = health.sort(later, 0, False)
    assert [(v.kind, v.firing) for v in health.verdicts(later, maintenance, flagged, book)] == [
        (DetectionKind.MAINTENANCE, False), (DetectionKind.SENSOR_FAULT, False),
    ]
