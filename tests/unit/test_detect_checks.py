"""The shared check suite, run over every detector class (like river's ``utils.estimator_checks``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import pytest

from detectors import DetectorConfig, DetectorStack, StationDetector
from detectors.state import decode
from riverguard.models import Detection, Measurement, Reading, SourceFormat
from riverguard.stations import load_registry
from tests.support.readings import STATION, T0, reading, run


class Detecting(Protocol):
    def process(self, reading: Reading) -> list[Detection]: ...

    @property
    def last_score(self) -> float: ...


class _StackAsDetector:
    """The stack behind the detector interface, so it runs through the same checks."""

    def __init__(self) -> None:
        self.stack = DetectorStack(registry=load_registry())

    def process(self, reading: Reading) -> list[Detection]:
        return self.stack.process(reading)

    @property
    def last_score(self) -> float:
        return self.stack.detectors[STATION.station_id].last_score


Factory = Callable[[], Detecting]
FACTORIES: dict[str, Factory] = {
    "station-detector-unregistered": lambda: StationDetector(None),
    "station-detector-registered": lambda: StationDetector(STATION),
    "station-detector-no-hst": lambda: StationDetector(STATION, DetectorConfig(hst_weight=0)),
    "detector-stack": _StackAsDetector,
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def through_state(detector: Detecting) -> Detecting:
    """The detector as a restarted process gets it back: through its checkpoint bytes."""
    if isinstance(detector, _StackAsDetector):
        clone = _StackAsDetector()
        assert clone.stack.restore(STATION.station_id, detector.stack.checkpoint(STATION.station_id))
        return clone
    assert isinstance(detector, StationDetector)
    state = decode(detector.snapshot(STATION.station_id).model_dump_json().encode(), STATION.station_id)
    return StationDetector.restore(state, detector.station, detector.config)


def test_checkpoint_round_trip_gives_identical_outputs(make: Factory) -> None:
    detector = make()
    run(detector, [reading(i) for i in range(150)])
    clone = through_state(detector)
    tail = [reading(i, NH3N=2.5, DO=5.0) if 160 <= i < 190 else reading(i) for i in range(150, 260)]
    original_out = run(detector, tail)
    clone_out = run(clone, tail)
    assert original_out == clone_out
    assert any(d.kind.is_pollution for d in original_out)


def test_missing_and_new_parameters_are_handled(make: Factory) -> None:
    detector = make()
    run(detector, [reading(i) for i in range(120)])
    sparse = Reading(
        station_id=STATION.station_id, river=STATION.river, time=T0 + timedelta(minutes=120),
        values={"pH": Measurement(value=7.8)}, source_format=SourceFormat.SIMULATOR,
    )
    assert [d for d in detector.process(sparse) if d.kind.is_pollution] == []
    extended = [
        reading(i).model_copy(update={"values": {**reading(i).values, "TP": Measurement(value=0.05),
                                                 "vendor_signal": Measurement(value=float(i % 5))}})
        for i in range(121, 260)
    ]
    out = run(detector, extended)
    assert [d for d in out if d.kind.is_pollution] == []


def test_obvious_spike_scores_higher_than_normal_data(make: Factory) -> None:
    detector = make()
    normal_scores = []
    for i in range(200):
        detector.process(reading(i))
        if i >= 100:
            normal_scores.append(detector.last_score)
    detector.process(reading(200, NH3N=3.0, turbidity=90.0, conductivity=700.0))
    assert detector.last_score > 3 * max(normal_scores)
