"""CSV tables for replay/backtest: columns mapped to parameters, rows turned into readings.

Known column names map to canonical parameters (``Tp`` → temperature, ``Trueb`` → turbidity,
``Leit`` → conductivity, ``Level`` → water level, HJ 212 factor codes, canonical names
themselves); a numbered second sensor keeps its number (``Fm_2`` → ``discharge_2``); every other
numeric column is kept as a generic signal under its own name. Naive timestamps are taken as UTC.

>>> canonical_name("Leit"), canonical_name("w21003"), canonical_name("TP"), canonical_name("Redox")
('conductivity', 'NH3N', 'TP', 'Redox')
>>> canonical_name("Level"), canonical_name("Tur"), canonical_name("Fm_2"), canonical_name("Cl_2")
('water_level', 'turbidity', 'discharge_2', 'Cl_2')
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from detectors.errors import ReplayError
from riverguard.models import DataFlag, Measurement, Reading, SourceFormat
from riverguard.parameters import BY_HJ212_CODE, PARAMETERS
from riverguard.stations import StationRegistry

#: Case-sensitive aliases first: "Tp" is temperature in the GECCO data, "TP" is total phosphorus.
_EXACT: Final = {"Tp": "temperature", "T": "temperature"}
_ALIASES: Final = {
    "temp": "temperature",
    "water_temperature": "temperature",
    "water_temp": "temperature",
    "wtemp": "temperature",
    "wt": "temperature",
    "trueb": "turbidity",
    "turb": "turbidity",
    "tur": "turbidity",
    "ntu": "turbidity",
    # Total suspended solids: the same suspended matter turbidity measures optically, and neither has
    # a GB 3838 limit, so it is tracked as turbidity (a file with both keeps TSS as turbidity_2).
    "tss": "turbidity",
    "leit": "conductivity",
    "cond": "conductivity",
    "ec": "conductivity",
    "spc": "conductivity",
    "spcond": "conductivity",
    "specific_conductance": "conductivity",
    "o2": "DO",
    "odo": "DO",
    "dissolved_oxygen": "DO",
    "nh3-n": "NH3N",
    "nh3_n": "NH3N",
    "nh4-n": "NH3N",
    "nh4_n": "NH3N",
    "ammonia": "NH3N",
    "ammonium": "NH3N",
    "codmn": "CODMn",
    "flow": "discharge",
    "q": "discharge",
    # "Fm": flow rate in the GECCO 2018 data (its column description: "Fm: flow rate 1").
    "fm": "discharge",
    "level": "water_level",
    "stage": "water_level",
    "wl": "water_level",
    "gauge_height": "water_level",
}
_LOWER_CANONICAL: Final = {name.lower(): name for name in PARAMETERS}
_MISSING: Final = frozenset({"", "na", "nan", "null", "none", "-", "n/a"})
_TRUE: Final = frozenset({"true", "1", "1.0"})
_FALSE: Final = frozenset({"false", "0", "0.0"})
_NAME: Final = re.compile(r"[^A-Za-z0-9_.-]")
#: A numbered second sensor of a known quantity: "Fm_2", "Cond 2", "turbidity.2".
_NUMBERED: Final = re.compile(r"^(.*?)[ _.-]?(\d+)$")


def canonical_name(column: str) -> str:
    """The parameter a column holds: canonical when recognised (a numbered second sensor of a
    recognised quantity gets the number: ``Fm_2`` → ``discharge_2``), else a cleaned generic name."""
    known = _known(column)
    if known is not None:
        return known
    numbered = _NUMBERED.match(column.strip())
    if numbered is not None and numbered[1] and (base := _known(numbered[1])) is not None:
        return f"{base}_{numbered[2]}"
    cleaned = _NAME.sub("_", column.strip())
    return cleaned if cleaned[:1].isalpha() else f"x_{cleaned}"


def _known(column: str) -> str | None:
    if column in PARAMETERS:
        return column
    if column in _EXACT:
        return _EXACT[column]
    if column in BY_HJ212_CODE:
        return BY_HJ212_CODE[column].name
    lowered = column.strip().lower()
    return _ALIASES.get(lowered) or _LOWER_CANONICAL.get(lowered)


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: its reading (``None`` when every value is missing) and its label."""

    line: int
    time: datetime
    station_id: str
    reading: Reading | None
    label: bool | None


