"""Regulatory checks of one station: GB 3838 limits of its target class, the section class
(single-factor method) and the ecological minimum flow. No warm-up: a limit is a limit from
the first reading on. The findings say "超标 N 倍" against the section's target class.

>>> from riverguard.stations import load_registry
>>> from detectors.config import DetectorConfig
>>> from detectors.channels import EventBook
>>> station = load_registry().by_id["tuo-tuojiangdaqiao"]
>>> check, book = RegulatoryCheck(station), EventBook(station, DetectorConfig(), {})
>>> from detectors.baseline import ParameterTrack
>>> [(v.kind.value, v.key, v.firing) for v in check.verdicts([("NH3N", ParameterTrack(), 1.6, 0.0)], book)]
[('limit_exceedance', 'NH3N', True), ('class_downgrade', '*', True)]
"""

from __future__ import annotations

from functools import cache
from typing import Final

from detectors.channels import STATION_WIDE, EventBook, Verdict
from detectors.health import Value
from riverguard.models import DetectionKind, Finding
from riverguard.parameters import PARAMETERS, WaterClass, compliant_band, exceedance_multiple, section_class
from riverguard.stations import Station

_K = DetectionKind
_LIMIT_HYSTERESIS: Final = 1.1


class RegulatoryCheck:
    """Verdicts on limits, class and flow for one station (nothing to check without a station)."""

    def __init__(self, station: Station | None, watched: set[str] | None = None) -> None:
        self.station = station
        #: Assessed parameters that exceeded their limit at least once: from then on they count
        #: towards "near the limit" (which keeps an open class downgrade open) on every reading.
        self.watched: set[str] = set() if watched is None else watched

    def verdicts(self, values: list[Value], book: EventBook) -> list[Verdict]:
        """The verdicts of one reading's clean values, for every channel the reading can change."""
        station = self.station
        if station is None:
            return []
        out: list[Verdict] = []
        target = station.target_class
        bands = _compliant_bands(target)
        watched = self.watched
        exceeding: list[str] = []  # fresh values over the target-class limit
        near = False
        for name, track, value, _ in values:
            band = bands.get(name)
            if band is None:
                continue
            low, high = band
            compliant = low <= value <= high
            if compliant and name not in watched:
                continue
            watched.add(name)
            fresh_excess = not compliant and track.fresh
            if fresh_excess:
                exceeding.append(name)
            holding = _near_limit(band, value)
            near = near or holding
            if fresh_excess or book.live(_K.LIMIT_EXCEEDANCE, name):
                out.append(Verdict(_K.LIMIT_EXCEEDANCE, name, fresh_excess, holding,
                                   exceedance_multiple(name, value, target) or 0.0, (name,)))
        # Single-factor method: the section is worse than its target exactly when one assessed
        # value exceeds its target-class limit, so the class itself is only computed to report it.
        # Repeats of a continuously varying signal are not new evidence (see ParameterTrack.fresh).
        if exceeding or book.live(_K.CLASS_DOWNGRADE, STATION_WIDE):
            worst = section_class({name: value for name, _, value, _ in values}) or target
            out.append(Verdict(_K.CLASS_DOWNGRADE, STATION_WIDE, bool(exceeding), near, float(worst),
                               tuple(sorted(exceeding)), note=f"{worst.roman}类 (目标 {target.roman}类)"))
        min_flow = station.min_flow_m3s
        if min_flow is None:
            return out
        flow = next((v for name, _, v, _ in values if name == "discharge"), None)
        if flow is None:
            return out
        low_flow = flow < min_flow
        if low_flow or book.live(_K.ECOLOGICAL_FLOW_LOW, STATION_WIDE):
            finding = (Finding(parameter="discharge", value=flow, limit=min_flow, unit="m3/s"),)
            out.append(Verdict(_K.ECOLOGICAL_FLOW_LOW, STATION_WIDE, low_flow, False, min_flow / max(flow, 1e-9),
                               describe=lambda _: finding))
        return out


def _near_limit(band: tuple[float, float], value: float) -> bool:
    """Within 10 % of the limit on the wrong side: water hovering at the limit keeps one event
    open instead of opening a new one every time a reading crosses it."""
    low, high = band
    over, under = value * _LIMIT_HYSTERESIS, value / _LIMIT_HYSTERESIS
    return not (low <= over <= high and low <= under <= high)


@cache
def _compliant_bands(target: WaterClass) -> dict[str, tuple[float, float]]:
    """Per target class, the compliant band of every assessed parameter (shared by its stations)."""
    return {name: band for name in PARAMETERS if (band := compliant_band(name, target)) is not None}
