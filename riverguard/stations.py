"""The station registry: station id ↔ HJ 212 MN ↔ river ↔ section ↔ units ↔ target class.

Ingest uses it to accept or reject payloads and to normalise units; detectors use the section's
GB 3838 target class and ecological minimum flow; the simulator uses the parameter lists.
The default registry ships in ``riverguard/data/stations.yaml``; ``stations_file`` overrides it.

>>> registry = load_registry()
>>> registry.by_id["tuo-tuojiangdaqiao"].section
'沱江大桥'
>>> registry.by_mn[registry.by_id["tuo-tuojiangdaqiao"].mn].station_id
'tuo-tuojiangdaqiao'
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from riverguard.errors import ConfigError, describe_validation_error
from riverguard.models import RiverId, StationId
from riverguard.parameters import PARAMETERS, UNIT_TO_MG_PER_L, WaterClass
from riverguard.yamlfile import read_yaml_mapping

DEFAULT_STATIONS = "stations.yaml"
#: Flow units to m³/s. HJ 212-2017 Table B.1 gives w00000 (污水流量) in L/s, river stations in m³/s.
FLOW_TO_M3_PER_S: Final[dict[str, float]] = {"m3/s": 1.0, "m³/s": 1.0, "L/s": 1e-3, "m3/h": 1 / 3600, "m³/h": 1 / 3600}


def unit_factor(parameter: str, unit: str) -> float:
    """The multiplier from ``unit`` to ``parameter``'s canonical unit; ValueError naming the units
    it knows when there is no such conversion.

    >>> unit_factor("Cd", "µg/L"), unit_factor("discharge", "L/s"), unit_factor("pH", "")
    (0.001, 0.001, 1.0)
    """
    canonical = PARAMETERS[parameter].unit
    if unit == canonical:
        return 1.0
    known = UNIT_TO_MG_PER_L if canonical == "mg/L" else FLOW_TO_M3_PER_S if canonical == "m3/s" else {}
    if unit not in known:
        raise ValueError(f"unit {unit!r} of {parameter} is not one of {', '.join(dict.fromkeys([canonical, *known]))}")
    return known[unit] / known[canonical]


class Station(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # The wire models' own types: a registered station's id and river are valid in every reading.
    station_id: StationId
    mn: Annotated[str, Field(min_length=1, max_length=24)]
    river: RiverId
    section: str
    city: str
    target_class: WaterClass = WaterClass.III

    @field_validator("target_class", mode="before")
    @classmethod
    def _roman(cls, value: object) -> object:
        names = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
        return names.get(value, value) if isinstance(value, str) else value

    #: Ecological minimum flow (m3/s) of the section; ``None`` when not configured.
    min_flow_m3s: float | None = Field(default=None, ge=0)
    parameters: tuple[str, ...]
    #: Units the station's instruments report in, where they differ from the canonical unit.
    units: dict[str, str] = Field(default_factory=dict)
    payload_format: Literal["json", "hj212"] = "json"
    #: Typical values used by the simulator (canonical units).
    typical: dict[str, float] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PARAMETERS]
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; known: {', '.join(sorted(PARAMETERS))}")
        return value

    @field_validator("units")
    @classmethod
    def _known_units(cls, value: dict[str, str]) -> dict[str, str]:
        for parameter, unit in value.items():
            if parameter not in PARAMETERS:
                raise ValueError(f"units given for unknown parameter {parameter!r}")
            unit_factor(parameter, unit)
        return value

    def to_canonical(self, parameter: str, value: float) -> float:
        """Convert a value reported in this station's unit to the canonical unit (mg/L)."""
        factor = self.unit_factors.get(parameter)
        return value if factor is None else value * factor

    @cached_property
    def unit_factors(self) -> dict[str, float]:
        """Reported → canonical multipliers of the parameters whose unit differs (ingest runs this per value)."""
        return {
            parameter: unit_factor(parameter, unit)
            for parameter, unit in self.units.items()
            if unit != PARAMETERS[parameter].unit
        }


class StationRegistry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stations: tuple[Station, ...]

    @model_validator(mode="after")
    def _unique(self) -> StationRegistry:
        for attribute in ("station_id", "mn"):
            seen: set[str] = set()
            for station in self.stations:
                value = getattr(station, attribute)
                if value in seen:
                    raise ValueError(f"duplicate {attribute} {value!r}")
                seen.add(value)
        return self

    @cached_property
    def by_id(self) -> dict[str, Station]:
        return {s.station_id: s for s in self.stations}

    @cached_property
    def by_mn(self) -> dict[str, Station]:
        return {s.mn: s for s in self.stations}

    def on_river(self, river: str) -> list[Station]:
        return [s for s in self.stations if s.river == river]


def load_registry(path: Path | None = None) -> StationRegistry:
    """Load and validate a registry file; errors name the file, the entry and the problem."""
    if path is None:
        text = resources.files("riverguard.data").joinpath(DEFAULT_STATIONS).read_text(encoding="utf-8")
        origin = f"riverguard/data/{DEFAULT_STATIONS}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read station registry {path}: {exc.strerror}") from exc
        origin = str(path)
    try:
        data = yaml.safe_load(text)
        return StationRegistry.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"station registry {origin} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"station registry {origin}: {describe_validation_error(exc)}") from exc


class StationSecrets:
    """The HJ 212 access passwords (PW) of stations, by station id. A data logger proves which
    station it is with the PW of every frame; the gateway also writes it into the commands it
    sends. The passwords are ``SecretStr`` and never appear in logs, reprs or error messages.

    >>> secrets = StationSecrets({"tuo-hongyuan": SecretStr("123456")})
    >>> secrets.matches("tuo-hongyuan", "123456"), secrets.matches("tuo-hongyuan", "654321"), secrets
    (True, False, StationSecrets(1 station))
    """

    def __init__(self, passwords: Mapping[str, SecretStr]) -> None:
        self._passwords = dict(passwords)

    def __repr__(self) -> str:
        return f"StationSecrets({len(self._passwords)} station{'s' if len(self._passwords) != 1 else ''})"

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._passwords

    def __len__(self) -> int:
        return len(self._passwords)

    def matches(self, station_id: str, password: str | None) -> bool:
        """True when ``password`` is the station's PW (compared in constant time)."""
        known = self._passwords.get(station_id)
        if known is None or password is None:
            return False
        return hmac.compare_digest(known.get_secret_value().encode(), password.encode())

    def password(self, station_id: str) -> str | None:
        """The PW to write into a command for the station (only the gateway's frames need it)."""
        known = self._passwords.get(station_id)
        return None if known is None else known.get_secret_value()


def load_secrets(path: Path, registry: StationRegistry) -> StationSecrets:
    """Station PWs from a YAML mapping ``station_id: password`` (a file only the gateway can read,
    e.g. a Docker or Kubernetes secret mounted as a file); errors name the file and the station,
    never a password."""
    data = read_yaml_mapping(path, "station passwords file", empty_ok=True)
    unknown = sorted(str(station_id) for station_id in data if station_id not in registry.by_id)
    if unknown:
        raise ConfigError(f"station passwords file {path}: stations not in the registry: {', '.join(unknown)}")
    bad = sorted(str(station_id) for station_id, password in data.items() if not isinstance(password, str | int))
    if bad or any(str(password) == "" for password in data.values()):
        raise ConfigError(f"station passwords file {path}: the password of {', '.join(bad) or 'a station'} "
                          "must be a non-empty string")
    return StationSecrets({str(station_id): SecretStr(str(password)) for station_id, password in data.items()})
