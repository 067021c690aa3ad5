"""The native fast path of routing (``native/``, Rust): valid payloads straight to their records.

Nearly every message a station sends is valid: one JSON reading, or one single-packet HJ 212 data
frame, of a registered station on its own topic. For those the Python path (decode, validate a
:class:`~riverguard.models.Reading`, serialise its envelope) cost ~140 µs of the bridge's CPU per
message, most of the ingest budget; the fast path writes the same record in a few µs. It accepts a
payload only when it is sure the Python path would produce that record — same checks, same bytes
(``tests/unit/test_ingest_fastpath.py`` holds them to it, on simulator traffic and on corrupted and
generated payloads) — and otherwise declines, so every rejection, its reason and the rarer forms
(split packets, lists, other time formats) stay with the Python codecs, the one definition.

Everything the fast path knows comes from here, built from the same registry, parameter catalogue
and constants as the Python path.
"""

from __future__ import annotations

from pydantic_core import to_json

from ingest._fastpath import FastRouter
from ingest.codecs import DATA_COMMANDS, JSON_KEYS, TopicPattern
from ingest.codetable import WATER, station_factors, value_name
from riverguard.models import DataFlag, SourceFormat
from riverguard.parameters import PARAMETERS
from riverguard.stations import Station, StationRegistry

__all__ = ["FastRouter", "fast_router"]


def fast_router(
    registry: StationRegistry, pattern: TopicPattern, *, future_tolerance_s: float, trace_prefix: str
) -> FastRouter:
    """A :class:`FastRouter` for ``registry``'s stations on ``pattern``'s topics."""
    return FastRouter(
        [_station_spec(station, pattern) for station in registry.stations],
        ranges={name: spec.physical_range for name, spec in PARAMETERS.items()},
        names={code: name for code in WATER if (name := value_name(code)) is not None},
        commands=dict(DATA_COMMANDS),
        flags="".join(flag.value for flag in DataFlag),
        evidence="".join(flag.value for flag in DataFlag if flag.is_water_evidence),
        json_keys=sorted(JSON_KEYS),
        formats=[source.value for source in SourceFormat],
        future_tolerance_s=future_tolerance_s,
        trace_prefix=trace_prefix,
    )


def _station_spec(
    station: Station, pattern: TopicPattern
) -> tuple[str, str, str, str | None, dict[str, float], dict[str, float], bytes, bytes]:
    head = b'{"station_id":%s,"river":%s,"time":' % (to_json(station.station_id), to_json(station.river))
    tail = b',"section":%s}' % to_json(station.section)
    topic, codes = _own_topic(station, pattern), station_factors(station)
    return station.station_id, station.mn, station.river, topic, station.unit_factors, codes, head, tail


def _own_topic(station: Station, pattern: TopicPattern) -> str | None:
    """The topic ``check_topic`` accepts for ``station``, when there is exactly that one; None
    keeps the station's payloads on the Python path. (Its id and river are valid in a reading:
    the registry validates them with the reading's own types.)"""
    topic = pattern.format(station.river, station.station_id)
    river = station.river if "{river}" in pattern.pattern else None
    return topic if pattern.match(topic) == (river, station.station_id) else None
