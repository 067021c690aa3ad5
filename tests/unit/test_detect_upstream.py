"""Upstream evidence: a plume reported at one station is expected at the stations below it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors import DetectorConfig, DetectorStack, StationDetector
from detectors.state import decode
from ingest.simulator import EventKind, Simulator, Spill
from riverguard.models import Detection, DetectionKind, DetectionPhase
from riverguard.stations import load_registry
from tests.support.readings import STATION, T0, reading, run

REGISTRY = load_registry()
START = datetime(2024, 7, 1, tzinfo=UTC)
TUO = ["tuo-hongyuan", "tuo-sanhuangmiao", "tuo-shunhechang"]


def first_spikes(window_s: float) -> tuple[dict[str, Detection], dict[str, datetime]]:
    """A weak ammonia spill at the first Tuo station, diluted on its way down."""
    spill = Spill(river="tuo", station_id=TUO[0], pollutant="NH3N", start=START + timedelta(hours=30),
                  duration=timedelta(hours=2), peak_multiple=2.0)
    sim = Simulator(REGISTRY, seed=5, start=START, step=timedelta(minutes=2), spills=[spill], faults=False,
                    stations=TUO)
    arrivals = {e.station_id: e.start for e in sim.events if e.kind is EventKind.SPILL_ARRIVAL}
    stack = DetectorStack(DetectorConfig(upstream_window_s=window_s), registry=REGISTRY)
    first: dict[str, Detection] = {}
    for r in sim.readings(until=START + timedelta(hours=60)):
        for d in stack.process(r):
            if d.kind is DetectionKind.POLLUTION_SPIKE and d.phase is DetectionPhase.ONSET and d.time >= spill.start:
                first.setdefault(d.station_id, d)
    return first, arrivals


def test_the_plume_is_caught_earlier_downstream_and_the_message_names_the_station_above() -> None:
    alone, arrivals = first_spikes(0.0)
    warned, _ = first_spikes(48 * 3600.0)
    assert warned[TUO[0]].time == alone[TUO[0]].time
    assert warned[TUO[1]].time < alone[TUO[1]].time
    # The third station sees too little of the diluted plume to be sure on its own.
    assert TUO[2] not in alone
    assert warned[TUO[2]].time - arrivals[TUO[2]] < timedelta(hours=2)
    assert any(f"（上游 {station} 已报告）" in warned[TUO[2]].message for station in TUO[:2])
    assert "reported upstream at tuo-" in warned[TUO[2]].message


def test_an_expected_parameter_steps_as_water_not_as_an_offset_and_the_expectation_is_state() -> None:
    def step(detector: StationDetector) -> list[Detection]:
        run(detector, [reading(i) for i in range(200)])
        return run(detector, [reading(i, NH3N=1.6) for i in range(200, 260)])

    alone = step(StationDetector(STATION))
    assert any(d.detector.endswith("level_shift") for d in alone)
    expecting = StationDetector(STATION)
    expecting.expect(("NH3N",), T0 + timedelta(days=1), "tuo-damozi")
    state = decode(expecting.snapshot(STATION.station_id).model_dump_json().encode(), STATION.station_id)
    restored = StationDetector.restore(state, STATION, expecting.config)
    out = step(restored)
    assert not any(d.detector.endswith("level_shift") for d in out)
    assert any(d.kind is DetectionKind.POLLUTION_SPIKE and "tuo-damozi" in d.message for d in out)
