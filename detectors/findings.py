"""What each parameter contributed to a detection: its value, its baseline, its limit.

>>> from datetime import datetime, timezone
>>> from riverguard.models import Measurement, Reading, SourceFormat
>>> r = Reading(station_id="demo", river="tuo", time=datetime(2024, 5, 1, tzinfo=timezone.utc),
...             values={"NH3N": Measurement(value=2.4)}, source_format=SourceFormat.SIMULATOR)
>>> from riverguard.parameters import WaterClass
>>> [(f.parameter, f.limit, f.multiple) for f in value_findings(r, ("NH3N", "TP"), WaterClass.III, {})]
[('NH3N', 1.0, 1.4)]
"""

from __future__ import annotations

from collections.abc import Mapping

from detectors.baseline import ParameterTrack
from riverguard.models import Finding, Reading
from riverguard.parameters import PARAMETERS, WaterClass, exceedance_multiple, gb3838_limit


def value_findings(
    reading: Reading, parameters: tuple[str, ...], target: WaterClass | None, tracks: Mapping[str, ParameterTrack]
) -> tuple[Finding, ...]:
    """One finding per named parameter the reading holds; limits only for a section with a target class."""
    findings = []
    for name in parameters:
        measurement = reading.values.get(name)
        if measurement is None:
            continue
        track = tracks.get(name)
        spec = PARAMETERS.get(name)
        limit = gb3838_limit(name, target) if target is not None else None
        multiple = exceedance_multiple(name, measurement.value, target) if target is not None else None
        findings.append(
            Finding(
                parameter=name,
                value=measurement.value,
                baseline=track.level if track is not None and track.n > 0 else None,
                limit=limit,
                target_class=target if limit is not None else None,
                multiple=multiple if limit is not None else None,
                unit=spec.unit if spec else "",
            )
        )
    return tuple(findings)
