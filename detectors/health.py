"""Instrument health: which values are evidence about the river and which are about the sensor.

Sensor health is checked first; a value that fails here never feeds a baseline or the
pollution logic. It becomes a ``maintenance`` or ``sensor_fault`` detection instead.

>>> from detectors.config import DetectorConfig
>>> from datetime import datetime, timezone
>>> from riverguard.models import Measurement, SourceFormat
>>> r = Reading(station_id="demo", river="tuo", time=datetime(2024, 5, 1, tzinfo=timezone.utc),
...             values={"pH": Measurement(value=0.2), "NH3N": Measurement(value=0.3, flag=DataFlag.MAINTENANCE),
...                     "DO": Measurement(value=8.1)}, source_format=SourceFormat.SIMULATOR)
>>> maintenance, faulty, values = InstrumentHealth(DetectorConfig()).sort(r, 0, False)
>>> maintenance, faulty, [name for name, *_ in values]
(['NH3N'], {'pH': <FaultType.OUT_OF_RANGE: 'out_of_range'>}, ['DO'])
"""

from __future__ import annotations

from typing import Final

from detectors.baseline import ParameterTrack
from detectors.channels import STATION_WIDE, EventBook, Verdict
from detectors.config import DetectorConfig
from detectors.faults import Assessment, FaultType, SensorFaults
from detectors.flood import FloodPhase, FloodWindow
from detectors.quantities import flood_response, is_stage, plausible_range
from riverguard.models import DataFlag, DetectionKind, Reading

#: HJ 212 flags that mean someone is working on the instrument.
MAINTENANCE_FLAGS: Final = frozenset({DataFlag.MAINTENANCE, DataFlag.CALIBRATION})
#: HJ 212 flags that mean the instrument or its link is broken.
FAULT_FLAGS: Final = frozenset({DataFlag.FAULT, DataFlag.STOPPED, DataFlag.COMMUNICATION_FAULT})

#: A clean value of a reading: parameter, its track, the value and its score before learning.
Value = tuple[str, ParameterTrack, float, float]

