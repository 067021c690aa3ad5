"""The JSON codec and the topic pattern."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.codecs import JsonCodec, TopicPattern, encode_json
from riverguard.errors import PayloadError
from riverguard.models import DataFlag, Measurement, Reading, SourceFormat
from riverguard.stations import load_registry

REGISTRY = load_registry()
TOPIC = "stations/tuo/tuo-hongyuan/telemetry"


def decode(document: object, topic: str = TOPIC) -> list[Reading]:
    return JsonCodec().decode(json.dumps(document).encode(), topic=topic, registry=REGISTRY)


def rejection(document: object, topic: str = TOPIC) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        decode(document, topic)
    return caught.value


def test_numbers_and_measurements_with_flags() -> None:
    [reading] = decode({"station_id": "tuo-hongyuan", "time": "2024-01-05T02:30:00Z",
                        "values": {"pH": 7.4, "NH3N": {"value": 0.3, "flag": "M"}}})
    assert reading.values == {"pH": Measurement(value=7.4), "NH3N": Measurement(value=0.3, flag=DataFlag.MAINTENANCE)}
    assert (reading.river, reading.section, reading.source_format) == ("tuo", "宏缘", SourceFormat.JSON)
    assert reading.time == datetime(2024, 1, 5, 2, 30, tzinfo=UTC)


def test_an_extension_flag_keeps_its_value_and_a_malformed_flag_is_rejected() -> None:
    [reading] = decode({"station_id": "tuo-hongyuan", "time": "2024-01-05T02:30:00Z",
                        "values": {"pH": {"value": 7.4, "flag": "P"}}})
    assert reading.values["pH"] == Measurement(value=7.4, flag=DataFlag("P"))
    assert not reading.values["pH"].flag.is_water_evidence
    error = rejection({"station_id": "tuo-hongyuan", "time": "2024-01-05T02:30:00Z",
                       "values": {"pH": {"value": 7.4, "flag": "PP"}}})
    assert error.code == "schema"


def test_time_without_zone_is_beijing_time() -> None:
    [reading] = decode({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": 7.4}})
    assert reading.time == datetime(2024, 1, 5, 2, 30, tzinfo=UTC)


def test_a_list_of_readings_is_accepted() -> None:
    item = {"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00+08:00", "values": {"pH": 7.4}}
    assert len(decode([item, item | {"time": "2024-01-05T10:31:00+08:00"}])) == 2


@pytest.mark.parametrize(
    ("document", "code", "names"),
    [
        ({"time": "2024-01-05T10:30:00", "values": {"pH": 7}}, "schema", "station_id"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": 7}, "x": 1}, "schema", "'x'"),
        ({"station_id": "tuo-hongyuan", "time": "yesterday", "values": {"pH": 7}}, "schema", "yesterday"),
        ({"station_id": "tuo-hongyuan", "values": {"pH": 7}}, "schema", "time"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {}}, "schema", "values"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": "x"}}, "schema", "pH"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": "0_5"}}, "schema", "'0_5'"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": {"value": "inf"}}}, "schema",
         "pH"),
        ({"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": 15}}, "out_of_range", "pH=15"),
        ({"station_id": "nowhere", "time": "2024-01-05T10:30:00", "values": {"pH": 7}}, "unknown_station", "nowhere"),
        ({"station_id": "tuo-hongyuan", "river": "min", "time": "2024-01-05T10:30:00", "values": {"pH": 7}},
         "schema", "river"),
        ([], "schema", "empty"),
        ("just a string", "schema", "str"),
    ],
)
def test_rejections_name_the_field_and_value(document: object, code: str, names: str) -> None:
    error = rejection(document)
    assert error.code == code
    assert names in error.message


def test_a_number_as_text_is_read_by_the_frames_grammar() -> None:
    [reading] = decode({"station_id": "tuo-hongyuan", "time": "2024-01-05T02:30:00Z", "values": {"pH": "7.5"}})
    assert reading.values["pH"].value == 7.5


def test_an_integer_beyond_a_float_is_out_of_range_not_an_internal_error() -> None:
    for name in ("pH", "Cd"):  # Cd is converted from µg/L at this station: int * factor overflowed
        payload = (b'{"station_id": "min-pengshan", "time": "2024-01-05T10:30:00", "values": {"%s": %s}}'
                   % (name.encode(), b"9" * 400))
        with pytest.raises(PayloadError) as caught:
            JsonCodec().decode(payload, topic="stations/min/min-pengshan/telemetry", registry=REGISTRY)
        assert caught.value.code == "out_of_range"
        assert f"values.{name}: an integer of 400 digits" in caught.value.message


def test_bad_json() -> None:
    for payload in (b"{nope", b"\xff\xfe", b""):
        with pytest.raises(PayloadError) as caught:
            JsonCodec().decode(payload, topic=TOPIC, registry=REGISTRY)
        assert caught.value.code == "bad_json"


def test_a_station_cannot_publish_on_anothers_topic() -> None:
    document = {"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00", "values": {"pH": 7}}
    assert rejection(document).code == "topic_mismatch"
    assert rejection(document, "stations/min/tuo-sanhuangmiao/telemetry").code == "topic_mismatch"
    assert rejection(document, "somewhere/else").code == "topic_mismatch"
    assert decode(document, "stations/tuo/tuo-sanhuangmiao/telemetry")


def test_station_units_are_converted_both_ways() -> None:
    station = REGISTRY.by_id["min-pengshan"]
    reading = Reading(station_id=station.station_id, river="min", time=datetime(2024, 1, 5, tzinfo=UTC),
                      values={"Cd": Measurement(value=0.0008)}, source_format=SourceFormat.JSON)
    payload = encode_json(reading, station)
    assert json.loads(payload)["values"]["Cd"]["value"] == pytest.approx(0.8)
    [decoded] = JsonCodec().decode(payload, topic="", registry=REGISTRY)
    assert decoded.values["Cd"].value == pytest.approx(0.0008)


def test_topic_pattern() -> None:
    pattern = TopicPattern("site/{station_id}/up")
    assert pattern.match("site/a1/up") == (None, "a1")
    assert pattern.match("site/a1/b/up") is None
    with pytest.raises(ValueError, match="station_id"):
        TopicPattern("stations/{river}")
