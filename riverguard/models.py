"""Wire models: what travels on the topics (pydantic v2, JSON on the wire).

A ``Reading`` is one timestamped set of measurements of one station, values keyed by
canonical parameter name (:mod:`riverguard.parameters`) and already in canonical units.

>>> from datetime import datetime, timezone
>>> r = Reading(station_id="tuo-sanhuangmiao", river="tuo",
...             time=datetime(2024, 1, 5, 10, 30, tzinfo=timezone.utc),
...             values={"NH3N": Measurement(value=0.42)}, source_format=SourceFormat.JSON)
>>> r.values["NH3N"].flag
<DataFlag.NORMAL: 'N'>
>>> Reading.model_validate_json(r.model_dump_json()) == r
True
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_json

from riverguard.parameters import PARAMETERS, WaterClass

SCHEMA_VERSION: Final = 1

StationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RiverId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]


class DataFlag(StrEnum):
    """HJ 212-2017 data flags (§6.6.4, Table 8). Only N, S (manually entered) and T (over the
    measuring range) say something about the water.

    The standard's flag table is extensible, so stations send flags of their own ("P", "H" …):
    any other single upper-case letter is kept as an *extension* flag (``DataFlag("P")``), whose
    meaning riverguard does not know — its values are kept but are not evidence of water quality.

    >>> DataFlag("P").is_standard, DataFlag("P").is_water_evidence, DataFlag("P") is DataFlag("P")
    (False, False, True)
    """

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    MANUAL = "S"
    FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMUNICATION_FAULT = "B"

    @classmethod
    def _missing_(cls, value: object) -> DataFlag | None:
        if not (isinstance(value, str) and len(value) == 1 and "A" <= value <= "Z"):
            return None
        extension = str.__new__(cls, value)
        extension._name_ = f"EXTENSION_{value}"
        extension._value_ = value
        # Kept in the value map, so each letter is one member (``is`` and pickling work).
        return cls._value2member_map_.setdefault(value, extension)  # type: ignore[return-value]

    @property
    def is_standard(self) -> bool:
        """False for an extension flag (a letter not in the standard's table)."""
        return self._name_ in type(self).__members__

    @property
    def is_water_evidence(self) -> bool:
        """True when the value describes the river rather than the instrument."""
        return self in _WATER_EVIDENCE


_WATER_EVIDENCE: Final = frozenset({DataFlag.NORMAL, DataFlag.MANUAL, DataFlag.OVER_RANGE})


class SourceFormat(StrEnum):
    JSON = "json"
    HJ212 = "hj212"
    CSV = "csv"
    SIMULATOR = "simulator"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Measurement(_Frozen):
    """One measured value in canonical units with its data flag."""

    # Checked by pydantic-core rather than a Python validator: every record on the bus is
    # validated at least twice (ingest builds it, each consumer parses it), ten values each.
    value: Annotated[float, Field(allow_inf_nan=False)]
    flag: DataFlag = DataFlag.NORMAL


class Reading(_Frozen):
    station_id: StationId
    river: RiverId
    time: AwareDatetime
    values: dict[ParameterName, Measurement] = Field(min_length=1)
    source_format: SourceFormat
    section: str | None = None

    @field_validator("values")
    @classmethod
    def _known_names_within_physical_range(cls, values: dict[str, Measurement]) -> dict[str, Measurement]:
        for name, measurement in values.items():
            spec = PARAMETERS.get(name)
            if spec is None or measurement.flag not in _WATER_EVIDENCE:
                continue
            low, high = spec.physical_range
            if not low <= measurement.value <= high:
                raise ValueError(
                    f"{name}={measurement.value} is outside the physical range {low:g}..{high:g}"
                    f"{(' ' + spec.unit) if spec.unit else ''}"
                )
        return values

    def normal_values(self) -> dict[str, float]:
        """Values that are evidence of water quality (flag N, S or T)."""
        return {k: m.value for k, m in self.values.items() if m.flag.is_water_evidence}


class DetectionKind(StrEnum):
    POLLUTION_SPIKE = "pollution_spike"
    LIMIT_EXCEEDANCE = "limit_exceedance"
    SENSOR_FAULT = "sensor_fault"
    MAINTENANCE = "maintenance"
    DATA_GAP = "data_gap"
    ECOLOGICAL_FLOW_LOW = "ecological_flow_low"
    CLASS_DOWNGRADE = "class_downgrade"

    @property
    def is_pollution(self) -> bool:
        return self in (DetectionKind.POLLUTION_SPIKE, DetectionKind.LIMIT_EXCEEDANCE, DetectionKind.CLASS_DOWNGRADE)


class DetectionPhase(StrEnum):
    """Where in its event a detection stands: the event logic emits onset, updates, and clear."""

    ONSET = "onset"
    UPDATE = "update"
    CLEARED = "cleared"


class Finding(_Frozen):
    """What one parameter contributed to a detection."""

    parameter: str
    value: float
    baseline: float | None = None
    limit: float | None = None
    target_class: WaterClass | None = None
    multiple: float | None = None  # "超标 N 倍", (value - limit) / limit
    unit: str = ""


class Detection(_Frozen):
    """An event-level finding of the detector stack at one station.

    ``event_id`` is stable for the whole event (onset → updates → cleared), and
    ``detection_id`` is stable for one emission, so a replay updates instead of duplicating.
    """

    detection_id: str
    event_id: str
    station_id: StationId
    river: RiverId
    section: str | None = None
    time: AwareDatetime
    kind: DetectionKind
    phase: DetectionPhase = DetectionPhase.ONSET
    findings: tuple[Finding, ...] = ()
    score: float = 0.0
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    detector: str
    readings: tuple[Reading, ...] = ()
    message: str = ""


class DeadLetter(_Frozen):
    """A payload that could not become a wire model, kept with the reason (nothing is dropped)."""

    raw_b64: str
    source: str  # MQTT topic or Kafka topic the payload came from
    reason_code: str
    reason: str
    received_at: AwareDatetime
    payload_format: str | None = None


T = TypeVar("T", bound=BaseModel)


class Envelope(BaseModel, Generic[T]):
    """What every record on a riverguard topic carries around its payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    type: str
    produced_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    payload: T

    @model_validator(mode="after")
    def _supported_version(self) -> Envelope[T]:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is newer than this riverguard understands ({SCHEMA_VERSION})"
            )
        return self


_ENVELOPES: dict[type[BaseModel], type[Envelope[BaseModel]]] = {}


def envelope_model(model: type[T]) -> type[Envelope[T]]:
    """``Envelope[model]``, looked up once per model: pydantic's own parametrisation cache costs
    microseconds per call, and every record on the bus goes through here."""
    found = _ENVELOPES.get(model)
    if found is None:
        found = _ENVELOPES[model] = Envelope[model]  # type: ignore[valid-type]
    return found  # type: ignore[return-value]


def encode(payload: BaseModel, *, trace_id: str | None = None) -> bytes:
    """Envelope + JSON bytes, the form records take on the bus.

    The same bytes as ``Envelope[type(payload)](...).model_dump_json()`` (a test holds them equal),
    written around the payload's own JSON: building and serialising the envelope model cost twice
    the payload's serialisation, and every record on every topic goes through here. Nothing is
    validated again: wire models are validated when they are built and are frozen.
    """
    return _ENVELOPE_JSON % (
        SCHEMA_VERSION,
        type(payload).__name__.encode(),
        to_json(datetime.now(UTC)),
        to_json(uuid.uuid4().hex if trace_id is None else trace_id),
        payload.__pydantic_serializer__.to_json(payload),
    )


_ENVELOPE_JSON: Final = b'{"schema_version":%d,"type":"%s","produced_at":%s,"trace_id":%s,"payload":%s}'


def decode(raw: bytes, model: type[T]) -> Envelope[T]:
    """Parse an enveloped record; raises pydantic ``ValidationError`` naming the bad field."""
    return envelope_model(model).model_validate_json(raw)
