"""Behaviour of one station's detector: health first, regulatory checks, event logic, ids."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detectors import DetectorConfig, StationDetector
from detectors.flood import FloodWindow
from riverguard.models import DataFlag, Detection, DetectionKind, DetectionPhase, Measurement, Reading
from riverguard.parameters import WaterClass
from tests.support.readings import STATION, T0, reading, run

K = DetectionKind


def kinds(detections: list[Detection]) -> list[tuple[str, str]]:
    return [(d.kind.value, d.phase.value) for d in detections]


def flagged(i: int, flags: dict[str, DataFlag], **override: float) -> Reading:
    base = reading(i, **override)
    values = {k: Measurement(value=m.value, flag=flags.get(k, DataFlag.NORMAL)) for k, m in base.values.items()}
    return base.model_copy(update={"values": values})


@pytest.fixture
def warm() -> StationDetector:
    detector = StationDetector(STATION)
    assert run(detector, [reading(i) for i in range(200)]) == []
    return detector


def test_one_spill_is_one_event_onset_updates_cleared(warm: StationDetector) -> None:
    # A 90-minute ammonia plume with the DO sag and conductivity rise that come with it.
    spill = [reading(i, NH3N=2.4 + 0.001 * (i % 2), DO=6.0 + 0.01 * (i % 3), conductivity=520 + i % 5)
             for i in range(200, 290)]
    out = run(warm, spill + [reading(i) for i in range(290, 330)])
    spikes = [d for d in out if d.kind is K.POLLUTION_SPIKE]
    assert spikes[0].phase is DetectionPhase.ONSET
    assert spikes[-1].phase is DetectionPhase.CLEARED
    assert len({d.event_id for d in spikes}) == 1
    assert 2 <= len(spikes) <= 6
    onset = spikes[0]
    assert onset.time - spill[0].time <= timedelta(minutes=5)
    assert {f.parameter for f in onset.findings} >= {"NH3N"}
    assert 1 <= len(onset.readings) <= warm.config.evidence_readings
    assert onset.message.startswith(STATION.section)
    assert len({d.detection_id for d in spikes}) == len(spikes)
    # NH3N 2.4 against the class III limit 1.0: "超标 1.4 倍", reported as its own event.
    limits = [d for d in out if d.kind is K.LIMIT_EXCEEDANCE and d.phase is DetectionPhase.ONSET]
    assert [f.multiple for d in limits for f in d.findings] == [pytest.approx(1.4, abs=0.001)]
    assert limits[0].findings[0].limit == 1.0
    assert "超标 1.4 倍" in limits[0].message
    assert any(d.kind is K.CLASS_DOWNGRADE for d in out)


def test_maintenance_and_fault_flags_never_feed_pollution(warm: StationDetector) -> None:
    all_m = dict.fromkeys(reading(0).values, DataFlag.MAINTENANCE)
    out = run(warm, [flagged(i, all_m, NH3N=9.0, pH=11.0) for i in range(200, 260)])
    out += run(warm, [flagged(i, {"NH3N": DataFlag.FAULT}, NH3N=9.0) for i in range(260, 300)])
    out += run(warm, [reading(i) for i in range(300, 340)])
    assert not [d for d in out if d.kind.is_pollution]
    assert kinds(out)[0] == ("maintenance", "onset")
    assert ("maintenance", "cleared") in kinds(out)
    faults = [d for d in out if d.kind is K.SENSOR_FAULT]
    assert faults[0].findings[0].parameter == "NH3N"
    assert faults[-1].phase is DetectionPhase.CLEARED


def test_stuck_sensor_is_a_sensor_fault(warm: StationDetector) -> None:
    out = run(warm, [reading(i, turbidity=31.234) for i in range(200, 300)])
    faults = [d for d in out if d.kind is K.SENSOR_FAULT]
    assert faults
    assert faults[0].findings[0].parameter == "turbidity"
    assert not [d for d in out if d.kind.is_pollution]


def test_lone_clean_step_is_the_instrument_not_the_water(warm: StationDetector) -> None:
    # Conductivity jumps and sits at a new flat level while nothing related moves: an offset.
    out = run(warm, [reading(i, conductivity=900.0) for i in range(200, 260)])
    assert [d.findings[0].parameter for d in out if d.kind is K.SENSOR_FAULT][:1] == ["conductivity"]
    assert not [d for d in out if d.kind is K.POLLUTION_SPIKE]


def test_implausible_value_is_a_sensor_fault(warm: StationDetector) -> None:
    out = run(warm, [reading(i, pH=0.5) for i in range(200, 204)])
    assert kinds(out)[:1] == [("sensor_fault", "onset")]
    assert out[0].findings[0].parameter == "pH"


def test_regulatory_limits_fire_during_warm_up() -> None:
    detector = StationDetector(STATION)
    out = run(detector, [reading(i, NH3N=1.6 + 0.01 * i) for i in range(5)])
    assert ("limit_exceedance", "onset") in kinds(out)
    assert not [d for d in out if d.kind is K.POLLUTION_SPIKE]
    finding = next(d for d in out if d.kind is K.LIMIT_EXCEEDANCE).findings[0]
    assert finding.limit == 1.0
    assert finding.target_class is WaterClass.III
    assert finding.multiple == pytest.approx(0.61)


def test_ecological_flow_low() -> None:
    assert STATION.min_flow_m3s is not None
    detector = StationDetector(STATION)
    low = STATION.min_flow_m3s * 0.5
    out = run(detector, [reading(i, discharge=low) for i in range(3)])
    flows = [d for d in out if d.kind is K.ECOLOGICAL_FLOW_LOW]
    assert [d.phase for d in flows] == [DetectionPhase.ONSET]
    assert flows[0].findings[0].limit == STATION.min_flow_m3s


def test_data_gap_is_reported_once_with_its_span(warm: StationDetector) -> None:
    late = reading(200).model_copy(update={"time": T0 + timedelta(minutes=199 + 180)})
    out = warm.process(late)
    gaps = [d for d in out if d.kind is K.DATA_GAP]
    assert [d.phase for d in gaps] == [DetectionPhase.ONSET, DetectionPhase.CLEARED]
    assert gaps[0].time == T0 + timedelta(minutes=199)
    assert gaps[1].time == late.time


def test_redelivered_readings_are_skipped_not_relearned(warm: StationDetector) -> None:
    before = warm.tracks["pH"].n
    assert warm.process(reading(150, NH3N=50.0)) == []
    assert warm.tracks["pH"].n == before
    assert warm.stale_readings == 1


def test_event_ids_are_stable_across_runs() -> None:
    def spill_ids() -> list[str]:
        detector = StationDetector(STATION, DetectorConfig())
        readings = [reading(i) for i in range(200)] + [reading(i, NH3N=2.4, DO=6.0) for i in range(200, 240)]
        return [d.detection_id for d in run(detector, readings)]

    first = spill_ids()
    assert first
    assert first == spill_ids()


def _level(i: int) -> float:
    return 2.0 + 0.01 * ((i % 5) - 2)


def _wobble(i: int) -> float:
    return ((i * 7) % 5 - 2) / 2


def _flood(i: int, start: int = 200, **override: float) -> Reading:
    """Level rising 2 m over an hour, turbidity up tenfold, conductivity diluted by a third."""
    step = min(i - start, 60) / 60
    values = {"water_level": _level(i) + 2.0 * step, "turbidity": 30 + 270 * step + 1.5 * _wobble(i),
              "conductivity": 420 - 140 * step + 3 * _wobble(i)}
    return reading(i, **{**values, **override})


@pytest.fixture
def gauged() -> StationDetector:
    detector = StationDetector(STATION)
    assert run(detector, [reading(i, water_level=_level(i)) for i in range(200)]) == []
    return detector


def test_a_flood_raising_turbidity_and_diluting_conductivity_is_no_spill(gauged: StationDetector) -> None:
    out = run(gauged, [_flood(i) for i in range(200, 300)])
    assert [d for d in out if d.kind is K.POLLUTION_SPIKE] == []


def test_the_same_change_without_the_flood_is_a_spike(gauged: StationDetector) -> None:
    out = run(gauged, [_flood(i, water_level=_level(i)) for i in range(200, 300)])
    spikes = [d for d in out if d.kind is K.POLLUTION_SPIKE and d.phase is DetectionPhase.ONSET]
    assert spikes
    assert {f.parameter for f in spikes[0].findings} & {"turbidity", "conductivity"}


def test_ammonia_rising_in_a_flood_is_still_a_spill(gauged: StationDetector) -> None:
    out = run(gauged, [_flood(i, NH3N=0.3 + 2.0 * min(i - 200, 30) / 30) for i in range(200, 300)])
    spikes = [d for d in out if d.kind is K.POLLUTION_SPIKE and d.phase is DetectionPhase.ONSET]
    assert spikes
    assert "NH3N" in {f.parameter for f in spikes[0].findings}
    assert "turbidity" not in {f.parameter for f in spikes[0].findings}


def _after_flood(i: int, peak_end: int = 260, over: int = 100) -> Reading:
    """The flood of :func:`_flood` held until ``peak_end``, then the water going back over
    ``over`` readings."""
    back = min(max(i - peak_end, 0), over) / over
    level = _level(i) + 2.0 * (1.0 - back)
    return reading(i, water_level=level, turbidity=300 - 270 * back + 1.5 * _wobble(i),
                   conductivity=280 + 140 * back + 3 * _wobble(i))


def test_a_flood_is_followed_through_its_recession(gauged: StationDetector) -> None:
    phases = []
    for r in [_flood(i) for i in range(200, 260)] + [_after_flood(i) for i in range(260, 700)]:
        assert [d for d in gauged.process(r) if d.kind is K.POLLUTION_SPIKE] == []
        phases.append(gauged.health.flood_phase.name)
    assert phases.index("HIGH") < phases.index("RECEDING")
    assert phases[-1] == "NONE"  # the recession lasts as long as the flood did, then it is over


@pytest.mark.parametrize("receding", [False, True])
def test_while_a_flood_recedes_conductivity_and_turbidity_moving_are_no_spill(
    gauged: StationDetector, receding: bool
) -> None:
    if receding:  # high water from 2 h to 1 min ago: the recession lasts 2 h more
        now = reading(200).time.timestamp()
        gauged.health.flood = FloodWindow(since=now - 7200, last=now - 60)
    out = run(gauged, [reading(i, water_level=_level(i), conductivity=560 + 3 * _wobble(i), turbidity=90 + _wobble(i))
                       for i in range(200, 260)])
    spikes = [d for d in out if d.kind is K.POLLUTION_SPIKE]
    assert bool(spikes) is not receding
    ammonia = run(gauged, [reading(i, water_level=_level(i), NH3N=2.4 + 0.01 * _wobble(i)) for i in range(260, 320)])
    assert any(d.kind is K.POLLUTION_SPIKE for d in ammonia)  # any other parameter stays evidence


def test_a_restored_detector_still_knows_the_flood(gauged: StationDetector) -> None:
    from detectors.state import decode, encode

    run(gauged, [_flood(i) for i in range(200, 330)])
    restored = StationDetector.restore(decode(encode(gauged.snapshot(STATION.station_id)), STATION.station_id),
                                       STATION, gauged.config)
    assert (restored.health.flood.since, restored.health.flood.last) == (gauged.health.flood.since,
                                                                         gauged.health.flood.last)
    rest = [_after_flood(i, peak_end=330) for i in range(330, 520)]
    assert [d.kind for d in run(restored, rest)] == [d.kind for d in run(gauged, rest)]