class InstrumentHealth:
    """Per parameter of one station: its track and its sensor's faults, and the maintenance and
    sensor-fault verdicts of each reading."""

    def __init__(
        self,
        config: DetectorConfig,
        tracks: dict[str, ParameterTrack] | None = None,
        sensors: dict[str, SensorFaults] | None = None,
    ) -> None:
        self.config = config
        self.tracks: dict[str, ParameterTrack] = {} if tracks is None else tracks
        self.sensors: dict[str, SensorFaults] = {} if sensors is None else sensors
        #: The fault verdicts of the latest reading, by parameter and type (strength >= 1 fires).
        self.assessed: dict[str, Assessment] = {}
        #: How strongly the latest reading looks like an instrument problem (>= 1: it does).
        self.score = 0.0
        self.calm = True
        #: Where the station is in a flood (see :mod:`detectors.flood`), as of the latest reading.
        self.flood = FloodWindow()
        self.flood_phase = FloodPhase.NONE

    def sort(self, reading: Reading, hour: int, diurnal: bool) -> tuple[list[str], dict[str, FaultType], list[Value]]:
        """Maintenance-flagged names, faulty names with their fault, then the clean values with
        their tracks and scores, in reading order (updating the health statistics of every clean value)."""
        config = self.config
        maintenance: list[str] = []
        flagged: dict[str, FaultType] = {}
        values: list[Value] = []
        stuck_min = config.stuck_min_readings
        tracks, sensors = self.tracks, self.sensors
        normal = DataFlag.NORMAL
        for name, measurement in reading.values.items():
            flag = measurement.flag
            if flag is not normal:
                if flag in MAINTENANCE_FLAGS:
                    maintenance.append(name)
                    continue
                if flag in FAULT_FLAGS or not flag.is_water_evidence:
                    # A station's own (extension) flag: its meaning is unknown, so the value is not
                    # evidence about the water; it is reported with the fault flags.
                    flagged[name] = FaultType.FLAG
                    continue
            value = measurement.value
            low, high = plausible_range(name)
            if not low <= value <= high:
                flagged[name] = FaultType.OUT_OF_RANGE
                continue
            track = tracks.get(name)
            if track is None:
                track = tracks[name] = ParameterTrack()
            track.observe(value, config)
            if track.run >= stuck_min and track.stuck(
                stuck_min, config.stuck_min_change_rate, config.stuck_log_probability
            ):
                flagged[name] = FaultType.FLAT_LINE
                continue
            sensor = sensors.get(name)
            # While a level shift holds, the water is the value less the sensor's offset.
            offset = sensor.offset if sensor is not None else 0.0
            values.append((name, track, value, track.score(value - offset, hour, diurnal)))
        return maintenance, flagged, values

    def screen(
        self, values: list[Value], maintenance: bool, at_s: float, expected: frozenset[str] = frozenset()
    ) -> dict[str, float]:
        """The shape-based faults of every warmed-up value, judged with the other parameters of the
        reading; then the parameters that are evidence about the water (healthy, not hydrological),
        with how surprising their deviation is. A parameter in ``expected`` (an upstream station
        reported it) is never lone: its change is the water's. In a flood turbidity rising and
        conductivity falling are the flood's own doing, and while it recedes so is their way back:
        they are no evidence then. ``at_s``: the reading's time (epoch s)."""
        config = self.config
        warmup, related, floor = config.warmup_readings, config.related_jump, config.tail_floor
        far, flood_z = config.related_surprise, config.flood_z
        sensors = self.sensors
        jumping = hydrology_jumping = deviating = 0
        calm = True
        flooding = False
        judged = []
        for name, track, value, z in values:
            sensor = sensors.get(name)
            if sensor is None:
                sensor = sensors[name] = SensorFaults(name, config)
            if maintenance:
                sensor.reset()
            if track.n < warmup:
                continue
            jump = track.jump
            jumped = jump >= related or jump <= -related
            usual = track.usual
            surprise = (z if z >= 0.0 else -z) / (usual if usual > floor else floor)
            if sensor.hydrological:
                hydrology_jumping += jumped
                if surprise >= 1.0:
                    calm = False
                if z >= flood_z and is_stage(name):
                    flooding = True
            else:
                jumping += jumped
                deviating += surprise >= far
            judged.append((name, sensor, track, value, z, surprise, jumped))
        #: Level and flow within their usual range: what the other parameters do now is theirs,
        #: not the flood's (their usual deviations are learned only then).
        self.calm = calm
        phase = self.flood_phase = self.flood.update(flooding, at_s)
        flood = phase is not FloodPhase.NONE
        assessed: dict[str, Assessment] = {}
        eligible: dict[str, float] = {}
        score = 0.0
        for name, sensor, track, value, z, surprise, jumped in judged:
            hydro = sensor.hydrological
            own = jumped and not hydro
            direction = flood_response(name) if flood else 0.0
            verdict = sensor.assess(
                value, value - sensor.offset - z * track.unit, z if z >= 0.0 else -z, surprise, track.jump,
                jumping - own == 0 and deviating - (surprise >= far and not hydro) == 0
                and name not in expected,
                hydrology_jumping - (jumped and hydro) == 0, config, at_s,
                settling=direction != 0.0,
            )
            assessed[name] = verdict
            spike = verdict.spike
            score = max(score, spike, verdict.shift, verdict.variability, verdict.drift)
            flood_made = direction != 0.0 and (phase is FloodPhase.RECEDING or z * direction > 0.0)
            if spike < 1.0 and not hydro and not flood_made:
                eligible[name] = surprise
        self.assessed = assessed
        self.score = score
        return eligible

    def verdicts(
        self, reading: Reading, maintenance: list[str], flagged: dict[str, FaultType], book: EventBook
    ) -> list[Verdict]:
        """Maintenance (station-wide) and sensor faults (per parameter and type) of this reading,
        for every channel whose latch the reading can change."""
        config = self.config
        out = []
        if maintenance or book.live(DetectionKind.MAINTENANCE, STATION_WIDE):
            out.append(Verdict(DetectionKind.MAINTENANCE, STATION_WIDE, bool(maintenance), False,
                               float(len(maintenance)), tuple(sorted(maintenance))))
        if maintenance or flagged:
            self.score = max(self.score, 2.0)
        sensors = self.sensors
        for name in flagged.keys() - sensors.keys():
            # Impossible or fault-flagged before the parameter ever delivered a good value.
            sensors[name] = SensorFaults(name, config)
        sensor_fault = DetectionKind.SENSOR_FAULT
        assessed = self.assessed
        values = reading.values
        live = book.live_keys
        for name, sensor in sensors.items():
            if name not in values:
                continue
            hard = flagged.get(name)
            verdict = assessed.get(name)
            keys = sensor.keys
            if hard is None and (verdict is None or max(verdict) < 1.0) and not (
                live and any((sensor_fault, key) in live for key in keys.values())
            ):
                continue
            for fault in _HARD:
                key = keys[fault]
                if hard is fault or (sensor_fault, key) in live:
                    out.append(Verdict(sensor_fault, key, hard is fault, False, 1.0, (name,),
                                       persistence=config.fault_persistence, subtype=fault.value))
            if verdict is None:
                continue
            for fault, strength, persistence in (
                (FaultType.SPIKE, verdict.spike, config.transient_persistence),
                (FaultType.LEVEL_SHIFT, verdict.shift, config.fault_persistence),
                (FaultType.HIGH_VARIABILITY, verdict.variability, config.fault_persistence),
                (FaultType.DRIFT, verdict.drift, config.fault_persistence),
            ):
                key = keys[fault]
                if strength >= 1.0 or (sensor_fault, key) in live:
                    out.append(Verdict(sensor_fault, key, strength >= 1.0, strength >= config.fault_hold_ratio,
                                       strength, (name,), persistence=persistence, subtype=fault.value))
        return out


_HARD: Final = (FaultType.FLAG, FaultType.OUT_OF_RANGE, FaultType.FLAT_LINE)
