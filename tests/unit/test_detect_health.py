"""Instrument health alone: which values are evidence, which are the sensor's, and the verdicts."""

from __future__ import annotations

from datetime import timedelta

from detectors.channels import EventBook
from detectors.config import DetectorConfig
from detectors.faults import FaultType
from detectors.health import InstrumentHealth
from riverguard.models import DataFlag, Detection, DetectionKind, Measurement, Reading
from tests.support.readings import STATION, T0, reading


def learn(health: InstrumentHealth, r: Reading) -> dict[str, float]:
    """One reading through sort and screen, then learned (as the station detector does)."""
    maintenance, _, values = health.sort(r, 0, False)
    eligible = health.screen(values, bool(maintenance), r.time.timestamp())
    for _, track, value, z in values:
        track.learn(value, z, 0, False, health.config, health.calm)
    return eligible


def warm(health: InstrumentHealth, readings: int = 100) -> None:
    for i in range(readings):
        learn(health, reading(i))


def with_flags(i: int, flags: dict[str, DataFlag], **override: float) -> Reading:
    base = reading(i, **override)
    values = {k: Measurement(value=m.value, flag=flags.get(k, DataFlag.NORMAL)) for k, m in base.values.items()}
    return base.model_copy(update={"values": values})


def test_flags_and_impossible_values_are_sorted_out_before_any_baseline() -> None:
    health = InstrumentHealth(DetectorConfig())
    r = with_flags(0, {"NH3N": DataFlag.MAINTENANCE, "DO": DataFlag.FAULT}, pH=0.2)
    maintenance, flagged, values = health.sort(r, 0, False)
    assert maintenance == ["NH3N"]
    assert flagged == {"DO": FaultType.FLAG, "pH": FaultType.OUT_OF_RANGE}
    assert [name for name, *_ in values] == ["conductivity", "turbidity", "CODMn"]
    assert set(health.tracks) == {"conductivity", "turbidity", "CODMn"}


def test_an_extension_flag_is_not_evidence() -> None:
    health = InstrumentHealth(DetectorConfig())
    _, flagged, values = health.sort(with_flags(0, {"NH3N": DataFlag("P"), "DO": DataFlag.MANUAL}), 0, False)
    assert flagged == {"NH3N": FaultType.FLAG}
    assert "DO" in [name for name, *_ in values]


def test_stuck_value_is_a_flat_line_after_an_improbable_run() -> None:
    health = InstrumentHealth(DetectorConfig())
    warm(health)
    runs = [health.sort(reading(i, turbidity=31.234), 0, False)[1] for i in range(100, 160)]
    first = next(i for i, flagged in enumerate(runs) if "turbidity" in flagged)
    assert 10 <= first < 60
    assert all(flagged.get("turbidity") is FaultType.FLAT_LINE for flagged in runs[first:])


def test_lone_step_is_a_level_shift_but_a_step_with_related_movement_is_not() -> None:
    for override, expect_shift in (({"conductivity": 900.0}, True),
                                   ({"conductivity": 900.0, "NH3N": 2.0, "DO": 5.0}, False)):
        health = InstrumentHealth(DetectorConfig())
        warm(health)
        for i in range(100, 106):
            learn(health, reading(i, **override))
        assert health.sensors["conductivity"].shift_open is expect_shift
        assert (health.assessed["conductivity"].shift >= 1.0) is expect_shift


def test_lone_spike_is_excluded_from_the_water_evidence_for_its_reading_only() -> None:
    health = InstrumentHealth(DetectorConfig())
    warm(health, 200)
    eligible = learn(health, reading(200, turbidity=300.0))
    assert health.assessed["turbidity"].spike >= 1.0
    assert "turbidity" not in eligible
    assert health.score >= 1.0
    eligible = learn(health, reading(201))
    assert "turbidity" in eligible
    assert health.assessed["turbidity"].spike < 1.0


def test_hydrological_parameters_are_never_eligible_and_a_flood_is_not_calm() -> None:
    health = InstrumentHealth(DetectorConfig())
    for i in range(100):
        eligible = learn(health, reading(i, discharge=800.0 + i % 7))
    assert "discharge" not in eligible
    assert "pH" in eligible
    assert health.calm
    learn(health, reading(100, discharge=4000.0))
    assert not health.calm
    assert health.assessed["discharge"].shift == 0.0


def test_verdicts_name_maintenance_station_wide_and_faults_per_parameter_and_type() -> None:
    health = InstrumentHealth(DetectorConfig())
    book = EventBook(STATION, health.config, health.tracks)
    r = with_flags(0, {"NH3N": DataFlag.CALIBRATION, "pH": DataFlag.FAULT})
    maintenance, flagged, _ = health.sort(r, 0, False)
    verdicts = health.verdicts(r, maintenance, flagged, book)
    assert [(v.kind, v.key, v.firing, v.parameters, v.subtype) for v in verdicts] == [
        (DetectionKind.MAINTENANCE, "*", True, ("NH3N",), ""),
        (DetectionKind.SENSOR_FAULT, "pH/flag", True, ("pH",), "flag"),
    ]
    out: list[Detection] = []
    for v in verdicts:
        book.step(v, r, out)
    assert [d.detector for d in out] == ["riverguard.detectors/maintenance", "riverguard.detectors/sensor_fault/flag"]
    # A clean reading afterwards still gives the open channels their (non-firing) verdicts.
    later = reading(1).model_copy(update={"time": T0 + timedelta(minutes=1)})
    maintenance, flagged, _ = health.sort(later, 0, False)
    assert [(v.kind, v.firing) for v in health.verdicts(later, maintenance, flagged, book)] == [
        (DetectionKind.MAINTENANCE, False), (DetectionKind.SENSOR_FAULT, False),
    ]
