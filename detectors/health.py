"""Instrument health: which values are evidence about the river and which are about the sensor.

Sensor health is checked first; a value that fails here never feeds a baseline or the
pollution logic. It becomes a ``maintenance`` or ``sensor_fault`` detection instead.

>>> def plausible(parameter, value):
...     low, high = PLAUSIBLE_RANGES.get(parameter, ANY_VALUE)
...     return low <= value <= high
>>> plausible("pH", 7.8), plausible("pH", 0.2), plausible("COD", -1.0), plausible("Redox", -250.0)
(True, False, False, True)
"""

from __future__ import annotations

import math
from typing import Final

from detectors.baseline import ParameterTrack
from detectors.channels import STATION_WIDE, EventBook, Verdict
from detectors.config import DetectorConfig
from riverguard.models import DataFlag, DetectionKind, Reading
from riverguard.parameters import PARAMETERS

#: HJ 212 flags that mean someone is working on the instrument.
MAINTENANCE_FLAGS: Final = frozenset({DataFlag.MAINTENANCE, DataFlag.CALIBRATION})
#: HJ 212 flags that mean the instrument or its link is broken.
FAULT_FLAGS: Final = frozenset({DataFlag.FAULT, DataFlag.STOPPED, DataFlag.COMMUNICATION_FAULT})

#: Hydrological quantities: they do not say whether the water is polluted and a flow change is
#: not a "correlated change" that would make a single-parameter step look like water.
HYDROLOGICAL: Final = frozenset({"discharge", "water_level"})

#: Values inside the physical range that a working surface-water sensor still cannot report:
#: a conductivity of exactly zero is a probe out of water, DO far above saturation is a
#: fouled membrane, pH outside 1..13 in a river is a broken electrode.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "pH": (1.0, 13.0),
    "DO": (0.0, 20.0),
    "temperature": (-1.0, 40.0),
    "conductivity": (1e-6, 100_000.0),
}


#: Where plausible values lie, per parameter (unknown signals: anywhere, :data:`ANY_VALUE`); the
#: detector looks a value's range up inline, once per value on its hottest path.
PLAUSIBLE_RANGES: Final[dict[str, tuple[float, float]]] = {
    **{p.name: p.physical_range for p in PARAMETERS.values()},
    **PLAUSIBLE,
}
ANY_VALUE: Final = (-math.inf, math.inf)

#: A clean value of a reading: parameter, its track, the value and its score before learning.
Value = tuple[str, ParameterTrack, float, float]


class InstrumentHealth:
    """Per parameter of one station: its track, whether its sensor is stuck or stepped, and the
    maintenance and sensor-fault verdicts of each reading."""

    def __init__(self, config: DetectorConfig, tracks: dict[str, ParameterTrack] | None = None) -> None:
        self.config = config
        self.tracks: dict[str, ParameterTrack] = {} if tracks is None else tracks

    def sort(self, reading: Reading, hour: int, diurnal: bool) -> tuple[list[str], set[str], list[Value]]:
        """Maintenance-flagged and faulty names, then the clean values with their tracks and
        scores, in reading order (updating the health statistics of every clean value)."""
        config = self.config
        maintenance: list[str] = []
        flagged: set[str] = set()
        values: list[Value] = []
        stuck_min = config.stuck_min_readings
        tracks = self.tracks
        normal = DataFlag.NORMAL
        for name, measurement in reading.values.items():
            flag = measurement.flag
            if flag is not normal:
                if flag in MAINTENANCE_FLAGS:
                    maintenance.append(name)
                    continue
                if flag in FAULT_FLAGS:
                    flagged.add(name)
                    continue
            value = measurement.value
            low, high = PLAUSIBLE_RANGES.get(name, ANY_VALUE)
            if not low <= value <= high:
                flagged.add(name)
                continue
            track = tracks.get(name)
            if track is None:
                track = tracks[name] = ParameterTrack()
            track.observe(value)
            if track.run >= stuck_min and track.stuck(
                stuck_min, config.stuck_min_change_rate, config.stuck_log_probability
            ):
                flagged.add(name)
                continue
            values.append((name, track, value, track.score(value, hour, diurnal)))
        return maintenance, flagged, values

    def screen(self, values: list[Value]) -> dict[str, float]:
        """Lone steps, then the warmed-up, healthy, non-hydrological parameters with how surprising
        their score is: one pass, since each step verdict depends only on its own track and on
        how many parameters moved."""
        config = self.config
        warmup, related, step_scales, floor = (
            config.warmup_readings, config.related_scales, config.step_scales, config.tail_floor
        )
        moving = sum(1 for name, _, _, z in values if abs(z) >= related and name not in HYDROLOGICAL)
        several = len(values) > 1
        eligible: dict[str, float] = {}
        for name, track, value, z in values:
            if track.n < warmup:
                continue
            if track.step_left > 0 or track.faulty or abs(z) >= step_scales:
                self._check_step(name, track, value, z, moving, several)
            if track.step_left == 0 and not track.faulty and name not in HYDROLOGICAL:
                eligible[name] = track.surprise(z, floor)
        return eligible

    def _check_step(self, name: str, track: ParameterTrack, value: float, z: float, moving: int, several: bool) -> None:
        """A lone clean step (jump, then a flat new level, nothing related moving) is the instrument.
        ``moving`` counts the parameters that moved (see :meth:`screen`), this one included."""
        config = self.config
        others_moving = moving - (abs(z) >= config.related_scales and name not in HYDROLOGICAL) > 0
        if track.step_left > 0:
            if others_moving or abs(value - track.step_level) > 3.0 * track.noise():
                track.step_left = 0
            else:
                track.step_left -= 1
                track.faulty = track.step_left == 0
        elif track.faulty:
            if others_moving or abs(z) < config.related_scales:
                track.faulty = False
        elif abs(z) >= config.step_scales and not others_moving and several:
            track.step_left = config.step_confirm_readings
            track.step_level = value

    def verdicts(self, reading: Reading, maintenance: list[str], flagged: set[str], book: EventBook) -> list[Verdict]:
        """Maintenance (station-wide) and sensor faults (per parameter) of this reading, for every
        channel whose latch the reading can change."""
        out = []
        if maintenance or book.live(DetectionKind.MAINTENANCE, STATION_WIDE):
            out.append(Verdict(DetectionKind.MAINTENANCE, STATION_WIDE, bool(maintenance), False,
                               float(len(maintenance)), tuple(sorted(maintenance))))
        tracks = self.tracks
        if flagged:
            for name in flagged - tracks.keys():
                # Impossible or fault-flagged before the parameter ever delivered a good value.
                tracks[name] = ParameterTrack()
        sensor_fault = DetectionKind.SENSOR_FAULT
        for name, track in tracks.items():
            faulty = name in flagged or track.faulty
            if (faulty or book.live(sensor_fault, name)) and name in reading.values:
                out.append(Verdict(sensor_fault, name, faulty, False, 1.0, (name,)))
        return out
