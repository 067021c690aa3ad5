"""Regulatory checks alone: the verdicts on limits, class and flow; and the compliant-band
shortcut, which must agree with :func:`exceedance_multiple` exactly, including right at the limits."""

from __future__ import annotations

import math

import pytest

from detectors.baseline import ParameterTrack
from detectors.channels import EventBook
from detectors.config import DetectorConfig
from detectors.health import Value
from detectors.limits import RegulatoryCheck
from riverguard.models import Detection, DetectionKind
from riverguard.parameters import PARAMETERS, WaterClass, compliant_band, exceedance_multiple
from riverguard.stations import load_registry
from tests.support.readings import reading


def _around(edge: float) -> list[float]:
    """The edge, its float neighbours, and values 10 % either side (the hysteresis band)."""
    return [edge, math.nextafter(edge, math.inf), math.nextafter(edge, -math.inf), edge * 1.1, edge / 1.1]


@pytest.mark.parametrize("target", list(WaterClass))
def test_compliant_band_is_exactly_where_the_multiple_is_zero(target: WaterClass) -> None:
    for name in PARAMETERS:
        band = compliant_band(name, target)
        assert (band is None) == (exceedance_multiple(name, 1.0, target) is None), name
        if band is None:
            continue
        values = [0.0, -1.0, math.inf, -math.inf] + [v for e in band if math.isfinite(e) for v in _around(e)]
        for value in values:
            multiple = exceedance_multiple(name, value, target)
            assert multiple is not None
            assert (multiple > 0) == (not band[0] <= value <= band[1]), (name, value)


def _values(**values: float) -> list[Value]:
    return [(name, ParameterTrack(), value, 0.0) for name, value in values.items()]


def test_regulatory_check_fires_on_fresh_excess_and_holds_near_the_limit() -> None:
    station = load_registry().by_id["tuo-tuojiangdaqiao"]
    check = RegulatoryCheck(station)
    book = EventBook(station, DetectorConfig(), {})
    assert check.verdicts(_values(NH3N=0.5, pH=7.8), book) == []
    over = check.verdicts(_values(NH3N=1.5, pH=7.8), book)
    assert [(v.kind, v.key, v.firing, v.holding) for v in over] == [
        (DetectionKind.LIMIT_EXCEEDANCE, "NH3N", True, True),
        (DetectionKind.CLASS_DOWNGRADE, "*", True, True),
    ]
    assert over[0].score == pytest.approx(0.5)
    assert over[1].note == f"{WaterClass.IV.roman}类 (目标 {WaterClass.III.roman}类)"
    assert check.watched == {"NH3N"}
    # Once opened, a value just under the limit holds the events open (10 % hysteresis).
    r = reading(0)
    out: list[Detection] = []
    for _ in range(2):
        for v in check.verdicts(_values(NH3N=1.5), book):
            book.step(v, r, out)
    assert [d.kind for d in out] == [DetectionKind.LIMIT_EXCEEDANCE, DetectionKind.CLASS_DOWNGRADE]
    near = check.verdicts(_values(NH3N=0.95), book)
    assert [(v.firing, v.holding) for v in near] == [(False, True), (False, True)]


def test_regulatory_check_without_station_or_with_low_flow() -> None:
    assert RegulatoryCheck(None).verdicts(_values(NH3N=9.0), EventBook(None, DetectorConfig(), {})) == []
    station = load_registry().by_id["tuo-tuojiangdaqiao"]
    assert station.min_flow_m3s is not None
    check = RegulatoryCheck(station)
    low = check.verdicts(_values(discharge=station.min_flow_m3s / 2), EventBook(station, DetectorConfig(), {}))
    assert [(v.kind, v.firing, v.score) for v in low] == [(DetectionKind.ECOLOGICAL_FLOW_LOW, True, 2.0)]
    finding = low[0].describe(None)[0] if low[0].describe else None
    assert finding is not None
    assert finding.limit == station.min_flow_m3s