@dataclass(frozen=True, slots=True)
class Table:
    path: Path
    rows: tuple[Row, ...]
    parameters: dict[str, str]  # column -> parameter
    ignored_columns: tuple[str, ...]
    implausible_values: int


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (``[]`` when it cannot be read; :func:`load_table` says why)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def load_table(
    path: Path,
    *,
    time_column: str,
    station_column: str | None = None,
    label_column: str | None = None,
    registry: StationRegistry | None = None,
    default_station: str = "replay",
) -> Table:
    """Read a CSV into readings sorted by time (stable for equal times)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            raw = list(reader)
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path} is not a readable CSV file: {exc}") from exc
    for name, role in ((time_column, "--time-column"), (station_column, "--station-column"),
                       (label_column, "--label-column")):
        if name is not None and name not in header:
            raise ReplayError(f"{path}: {role} {name!r} is not a column; columns are {', '.join(header)}")
    special = {time_column, station_column, label_column}
    candidates = [c for c in header if c not in special]
    numeric = [c for c in candidates if _numeric_column(raw, c)]
    ignored = tuple(c for c in candidates if c not in numeric)
    mapping = _unique({c: canonical_name(c) for c in numeric})
    rows = []
    implausible = 0
    for index, record in enumerate(raw):
        line = index + 2  # header is line 1
        time = _parse_time(path, line, time_column, record.get(time_column) or "")
        station_id = (record.get(station_column) or "").strip() if station_column else default_station
        label = _parse_label(path, line, label_column, record.get(label_column)) if label_column else None
        values: dict[str, Measurement] = {}
        for column, parameter in mapping.items():
            text = (record.get(column) or "").strip()
            if text.lower() in _MISSING:
                continue
            value = float(text)
            if not math.isfinite(value):
                continue
            spec = PARAMETERS.get(parameter)
            if spec is not None and not spec.physical_range[0] <= value <= spec.physical_range[1]:
                # An impossible value is a statement about the instrument: keep it, flagged, so the
                # detector reports a sensor fault instead of the replay crashing or dropping it.
                implausible += 1
                values[parameter] = Measurement.model_construct(value=value, flag=DataFlag.FAULT)
            else:
                # Already checked finite: skip re-validating a million tiny models.
                values[parameter] = Measurement.model_construct(value=value, flag=DataFlag.NORMAL)
        rows.append(Row(line, time, station_id, _reading(path, line, station_id, time, values, registry), label))
    rows.sort(key=lambda r: r.time)
    return Table(path, tuple(rows), mapping, ignored, implausible)


def _reading(
    path: Path, line: int, station_id: str, time: datetime, values: dict[str, Measurement],
    registry: StationRegistry | None,
) -> Reading | None:
    if not values:
        return None
    station = registry.by_id.get(station_id) if registry is not None else None
    try:
        return Reading(
            station_id=station_id,
            river=station.river if station else "replay",
            section=station.section if station else None,
            time=time,
            values=values,
            source_format=SourceFormat.CSV,
        )
    except ValueError as exc:
        raise ReplayError(f"{path} line {line}: station {station_id!r} cannot form a reading: {exc}") from exc


def _unique(mapping: dict[str, str]) -> dict[str, str]:
    """Columns that would map to the same parameter: the first keeps it, the next become its
    numbered sensors (``turbidity_2``)."""
    taken: set[str] = set()
    out = {}
    for column, parameter in mapping.items():
        name, n = parameter, 1
        while name in taken:
            n += 1
            name = f"{parameter}_{n}"
        taken.add(name)
        out[column] = name
    return out


def _numeric_column(raw: list[dict[str, str]], column: str) -> bool:
    present = False
    for record in raw:
        text = (record.get(column) or "").strip()
        if text.lower() in _MISSING:
            continue
        try:
            float(text)
        except ValueError:
            return False
        present = True
    return present


def _parse_time(path: Path, line: int, column: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ReplayError(f"{path} line {line}: {column}={text!r} is not an ISO date-time") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_label(path: Path, line: int, column: str | None, text: str | None) -> bool:
    lowered = (text or "").strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if not lowered:
        raise ReplayError(f"{path} line {line}: {column} is empty; every row needs a label 0/1/true/false "
                          "(an unknown label is not 'no event')")
    raise ReplayError(f"{path} line {line}: {column}={text!r} is not a label (0/1/true/false)")

