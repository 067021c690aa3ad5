"""Payload codecs: station payload bytes → canonical :class:`~riverguard.models.Reading` (pure).

Both codecs share one interface, :class:`Codec`, and reject with
:class:`~riverguard.errors.PayloadError` whose ``code`` is stable (it ends up in the DLQ):

=================  ==========================================================================
``bad_json``       the payload is not JSON (or not UTF-8)
``schema``         a field is missing, has the wrong type, or an unknown key / flag / value
``hj212_frame``    an HJ 212 frame without ``##``, CN, MN or CP, or a malformed field
``hj212_length``   the length field does not match the data segment
``hj212_crc``      the CRC does not match (or is not 4 hex digits)
``hj212_command``  a valid frame that carries no data (CN is not an upload of data)
``unknown_station`` station id / MN not in the registry
``topic_mismatch`` the payload's station or river differs from the MQTT topic's
``out_of_range``   a value outside the parameter's physical range (pH 15)
``split_incomplete`` parts of a PNUM/PNO split packet never all arrived (see ``assembler``)
``future_time``    dated more than an hour after it arrived: a station clock or time-zone fault
                   (it would move the detectors' event time ahead for every station; see ``routing``)
=================  ==========================================================================

Values are converted from the station's reporting units to canonical units. The registry's
``units`` say what a station's instruments report in, for JSON payloads and HJ 212 frames alike;
where it says nothing, JSON values are in the canonical unit and an HJ 212 value is in the unit
its factor code has in the standard's code table (:mod:`ingest.codetable`: heavy metals in µg/L,
w00000 in L/s, HJ/T 212-2005 codes in mg/L).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any, Final, Protocol

from pydantic import ValidationError
from pydantic_core import from_json

from ingest.codetable import station_factors, value_name
from ingest.hj212 import Frame, build_frame, parse_frame
from riverguard.errors import PayloadError, describe_validation_error
from riverguard.models import DataFlag, Reading, SourceFormat
from riverguard.parameters import PARAMETERS
from riverguard.settings import MqttSettings
from riverguard.stations import Station, StationRegistry
from riverguard.timekeeping import BEIJING  # HJ 212 and JSON times without a zone are Beijing time

DEFAULT_TOPIC_PATTERN: Final = MqttSettings().topic_pattern
#: CN codes that upload data, and the CP suffix holding the value we keep (interval data: Avg).
DATA_COMMANDS: Final = {"2011": "Rtd", "2051": "Avg", "2061": "Avg", "2031": "Avg", "2041": "Avg"}
_VALUE_SUFFIXES: Final = ("Rtd", "Avg", "Min", "Max", "Cou")
_FLAGS: Final = {flag.value for flag in DataFlag}
#: A data flag: the standard's table is extensible, so any upper-case letter (see DataFlag).
_FLAG: Final = re.compile(r"[A-Z]")
_NORMAL: Final = DataFlag.NORMAL.value
_FACTOR_FIELDS: Final = frozenset({*_VALUE_SUFFIXES, "Flag"})
#: The keys a JSON reading may have.
JSON_KEYS: Final = frozenset({"station_id", "river", "time", "values", "source_format", "section"})


class Codec(Protocol):
    """Turns one payload into readings or raises :class:`PayloadError`."""

    format: SourceFormat

    def decode(self, payload: bytes, *, topic: str, registry: StationRegistry) -> list[Reading]: ...


class TopicPattern:
    """Where river and station id sit in an MQTT topic, from a pattern like
    ``stations/{river}/{station_id}/telemetry``.

    >>> TopicPattern("stations/{river}/{station_id}/telemetry").match("stations/tuo/tuo-hongyuan/telemetry")
    ('tuo', 'tuo-hongyuan')
    >>> TopicPattern("stations/{river}/{station_id}/telemetry").format("min", "min-pengshan")
    'stations/min/min-pengshan/telemetry'
    """

    def __init__(self, pattern: str = DEFAULT_TOPIC_PATTERN) -> None:
        if "{station_id}" not in pattern:
            raise ValueError(f"topic pattern {pattern!r} has no {{station_id}} placeholder")
        self.pattern = pattern
        regex = re.escape(pattern).replace(r"\{river\}", "(?P<river>[^/]+)")
        self._regex = re.compile("^" + regex.replace(r"\{station_id\}", "(?P<station_id>[^/]+)") + "$")

    def match(self, topic: str) -> tuple[str | None, str] | None:
        found = self._regex.match(topic)
        if found is None:
            return None
        return found.groupdict().get("river"), found["station_id"]

    def format(self, river: str, station_id: str) -> str:
        return self.pattern.replace("{river}", river).replace("{station_id}", station_id)

    def station_of(self, topic: str) -> str:
        """The station id the topic names, or the whole topic when it does not match (a key for
        partitioning what cannot be attributed to a station)."""
        found = self.match(topic)
        return found[1] if found else topic


def check_topic(station: Station, topic: str, pattern: TopicPattern) -> None:
    """Reject a payload whose station is not the one the topic (and so the ACL) names.

    An empty topic (``riverguard parse``) is not checked.
    """
    if not topic:
        return
    found = pattern.match(topic)
    if found is None:
        raise PayloadError("topic_mismatch", f"topic {topic!r} does not match the pattern {pattern.pattern!r}")
    river, station_id = found
    if station_id != station.station_id:
        raise PayloadError(
            "topic_mismatch", f"payload of station {station.station_id!r} arrived on the topic of {station_id!r}"
        )
    if river is not None and river != station.river:
        raise PayloadError(
            "topic_mismatch", f"topic says river {river!r} but station {station.station_id!r} is on {station.river!r}"
        )


def build_reading(data: dict[str, Any]) -> Reading:
    """Validate a reading, mapping pydantic errors to ``out_of_range`` or ``schema``."""
    try:
        return Reading.model_validate(data)
    except ValidationError as exc:
        physical = any("physical range" in str(error.get("msg", "")) for error in exc.errors())
        raise PayloadError("out_of_range" if physical else "schema", describe_validation_error(exc)) from exc


def parse_local_time(text: str, field: str) -> datetime:
    """ISO time (JSON) or ``yyyyMMddHHmmss[zzz]`` (HJ 212); Beijing time when it has no zone.

    >>> parse_local_time("20240105103000", "DataTime").isoformat()
    '2024-01-05T10:30:00+08:00'
    >>> parse_local_time("2024-01-05T02:30:00Z", "time").isoformat()
    '2024-01-05T02:30:00+00:00'
    """
    try:
        if text.isdigit() and len(text) in (14, 17):
            # Sliced by hand: strptime costs more than the rest of an HJ 212 frame's parsing.
            return datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                int(text[12:14]), int(text[14:] or 0) * 1000, tzinfo=BEIJING,
            )
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PayloadError("schema", f"{field}={text!r} is not a valid time") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=BEIJING)


class JsonCodec:
    """Our JSON schema: one object (or a list of objects) shaped like a :class:`Reading`.

    ``values`` maps parameter names to a number or to ``{"value": ..., "flag": "N"}``; ``river``,
    ``section`` and ``source_format`` are optional (taken from the registry).

    >>> from riverguard.stations import load_registry
    >>> payload = b'{"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00+08:00", "values": {"NH3N": 0.42}}'
    >>> [r.values["NH3N"].value for r in JsonCodec().decode(payload, topic="", registry=load_registry())]
    [0.42]
    """

    format = SourceFormat.JSON

    def __init__(self, topic_pattern: str = DEFAULT_TOPIC_PATTERN) -> None:
        self._pattern = TopicPattern(topic_pattern)

    def decode(self, payload: bytes, *, topic: str, registry: StationRegistry) -> list[Reading]:
        try:
            document = from_json(payload)  # pydantic-core's parser: a third of json.loads' time
        except ValueError as exc:
            raise PayloadError("bad_json", f"payload is not JSON: {exc}") from exc
        objects = document if isinstance(document, list) else [document]
        if not objects:
            raise PayloadError("schema", "payload is an empty list")
        return [self._reading(item, index, topic, registry) for index, item in enumerate(objects)]

    def _reading(self, item: object, index: int, topic: str, registry: StationRegistry) -> Reading:
        where = f"[{index}]." if index else ""
        if not isinstance(item, dict):
            raise PayloadError("schema", f"{where or 'payload'} must be a JSON object, got {type(item).__name__}")
        unknown = sorted(set(item) - JSON_KEYS)
        if unknown:
            raise PayloadError("schema", f"{where}unknown keys {unknown}; allowed: {', '.join(sorted(JSON_KEYS))}")
        station_id = item.get("station_id")
        if not isinstance(station_id, str):
            raise PayloadError("schema", f"{where}station_id={station_id!r}: a station id string is required")
        station = registry.by_id.get(station_id)
        if station is None:
            raise PayloadError("unknown_station", f"station_id={station_id!r} is not in the station registry")
        check_topic(station, topic, self._pattern)
        if item.get("river", station.river) != station.river:
            raise PayloadError("schema", f"{where}river={item['river']!r} but {station_id} is on {station.river!r}")
        values = item.get("values")
        if not isinstance(values, dict):
            raise PayloadError("schema", f"{where}values={values!r}: an object of parameter → value is required")
        time = item.get("time")
        return build_reading(
            {
                "station_id": station_id,
                "river": station.river,
                "time": parse_local_time(time, f"{where}time") if isinstance(time, str) else time,
                "values": _canonical_values(station, values),
                "source_format": item.get("source_format", SourceFormat.JSON),
                "section": station.section,
            }
        )


def _canonical_values(station: Station, values: dict[str, object]) -> dict[str, object]:
    """Bare numbers become measurements; numbers are read as floats (numbers sent as text by the
    same grammar as HJ 212 values) and converted from the station's unit. Everything else is
    passed on as sent, for the model to accept or reject by name."""
    factors = station.unit_factors
    out: dict[str, object] = {}
    for name, sent in values.items():
        measurement = sent if isinstance(sent, dict) else {"value": sent}
        number = measurement.get("value")
        if isinstance(number, str | int) and not isinstance(number, bool):
            measurement = {**measurement, "value": _json_number(name, number)}
        factor = factors.get(name)
        if factor is not None and isinstance(value := measurement.get("value"), float):
            measurement = {**measurement, "value": value * factor}
        out[name] = measurement
    return out


def _json_number(name: str, sent: str | int) -> float:
    if isinstance(sent, int):
        try:
            return float(sent)
        except OverflowError:
            raise PayloadError(
                "out_of_range", f"values.{name}: an integer of {len(str(sent))} digits is beyond the range of a number"
            ) from None
    number = finite_number(sent)
    if number is None:
        raise PayloadError("schema", f"values.{name}={sent[:40]!r} is not a number")
    return number


def encode_json(reading: Reading, station: Station) -> bytes:
    """A JSON payload as a station would send it (values in the station's units)."""
    values = {
        name: {"value": _reported(station, name, m.value), "flag": m.flag.value} for name, m in reading.values.items()
    }
    document = {"station_id": reading.station_id, "time": reading.time.isoformat(), "values": values}
    return json.dumps(document, separators=(",", ":")).encode()


def _reported(station: Station, name: str, value: float) -> float:
    factor = station.to_canonical(name, 1.0)
    return value / factor if factor != 1.0 else value


class Hj212Codec:
    """HJ 212-2017 frames of a single packet; split packets go through
    :class:`ingest.assembler.SplitAssembler` first and then :meth:`readings`."""

    format = SourceFormat.HJ212

    def __init__(self, topic_pattern: str = DEFAULT_TOPIC_PATTERN) -> None:
        self._pattern = TopicPattern(topic_pattern)
        self._factors = _CodeFactors()

    def decode(self, payload: bytes, *, topic: str, registry: StationRegistry) -> list[Reading]:
        frame = parse_frame(payload)
        if frame.is_split:
            raise PayloadError("split_incomplete", f"packet {frame.pno} of {frame.pnum} cannot be decoded alone")
        return self.readings(frame, topic=topic, registry=registry)

    def readings(self, frame: Frame, *, topic: str, registry: StationRegistry) -> list[Reading]:
        """The reading a verified (and, if split, reassembled) frame carries."""
        kept = DATA_COMMANDS.get(frame.cn)
        if kept is None:
            uploads = ", ".join(sorted(DATA_COMMANDS))
            raise PayloadError("hj212_command", f"CN={frame.cn} carries no data (data uploads: {uploads})")
        station = registry.by_mn.get(frame.mn)
        if station is None:
            raise PayloadError("unknown_station", f"MN={frame.mn!r} is not in the station registry")
        check_topic(station, topic, self._pattern)
        fields = dict(frame.cp)
        time_text = fields.get("DataTime") or frame.qn
        if not time_text:
            raise PayloadError("hj212_frame", "frame has neither CP DataTime nor QN")
        return [
            build_reading(
                {
                    "station_id": station.station_id,
                    "river": station.river,
                    "time": parse_local_time(time_text, "DataTime"),
                    "values": _factor_values(frame.cp, kept, self._factors.of(station)),
                    "source_format": SourceFormat.HJ212,
                    "section": station.section,
                }
            )
        ]


class _CodeFactors:
    """:func:`ingest.codetable.station_factors` per station, computed once (looked up per value)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[Station, dict[str, float]]] = {}

    def of(self, station: Station) -> dict[str, float]:
        known = self._known.get(station.station_id)
        if known is None or known[0] is not station:
            known = self._known[station.station_id] = (station, station_factors(station))
        return known[1]


def _factor_values(
    cp: tuple[tuple[str, str], ...], kept: str, factors: dict[str, float]
) -> dict[str, dict[str, object]]:
    by_code: dict[str, dict[str, str]] = {}
    for key, value in cp:
        code, dash, suffix = key.partition("-")
        if dash and suffix in _FACTOR_FIELDS:
            fields = by_code.get(code)
            if fields is None:
                fields = by_code[code] = {}
            fields[suffix] = value
    values: dict[str, dict[str, object]] = {}
    codes: dict[str, str] = {}
    for code, fields in by_code.items():
        chosen = kept if kept in fields else "Rtd" if "Rtd" in fields else "Avg" if "Avg" in fields else None
        if chosen is None:
            continue  # Min/Max/Cou alone (e.g. a daily total) carry no value for a reading
        numbers = {field: _number(code, field, text) for field, text in fields.items() if field != "Flag"}
        flag = fields.get("Flag", _NORMAL)
        if flag not in _FLAGS and not _FLAG.fullmatch(flag):
            raise PayloadError(
                "schema", f"CP {code}-Flag={flag!r} is not a data flag (one upper-case letter: N, F, M, S, D, C, T, B "
                "or an extension of the standard's table)"
            )
        # Factors we have no canonical name for keep their code, so their data is not lost.
        name = value_name(code)
        if name is None:
            raise PayloadError("schema", f"CP factor code {code!r} cannot name a value (letters, digits, '_.-')")
        if name in codes:
            raise PayloadError("schema", f"CP {codes[name]} and {code} both report {name}; which one is meant?")
        codes[name] = code
        values[name] = {"value": numbers[chosen] * factors.get(code, 1.0), "flag": flag}
    if not values:
        raise PayloadError("schema", f"CP has no factor with a value (looked for {kept}, Rtd, Avg)")
    return values


def _number(code: str, suffix: str, text: str) -> float:
    number = finite_number(text)
    if number is None:
        raise PayloadError("schema", f"CP {code}-{suffix}={text[:40]!r} is not a number")
    return number


#: A decimal number as frames write it: float() also takes '_' between digits ('0_5' is 5.0),
#: surrounding spaces, 'inf' and 'nan', which are no station's numbers. The fast path (native/)
#: reads the same grammar.
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def finite_number(text: str) -> float | None:
    """``text`` as a finite float when it is a plain decimal number, else None.

    >>> finite_number("-.5"), finite_number("1e3"), finite_number("0_5"), finite_number(" 7"), finite_number("1e999")
    (-0.5, 1000.0, None, None, None)
    """
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def encode_hj212(reading: Reading, station: Station, *, cn: str = "2011", pw: str = "123456") -> bytes:
    """An HJ 212-2017 frame for ``reading`` as the station's data logger would send it.

    >>> from datetime import datetime, UTC
    >>> from riverguard.models import Measurement
    >>> from riverguard.stations import load_registry
    >>> registry = load_registry()
    >>> station = registry.by_id["tuo-sanhuangmiao"]
    >>> reading = Reading(station_id=station.station_id, river="tuo", time=datetime(2024, 1, 5, 2, 30, tzinfo=UTC),
    ...                   values={"NH3N": Measurement(value=0.42)}, source_format=SourceFormat.HJ212)
    >>> frame = encode_hj212(reading, station)
    >>> b"DataTime=20240105103000;w21003-Rtd=0.42,w21003-Flag=N" in frame
    True
    >>> Hj212Codec().decode(frame, topic="", registry=registry)[0].values == reading.values
    True
    """
    return build_frame(frame_of(reading, station, cn=cn, pw=pw))


def frame_of(reading: Reading, station: Station, *, cn: str = "2011", pw: str = "123456") -> Frame:
    """The (unsplit) frame ``encode_hj212`` sends; ``hj212.split_frame`` cuts it into packets.
    Values are written in the unit their code has for the station (:mod:`ingest.codetable`)."""
    suffix = DATA_COMMANDS.get(cn, "Rtd")
    local = reading.time.astimezone(BEIJING)
    factors = station_factors(station)
    cp: list[tuple[str, str]] = [("DataTime", local.strftime("%Y%m%d%H%M%S"))]
    for name, measurement in reading.values.items():
        spec = PARAMETERS.get(name)
        code = spec.hj212_code if spec and spec.hj212_code else name
        cp.append((f"{code}-{suffix}", f"{measurement.value / factors.get(code, 1.0):.10g}"))
        cp.append((f"{code}-Flag", measurement.flag.value))
    qn = local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"
    return Frame(cn=cn, mn=station.mn, cp=tuple(cp), qn=qn, st="21", pw=pw, flag="4")
